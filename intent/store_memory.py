"""In-memory store with etcd's semantics: one revision counter, txn compares, leases, watch history.

For unit tests.  Thread-safe (also under eventlet monkey-patching).  Lease expiry follows the
injected ``clock`` (checked on every call and while a watcher waits); ``expire_lease`` forces it.
"""

from __future__ import annotations

import bisect
import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

from intent.store import (
    Compare,
    Delete,
    Event,
    KeyValue,
    Lease,
    LeaseExpired,
    Put,
    RevisionCompacted,
    Snapshot,
    Store,
    StoreError,
    TxnResult,
    WatchCompacted,
    Watcher,
)

_WAIT_SLICE = 0.2  # a waiting watcher re-checks lease expiry this often (seconds)


def compare_holds(kv: KeyValue | None, cmp: Compare) -> bool:
    """Whether a txn condition holds for ``kv`` (``None``: missing key), as etcd decides."""
    if cmp.target == "value":
        if kv is None:
            return False
        have: str | int = kv.value
        want: str | int = str(cmp.value)
    elif cmp.target in ("version", "create", "mod"):
        attr = {"version": "version", "create": "create_revision", "mod": "mod_revision"}
        have = getattr(kv, attr[cmp.target]) if kv else 0
        want = int(cmp.value)
    else:
        raise StoreError(f"unknown compare target {cmp.target!r}")
    if cmp.op == "=":
        return have == want
    if cmp.op == "!=":
        return have != want
    if cmp.op == "<":
        return have < want  # type: ignore[operator]
    if cmp.op == ">":
        return have > want  # type: ignore[operator]
    raise StoreError(f"unknown compare op {cmp.op!r}")


@dataclass
class _LeaseRecord:
    ttl: int
    deadline: float
    keys: set[str] = field(default_factory=set)


class MemoryLease(Lease):
    def __init__(self, store: MemoryStore, lease_id: int, ttl: int):
        self._store = store
        self.id = lease_id
        self.ttl = ttl

    def refresh(self) -> None:
        self._store._refresh_lease(self.id)

    def revoke(self) -> None:
        self._store._revoke_lease(self.id)


class MemoryWatcher(Watcher):
    def __init__(self, store: MemoryStore, prefix: str, start_revision: int):
        self._store = store
        self._prefix = prefix
        self._next = start_revision
        self._closed = False

    def __iter__(self) -> Iterator[Event]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Event]]:
        while True:
            batch = self._store._wait_events(self)
            if batch is None:
                return
            yield batch

    def close(self) -> None:
        self._store._close_watcher(self)


