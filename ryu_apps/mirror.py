"""The controller's copy of the store's keys, kept from its watch: small writes made through its
REST API read the keys they name from here instead of a round trip to etcd.

It is only a first guess.  A write's compare-and-swap covers every key it read, so a copy that
is behind makes the transaction fail and the write is planned again from etcd; a refusal
decided on the copy (not found, exists already, invalid) is checked against etcd before it is
answered (:class:`allocator.write.Writer`).  After a write of this process the copy is used
again only once the watch has delivered that write (a client's next write sees its last one).
"""

from __future__ import annotations

from collections.abc import Sequence

from intent import keys as K
from intent.store import Event, KeyValue, Snapshot, Store

_VALUES = (K.CONFIG_TXN, K.CONFIG_NETWORKS, K.STATE_NETWORKS, K.ALLOC_POOL)


class StoreMirror:
    """Every intent key (config, alloc, state) at :attr:`revision`, as the watch delivered
    them (none of a large write held back)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._base: dict[str, KeyValue] = {}  # the load's snapshot (shared, never changed)
        # changes since: key -> (value, mod revision), None when deleted.  Values are kept for
        # the few keys every endpoint add reads whole (networks, pools, the lock); of the many
        # (endpoints, addresses) only that they exist: an add finds them absent, and a read
        # that meets one present goes to the store (the copy stays small: no second copy of
        # every endpoint's value beside the engine's).
        self._changed: dict[str, tuple[str | None, int] | None] = {}
        self.revision = 0
        self.usable = False  # consistent at ``revision`` (no large write held back)
        self.floor = 0  # a write of this process landed here: the copy must reach it first
        self.hits = 0
        self.misses = 0

    def load(self, snap: Snapshot) -> None:
        """Start over from a full snapshot (the controller's load)."""
        self._base, self._changed = snap.items, {}
        self.revision = snap.revision
        self.usable = not snap.intent_revision

    def apply(self, ev: Event) -> None:
        """One watch event (as the controller applies it)."""
        if not ev.key.startswith(K.INTENT_PREFIXES):
            return  # oper keys, write records …: never read through the copy
        if ev.type == "put":
            keep = ev.key.startswith(_VALUES)
            self._changed[ev.key] = (ev.value or "" if keep else None, ev.mod_revision)
        elif ev.key in self._base:
            self._changed[ev.key] = None
        else:
            self._changed.pop(ev.key, None)  # no tombstones for keys the load never had

    def settle(self, revision: int, holding: bool) -> None:
        """Every event up to ``revision`` is applied; ``holding``: a large write is held back."""
        self.revision = max(self.revision, revision)
        self.usable = not holding

    def note_write(self, revision: int) -> None:
        """A write of this process landed at ``revision``."""
        self.floor = max(self.floor, revision)

    def read(self, keys: Sequence[str] = (), prefixes: Sequence[str] = (),
             revision: int | None = None) -> Snapshot:
        """``Store.read`` of intent keys by name from the copy; anything else (prefixes, an old
        revision, other keys, a copy not yet past this process's last write) from the store."""
        if prefixes or revision is not None or not self.usable or self.revision < self.floor \
                or not all(k.startswith(K.INTENT_PREFIXES) for k in keys):
            self.misses += 1
            return self.store.read(keys=keys, prefixes=prefixes, revision=revision)
        out = {}
        for k in keys:
            if k in self._changed:
                v = self._changed[k]
                if v is not None:
                    if v[0] is None:  # present, value not kept
                        self.misses += 1
                        return self.store.read(keys=keys)
                    out[k] = KeyValue(k, v[0], mod_revision=v[1])
            elif k in self._base:
                out[k] = self._base[k]
        self.hits += 1
        return Snapshot(self.revision, out)
