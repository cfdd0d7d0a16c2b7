"""Writes larger than one etcd transaction, all-or-nothing for every reader.

etcd (3.4 defaults) allows 128 operations and 1.5 MiB per request.  A larger write:

1. takes the lock ``/netplugin/config/txn`` (create-only; its value names the write and the
   lease of a liveness key ``/netplugin/locks/<id>`` that the writer keeps alive).  Every small
   write's transaction requires the lock to be absent, so from here on nothing but this writer
   changes intent;
2. reads and plans under the lock, then writes its batches, each guarded by the lock's value
   (a writer presumed dead and taken over can write nothing more);
3. commits: one last transaction deletes the lock together with its final keys.

Readers read intent as of the revision before the lock while it exists
(:mod:`intent.consistent`), so they see the store before or after the write, never between.  A
writer that dies half-way leaves the lock without its liveness key once the lease expires; the
next writer takes the lock over (the lock key stays, keeping its create revision) and first puts
every intent key back to its value at that revision (:func:`rollback`).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

from intent import keys
from intent.errors import ConflictError
from intent.store import Compare, Delete, KeyValue, Lease, Put, Store, StoreError

LOG = logging.getLogger(__name__)

TXN_OPS = 128  # etcd --max-txn-ops default
TXN_BYTES = 900_000  # raw key+value bytes per request (base64 and JSON push it towards 1.5 MiB)
LOCK_TTL = 10  # seconds a dead writer keeps the lock before it can be taken over
PARALLEL = 4  # batches in flight at once


class LockHeld(ConflictError):
    """Another large write holds the lock (and is alive)."""


def op_bytes(op: Put | Delete) -> int:
    return len(op.key) + (len(op.value) if isinstance(op, Put) else 0) + 16


def batches(ops: list[Put | Delete], room: int = TXN_OPS - 1) -> list[list[Put | Delete]]:
    """``ops`` cut into transactions that each fit etcd's default limits (one op of each kept
    free for the guard compare's sake)."""
    out: list[list[Put | Delete]] = []
    cur: list[Put | Delete] = []
    size = 0
    for op in ops:
        b = op_bytes(op)
        if cur and (len(cur) >= room or size + b > TXN_BYTES):
            out.append(cur)
            cur, size = [], 0
        cur.append(op)
        size += b
    if cur:
        out.append(cur)
    return out


def _holder(kv: KeyValue) -> dict:
    try:
        data = json.loads(kv.value)
        return data if isinstance(data, dict) else {}
    except ValueError:
        return {}


def holder_alive(store: Store, kv: KeyValue) -> bool:
    """Whether the writer holding the lock ``kv`` still keeps its liveness key."""
    write_id = _holder(kv).get("id")
    return bool(write_id) and store.get(keys.lock(str(write_id))) is not None