class MemoryStore(Store):
    """The whole store in a dict; history kept until ``compact``."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 max_txn_ops: int | None = None, max_request_bytes: int | None = None):
        """``max_txn_ops`` / ``max_request_bytes``: refuse larger transactions as etcd does
        (its defaults are 128 and 1.5 MiB)."""
        self._clock = clock
        self.max_txn_ops = max_txn_ops
        self.max_request_bytes = max_request_bytes
        self._cond = threading.Condition(threading.RLock())
        self._data: dict[str, KeyValue] = {}
        self._rev = 1  # an empty etcd is at revision 1
        self._compacted = 0
        self._history: list[Event] = []  # sorted by mod_revision
        self._history_revs: list[int] = []
        self._history_prev: list[KeyValue | None] = []  # each event's key before it
        self._leases: dict[int, _LeaseRecord] = {}
        self._lease_ids = itertools.count(0x1000)

    # -- reads ---------------------------------------------------------------------------------
    def revision(self) -> int:
        """The store's current revision."""
        with self._cond:
            self._expire_due()
            return self._rev

    def get(self, key: str) -> KeyValue | None:
        with self._cond:
            self._expire_due()
            return self._data.get(key)

    def snapshot(self, prefix: str, revision: int | None = None) -> Snapshot:
        return self.read(prefixes=(prefix,), revision=revision)

    def read(self, keys: Sequence[str] = (), prefixes: Sequence[str] = (),
             revision: int | None = None) -> Snapshot:
        with self._cond:
            self._expire_due()
            data = self._data if revision is None else self._data_at(revision)
            wanted = set(keys)
            items = {k: kv for k, kv in data.items()
                     if k in wanted or (prefixes and k.startswith(tuple(prefixes)))}
            return Snapshot(revision=self._rev if revision is None else revision, items=items)

    def key_names(self, prefix: str, revision: int | None = None) -> tuple[int, list[str]]:
        snap = self.snapshot(prefix, revision)
        return snap.revision, sorted(snap.items)

    def _data_at(self, revision: int) -> dict[str, KeyValue]:
        """The keys as they were at ``revision`` (undoing later events)."""
        if revision > self._rev:
            raise StoreError(f"revision {revision} is in the future (at {self._rev})")
        if revision < self._compacted:
            raise RevisionCompacted(f"revision {revision} was compacted (oldest is "
                                    f"{self._compacted})")
        data = dict(self._data)
        start = bisect.bisect_right(self._history_revs, revision)
        for i in range(len(self._history) - 1, start - 1, -1):
            prev = self._history_prev[i]
            key = self._history[i].key
            if prev is None:
                data.pop(key, None)
            else:
                data[key] = prev
        return data

    # -- writes --------------------------------------------------------------------------------
    def put(self, key: str, value: str, lease: int = 0) -> int:
        return self.txn([], [Put(key, value, lease)]).revision

    def delete(self, key: str, prefix: bool = False) -> int:
        with self._cond:
            self._expire_due()
            count = len(self._matching(Delete(key, prefix)))
            if count:
                self._apply([Delete(key, prefix)])
            return count

    def txn(self, compares: list[Compare], success: list[Put | Delete],
            failure: list[Put | Delete] | None = None) -> TxnResult:
        ops = list(success) + list(failure or [])
        if self.max_txn_ops is not None and max(len(success), len(failure or []),
                                                len(compares)) > self.max_txn_ops:
            raise StoreError("etcd refused kv/txn: too many operations in txn request")
        if self.max_request_bytes is not None and sum(
                len(o.key) + len(getattr(o, "value", "")) for o in ops) * 4 // 3 \
                > self.max_request_bytes:
            raise StoreError("etcd refused kv/txn: request is too large")
        with self._cond:
            self._expire_due()
            ok = all(compare_holds(self._data.get(c.key), c) for c in compares)
            self._apply(success if ok else (failure or []))
            return TxnResult(succeeded=ok, revision=self._rev)

    def compact(self, revision: int) -> None:
        with self._cond:
            if revision > self._rev:
                raise StoreError(f"cannot compact to future revision {revision} (at {self._rev})")
            if revision <= self._compacted:
                raise StoreError(f"revision {revision} has already been compacted")
            self._compacted = revision
            cut = bisect.bisect_left(self._history_revs, revision)
            del self._history[:cut], self._history_revs[:cut], self._history_prev[:cut]

    # -- leases --------------------------------------------------------------------------------
    def lease(self, ttl: int) -> Lease:
        with self._cond:
            lease_id = next(self._lease_ids)
            self._leases[lease_id] = _LeaseRecord(ttl, self._clock() + ttl)
            return MemoryLease(self, lease_id, ttl)

    def expire_lease(self, lease_id: int) -> None:
        """Test hook: let a lease expire now (its keys are deleted in one revision)."""
        with self._cond:
            self._drop_lease(lease_id)

    def _refresh_lease(self, lease_id: int) -> None:
        with self._cond:
            self._expire_due()
            rec = self._leases.get(lease_id)
            if rec is None:
                raise LeaseExpired(f"lease {lease_id:x} has expired or was revoked")
            rec.deadline = self._clock() + rec.ttl

    def _revoke_lease(self, lease_id: int) -> None:
        with self._cond:
            self._drop_lease(lease_id)

    def _drop_lease(self, lease_id: int) -> None:
        rec = self._leases.pop(lease_id, None)
        if rec and rec.keys:
            self._apply([Delete(k) for k in sorted(rec.keys)])

    def _expire_due(self) -> None:
        now = self._clock()
        for lease_id in [i for i, r in self._leases.items() if r.deadline <= now]:
            self._drop_lease(lease_id)

    # -- watch ---------------------------------------------------------------------------------
    def watch(self, prefix: str, start_revision: int | None = None) -> Watcher:
        with self._cond:
            self._expire_due()
            start = self._rev + 1 if start_revision is None else start_revision
            return MemoryWatcher(self, prefix, start)

    def _wait_events(self, w: MemoryWatcher) -> list[Event] | None:
        """The next events for ``w`` (blocking), or ``None`` once it is closed."""
        with self._cond:
            while not w._closed:
                self._expire_due()
                if w._next < self._compacted:
                    raise WatchCompacted(
                        f"watch on {w._prefix!r} from revision {w._next}: history before "
                        f"{self._compacted} was compacted; re-list and watch again",
                        self._compacted)
                start = bisect.bisect_left(self._history_revs, w._next)
                batch = [e for e in self._history[start:] if e.key.startswith(w._prefix)]
                w._next = max(w._next, self._rev + 1)
                if batch:
                    return batch
                self._cond.wait(_WAIT_SLICE if self._leases else None)
            return None

    def _close_watcher(self, w: MemoryWatcher) -> None:
        with self._cond:
            w._closed = True
            self._cond.notify_all()

    # -- internals -----------------------------------------------------------------------------
    def _matching(self, op: Delete) -> list[str]:
        if op.prefix:
            return sorted(k for k in self._data if k.startswith(op.key))
        return [op.key] if op.key in self._data else []

    def _apply(self, ops: list[Put | Delete]) -> None:
        """Apply ops as one revision (none if nothing changes).  Caller holds the lock."""
        puts = [op.key for op in ops if isinstance(op, Put)]
        if len(set(puts)) != len(puts):
            raise StoreError("duplicate key given in txn request")
        for op in ops:
            if isinstance(op, Put) and op.lease and op.lease not in self._leases:
                raise LeaseExpired(f"lease {op.lease:x} not found")
        events: list[Event] = []
        prevs: list[KeyValue | None] = []
        rev = self._rev + 1
        for op in ops:
            if isinstance(op, Put):
                prevs.append(self._data.get(op.key))
                events.append(self._put_one(op, rev))
            else:
                for k in self._matching(op):
                    prevs.append(self._data.get(k))
                    events.append(self._delete_one(k, rev))
        if not events:
            return
        self._rev = rev
        self._history.extend(events)
        self._history_revs.extend(e.mod_revision for e in events)
        self._history_prev.extend(prevs)
        self._cond.notify_all()

    def _put_one(self, op: Put, rev: int) -> Event:
        old = self._data.get(op.key)
        if old and old.lease and old.lease in self._leases:
            self._leases[old.lease].keys.discard(op.key)
        if op.lease:
            self._leases[op.lease].keys.add(op.key)
        if old:
            kv = replace(old, value=op.value, mod_revision=rev, version=old.version + 1,
                         lease=op.lease)
        else:
            kv = KeyValue(op.key, op.value, create_revision=rev, mod_revision=rev, version=1,
                          lease=op.lease)
        self._data[op.key] = kv
        return Event("put", op.key, op.value, rev, old.value if old else None)

    def _delete_one(self, key: str, rev: int) -> Event:
        old = self._data.pop(key)
        if old.lease and old.lease in self._leases:
            self._leases[old.lease].keys.discard(key)
        return Event("delete", key, None, rev, old.value)
