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

from intent.store import Event, KeyValue, Snapshot, Store


class StoreMirror:
    """Every key under the watched prefix at :attr:`revision` (None of a large write held)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.items: dict[str, KeyValue] = {}
        self.revision = 0
        self.usable = False  # consistent at ``revision`` (no large write held back)
        self.floor = 0  # a write of this process landed here: the copy must reach it first
        self.hits = 0
        self.misses = 0

    def load(self, snap: Snapshot) -> None:
        """Start over from a full snapshot (the controller's load)."""
        self.items = dict(snap.items)
        self.revision = snap.revision
        self.usable = not snap.intent_revision

    def apply(self, ev: Event) -> None:
        """One watch event (as the controller applies it)."""
        if ev.type == "put":
            self.items[ev.key] = KeyValue(ev.key, ev.value or "", mod_revision=ev.mod_revision)
        else:
            self.items.pop(ev.key, None)

    def settle(self, revision: int, holding: bool) -> None:
        """Every event up to ``revision`` is applied; ``holding``: a large write is held back."""
        self.revision = max(self.revision, revision)
        self.usable = not holding

    def note_write(self, revision: int) -> None:
        """A write of this process landed at ``revision``."""
        self.floor = max(self.floor, revision)

    def read(self, keys: Sequence[str] = (), prefixes: Sequence[str] = (),
             revision: int | None = None) -> Snapshot:
        """``Store.read`` by key names from the copy; anything else (prefixes, an old revision,
        a copy not yet past this process's last write) from the store."""
        if prefixes or revision is not None or not self.usable or self.revision < self.floor:
            self.misses += 1
            return self.store.read(keys=keys, prefixes=prefixes, revision=revision)
        self.hits += 1
        return Snapshot(self.revision, {k: self.items[k] for k in keys if k in self.items})
