"""All-or-nothing reads across large writes.

A write that does not fit one etcd transaction (etcd allows 128 operations and 1.5 MiB per
request by default) runs under the lock key ``/netplugin/config/txn`` (see
``allocator.bulk``): it creates the lock, writes its batches, and deletes the lock in its last
transaction.  Every other writer's transaction requires the lock to be absent, and a writer that
dies half-way is rolled back by the next one *before* the lock goes away.  So the intent keys
(``config/``, ``alloc/``, ``state/``) as of the revision just before the lock was created are
always a complete, consistent intent, and so is everything after the lock is deleted.

Readers therefore read intent keys at ``lock.create_revision - 1`` while the lock exists
(:func:`read_consistent`), and a watcher holds back intent events from the lock's creation until
its deletion, then releases them together (:class:`WatchGate`).  Operational keys (agents'
registrations and ports, realized revisions, runtime registry) are never held back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from intent import keys as K
from intent.store import Event, Snapshot, Store


def is_intent(key: str) -> bool:
    """Whether ``key`` is intent (changed only by writers, seen all-or-nothing)."""
    return key.startswith(K.INTENT_PREFIXES)


def _covers_intent(prefix: str) -> bool:
    return is_intent(prefix) or any(p.startswith(prefix) for p in K.INTENT_PREFIXES)


def read_consistent(store: Store, keys: Sequence[str] = (),
                    prefixes: Sequence[str] = ()) -> Snapshot:
    """``store.read`` of ``keys`` and ``prefixes`` with intent keys never showing part of a
    large write.  The lock key itself is never returned.  When a large write was under way, the
    snapshot's ``intent_revision`` says at which revision intent keys were read (watch intent
    from ``intent_revision + 1`` and operational keys from ``revision + 1``)."""
    snap = store.read(keys=[*keys, K.CONFIG_TXN], prefixes=prefixes)
    lock = snap.items.pop(K.CONFIG_TXN, None)
    if lock is None:
        return snap
    at = lock.create_revision - 1
    old = store.read(keys=[k for k in keys if is_intent(k)],
                     prefixes=[p for p in prefixes if _covers_intent(p)],
                     revision=at)
    items = {k: kv for k, kv in snap.items.items() if not is_intent(k)}
    items.update((k, kv) for k, kv in old.items.items() if is_intent(k))
    return replace(snap, items=items, intent_revision=at)


def watch_start(snap: Snapshot) -> int:
    """The revision a watch that follows ``snap`` starts at."""
    return (snap.intent_revision or snap.revision) + 1


class WatchGate:
    """Releases watch events in an order that never shows part of a large write.

    Feed it every event of a watch started at :func:`watch_start` of a snapshot; it returns the
    events to apply now (possibly none, possibly many held back ones).
    """

    def __init__(self, snap: Snapshot | None = None) -> None:
        self._oper_seen = snap.revision if snap is not None and snap.intent_revision else 0
        self._held: list[Event] = []
        self.holding = False

    def feed(self, ev: Event) -> list[Event]:
        if not is_intent(ev.key):
            return [] if ev.mod_revision <= self._oper_seen else [ev]
        if ev.key == K.CONFIG_TXN:
            if ev.type == "put":
                self.holding = True
                return []
            out, self._held, self.holding = self._held, [], False
            return out
        if self.holding:
            self._held.append(ev)
            return []
        return [ev]

    @property
    def held(self) -> int:
        """How many intent events are held back."""
        return len(self._held)