class LargeWrite:
    """The lock held for one large write (a context manager); see the module docstring."""

    def __init__(self, store: Store, write_id: str, wait: float = 60.0,
                 sleep: Callable[[float], None] = time.sleep, ttl: int = LOCK_TTL) -> None:
        self.store = store
        self.write_id = write_id
        self.wait = wait
        self.sleep = sleep
        self.ttl = ttl
        self.value = json.dumps({"id": write_id, "owner": f"{socket.gethostname()}:{os.getpid()}",
                                 "since": round(time.time(), 3)}, sort_keys=True)
        self.lease: Lease | None = None
        self.base_revision = 0  # intent before the lock (what readers see meanwhile)
        self._stop = threading.Event()
        self._keeper: threading.Thread | None = None
        self.written = False
        self.committed = False

    @property
    def guard(self) -> Compare:
        return Compare(keys.CONFIG_TXN, "value", "=", self.value)

    # ------------------------------------------------------------------ lock
    def __enter__(self) -> LargeWrite:
        self.lease = self.store.lease(self.ttl)
        self._keeper = threading.Thread(target=self._keep_alive, daemon=True,
                                        name=f"lock {self.write_id[:8]}")
        self._keeper.start()
        deadline = time.monotonic() + self.wait
        live = Put(keys.lock(self.write_id), "", lease=self.lease.id)
        while True:
            res = self.store.txn([Compare(keys.CONFIG_TXN, "version", "=", 0)],
                                 [Put(keys.CONFIG_TXN, self.value), live])
            if res.succeeded:
                kv = self.store.get(keys.CONFIG_TXN)
                self.base_revision = (kv.create_revision if kv else res.revision) - 1
                return self
            kv = self.store.get(keys.CONFIG_TXN)
            if kv is not None and not holder_alive(self.store, kv):
                if self._take_over(kv, live):
                    return self
                continue
            if time.monotonic() > deadline:
                self._release_lease()
                holder = _holder(kv).get("owner", "?") if kv else "?"
                raise LockHeld(f"another large write (by {holder}) is still in progress; "
                               f"try again later")
            self.sleep(0.05)

    def _take_over(self, kv: KeyValue, live: Put) -> bool:
        dead = _holder(kv).get("id", "?")
        res = self.store.txn([Compare(keys.CONFIG_TXN, "mod", "=", kv.mod_revision)],
                             [Put(keys.CONFIG_TXN, self.value), live])
        if not res.succeeded:
            return False
        self.base_revision = kv.create_revision - 1
        LOG.warning("large write %s died half-way: rolling it back to revision %d", dead,
                    self.base_revision)
        rollback(self.store, self.base_revision, self.guard)
        return True

    def _keep_alive(self) -> None:
        while not self._stop.wait(max(0.5, self.ttl / 3)):
            try:
                if self.lease is not None:
                    self.lease.refresh()
            except StoreError as exc:
                LOG.warning("large write %s: lease refresh failed: %s", self.write_id[:8], exc)

    def _release_lease(self) -> None:
        self._stop.set()
        if self.lease is not None:
            try:
                self.lease.revoke()
            except StoreError:
                pass
            self.lease = None

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if not self.committed:
                self._abort()
        finally:
            self._release_lease()

    def _abort(self) -> None:
        """Undo what this writer wrote and drop the lock (if the store can be reached; if not,
        the next writer rolls back once the lease expires)."""
        try:
            if self.written:
                rollback(self.store, self.base_revision, self.guard)
            self.store.txn([self.guard], [Delete(keys.CONFIG_TXN),
                                          Delete(keys.lock(self.write_id))])
        except StoreError as exc:
            LOG.warning("large write %s: could not clean up (%s); the next writer will",
                        self.write_id[:8], exc)

    # ------------------------------------------------------------------ writing
    def write(self, ops: Iterable[Put | Delete]) -> None:
        """Write ``ops`` in batches (in parallel; each key at most once)."""
        parts = batches(list(ops))
        if not parts:
            return
        self.written = True
        guard = self.guard

        def send(part: list[Put | Delete]) -> None:
            if not self.store.txn([guard], part).succeeded:
                raise ConflictError("the large-write lock was taken over while writing "
                                    "(this writer was presumed dead)")

        with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
            for f in [pool.submit(send, p) for p in parts]:
                f.result()

    def commit(self, final: list[Put | Delete]) -> int:
        """The last transaction: ``final`` plus deleting the lock; returns its revision."""
        res = self.store.txn([self.guard], [*final, Delete(keys.CONFIG_TXN),
                                            Delete(keys.lock(self.write_id))])
        if not res.succeeded:
            raise ConflictError("the large-write lock was taken over before the commit")
        self.committed = True
        return res.revision


def rollback(store: Store, revision: int, guard: Compare) -> int:
    """Put every intent key back to its value at ``revision`` (under ``guard``); returns how
    many keys changed."""
    prefixes = keys.INTENT_PREFIXES
    then = store.read(prefixes=prefixes, revision=revision).items
    now = store.read(prefixes=prefixes).items
    ops: list[Put | Delete] = []
    for key, kv in now.items():
        if key == keys.CONFIG_TXN:
            continue
        old = then.get(key)
        if old is None:
            ops.append(Delete(key))
        elif old.value != kv.value:
            ops.append(Put(key, old.value))
    ops += [Put(k, kv.value) for k, kv in then.items() if k not in now and k != keys.CONFIG_TXN]
    for part in batches(ops):
        if not store.txn([guard], part).succeeded:
            raise ConflictError("the large-write lock changed hands during a rollback")
    return len(ops)
