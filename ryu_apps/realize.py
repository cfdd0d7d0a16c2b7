"""Realized revisions: which intent revision each host's switch holds, for waiters and the store.

Host *h* has realized revision *R* when its switch holds every change up to *R* that affects it.
The controller applies store events in order (:attr:`Realizer.applied`); a change that affects
a host's tables opens a *pending* window on that host from its revision until a sync of the host
completes.  So ``realized(h)`` is ``applied`` when nothing is pending there, else the revision
just before the first pending change.  A change that affects no host is realized at once.

Waiters (REST ``?wait``) are woken by events, not by polling.  In the store (the format is
:mod:`intent.realized`) a host's key says either "realized R, behind" or "current: realized
everything this process applied"; the process's applied revision is one key of its own.  So a
change writes the keys of the hosts it affects (and only when one falls behind or catches up)
plus the applied key, whatever the number of hosts.  Written batched (at most 128 operations
per transaction), host keys before the applied revision, off the critical path.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable

from intent import keys
from intent.realized import (
    applied_controller,
    applied_revisions,
    applied_value,
    realized_of,
    realized_value,
    written_by,
)
from intent.store import Compare, Delete, Put, Store, StoreError
from ryu_apps.framework import blocking, hub

LOG = logging.getLogger(__name__)
BATCH = 128
RETRY = 1.0
COALESCE = 0.1  # how long publishing waits for syncs under way (see Realizer._settle)


class Realizer:
    """Tracks pending changes per host and publishes realized revisions."""

    def __init__(self, store: Store, controller: str = "controller") -> None:
        self.store = store
        self.controller = controller
        self.process = uuid.uuid4().hex[:16]  # this process's applied key and host keys' "by"
        self.applied = 0
        self.seen = 0  # the watch position: every event up to here, relevant or not, is handled
        self.pending: dict[str, int] = {}  # host -> first revision not in a completed sync
        self.inflight: dict[str, int] = {}  # host -> first revision of the sync under way
        self.synced: set[str] = set()  # hosts whose switch completed a sync
        self.written: dict[str, tuple[int, bool]] = {}  # host -> (revision, current) in the store
        self._values: dict[str, str] = {}  # host -> the value last written
        self._dropped: dict[str, int] = {}  # hosts gone, still marked current: what they held
        self.applied_written = 0
        self._cleaned = False
        self._waiters: set = set()
        self._kick = hub.Event()
        self.running = False
        # when each host's oldest unrealized change arrived (mirrors pending / inflight)
        self._since_pending: dict[str, float] = {}
        self._since_inflight: dict[str, float] = {}
        self.on_realized: Callable[[str, float], None] | None = None  # (host, seconds)

    # ------------------------------------------------------------------ bookkeeping
    def advance(self, revision: int) -> None:
        """Every event up to ``revision`` is applied to the engine."""
        if revision > self.applied:
            self.applied = revision
            self._changed()

    def saw(self, revision: int) -> None:
        """The watch delivered everything up to ``revision`` (ignored events included): a
        waiter for such a revision is not kept waiting for a relevant event that never comes.
        Not published (the publisher's own writes would feed it)."""
        if revision > self.seen:
            self.seen = revision
            for ev in list(self._waiters):
                ev.set()

    def changed(self, host: str, revision: int) -> None:
        """``host``'s tables changed at ``revision``."""
        if host not in self.pending:
            self.pending[host] = revision
        self._since_pending.setdefault(host, time.monotonic())

    def begin(self, host: str) -> None:
        """A sync of ``host`` takes everything pending so far."""
        rev = self.pending.pop(host, None)
        if rev is not None:
            self.inflight[host] = min(rev, self.inflight.get(host, rev))
        t = self._since_pending.pop(host, None)
        if t is not None:
            self._since_inflight[host] = min(t, self._since_inflight.get(host, t))

    def end(self, host: str, ok: bool) -> None:
        """The sync of ``host`` completed (``ok``) or failed."""
        rev = self.inflight.pop(host, None)
        since = self._since_inflight.pop(host, None)
        if ok:
            self.synced.add(host)
            if since is not None and self.on_realized is not None:
                self.on_realized(host, time.monotonic() - since)
        else:
            if rev is not None:
                self.pending[host] = min(rev, self.pending.get(host, rev))
            if since is not None:
                self._since_pending[host] = min(since, self._since_pending.get(host, since))
        self._changed()

    def forget(self, host: str) -> None:
        """``host``'s switch is gone: it realizes nothing until it syncs again (its key, if it
        says current, is marked behind before the applied revision moves on)."""
        if host in self.synced and self.written.get(host, (0, False))[1]:
            self._dropped[host] = self.realized(host)
        self.synced.discard(host)
        self.written.pop(host, None)
        self.pending.pop(host, None)
        self.inflight.pop(host, None)
        self._since_pending.pop(host, None)
        self._since_inflight.pop(host, None)
        self._changed()

    def written_revision(self, host: str) -> int | None:
        """The realized revision the store shows for ``host`` (None: not written)."""
        w = self.written.get(host)
        if w is None:
            return None
        return max(w[0], self.applied_written) if w[1] else w[0]

    def realized(self, host: str, live: bool = False) -> int:
        """The revision ``host`` realized (``live``: counting the watch position too, for
        waiters in this process)."""
        if host not in self.synced:
            return 0
        firsts = [r for r in (self.pending.get(host), self.inflight.get(host)) if r is not None]
        if firsts:
            return min(firsts) - 1
        return max(self.applied, self.seen) if live else self.applied

    # ------------------------------------------------------------------ waiting
    def _changed(self) -> None:
        for ev in list(self._waiters):
            ev.set()
        self._kick.set()

    def notify(self) -> None:
        """Something waiters depend on changed (e.g. another controller's realized revision)."""
        self._changed()

    def wait(self, revision: int, hosts, timeout: float, realized=None) -> bool:
        """Block (cooperatively) until every host of ``hosts()`` realized ``revision``
        (``realized(host)``: default :meth:`realized` counting the watch position)."""
        realized = realized or (lambda h: self.realized(h, live=True))
        deadline = time.monotonic() + timeout
        ev = hub.Event()
        self._waiters.add(ev)
        done: set[str] = set()  # hosts seen to have realized it (checked once, not per wake)
        try:
            while True:
                if max(self.applied, self.seen) >= revision:
                    now = set(hosts())
                    done &= now  # a host gone and back is checked again
                    done.update(h for h in now - done if realized(h) >= revision)
                    if done == now:
                        return True
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                ev.clear()
                ev.wait(timeout=left)
        finally:
            self._waiters.discard(ev)

    # ------------------------------------------------------------------ publishing
    def run(self) -> None:
        """Write changed host keys and the applied revision (a greenthread)."""
        self.running = True
        while self.running:
            self._kick.wait()
            self._kick.clear()
            hub.sleep(0)  # let a burst of events and syncs land first
            self._settle()
            try:
                if not self._cleaned:
                    self._clean_old_processes()
                self._publish()
            except StoreError as exc:
                LOG.warning("cannot write realized revisions (%s); retrying", exc)
                hub.sleep(RETRY)
                self._kick.set()

    def _host_changes(self) -> dict[str, tuple[int, bool]]:
        """Hosts whose key must change: fallen behind, caught up, or never written."""
        out = {}
        for h in self.synced:
            r = self.realized(h)
            if not r:
                continue
            current = h not in self.pending and h not in self.inflight
            prev = self.written.get(h)
            if prev is not None and (prev == (r, current) or (current and prev[1])):
                continue  # unchanged, or still current (the applied revision carries it)
            out[h] = (r, current)
        return out

    def _publish(self) -> None:
        todo = self._host_changes()
        applied = self.applied
        puts = [(h, realized_value(r, cur, self.process)) for h, (r, cur) in sorted(todo.items())]
        for i in range(0, len(puts), BATCH):
            part = puts[i:i + BATCH]
            blocking(self.store.txn, [], [Put(keys.realized(h), v) for h, v in part])
            for h, v in part:
                self.written[h], self._values[h] = todo[h], v
        for h, r in sorted(self._dropped.items()):  # gone switches, before applied moves on
            if h not in self.synced:
                value = self._values.get(h)
                if value is not None:  # only if the key is still ours (another may have it)
                    blocking(self.store.txn, [Compare(keys.realized(h), "value", "=", value)],
                             [Put(keys.realized(h), realized_value(r, False, self.process))])
                self._values.pop(h, None)
            del self._dropped[h]
        if applied != self.applied_written:
            blocking(self.store.put, keys.applied(self.process),
                     applied_value(applied, self.controller))
            self.applied_written = applied

    def _clean_old_processes(self) -> None:
        """Retire the applied keys of this controller's earlier processes.  The hosts they
        marked current are first marked behind at what they realized (unless someone wrote
        their key since), so no reader's view of them goes back."""
        snap = blocking(self.store.read, (), [keys.OPER_APPLIED, keys.OPER_REALIZED])
        values = {k: kv.value for k, kv in snap.items.items()}
        old = {p: r for p, r in applied_revisions(values).items() if p != self.process and
               applied_controller(values[keys.applied(p)]) == self.controller}
        retire = [(k, v, realized_value(realized_of(v, old), False, self.process))
                  for k, v in sorted(values.items())
                  if k.startswith(keys.OPER_REALIZED) and written_by(v) in old and
                  keys.last_segment(k) not in self.written and
                  realized_of(v, old) != realized_of(v, {})]  # current: counts on its applied
        for i in range(0, len(retire), BATCH):
            part = retire[i:i + BATCH]
            res = blocking(self.store.txn, [Compare(k, "value", "=", v) for k, v, _ in part],
                           [Put(k, new) for k, _, new in part])
            if not res.succeeded:  # some were written since: the others one by one
                for k, v, new in part:
                    blocking(self.store.txn, [Compare(k, "value", "=", v)], [Put(k, new)])
        gone = [keys.applied(p) for p in sorted(old)]
        for i in range(0, len(gone), BATCH):
            blocking(self.store.txn, [], [Delete(k) for k in gone[i:i + BATCH]])
        self._cleaned = True

    def _settle(self) -> None:
        """Wait (at most ``COALESCE`` s) for the syncs under way: a change would otherwise be
        published twice - its host behind, then caught up - and waiters only want the second."""
        deadline = time.monotonic() + COALESCE
        while self.running and (self.pending or self.inflight):
            left = deadline - time.monotonic()
            if left <= 0:
                return
            self._kick.clear()
            self._kick.wait(timeout=left)

    def stop(self) -> None:
        self.running = False
        self._kick.set()
