"""Realized revisions: which intent revision each host's switch holds, for waiters and the store.

Host *h* has realized revision *R* when its switch holds every change up to *R* that affects it.
The controller applies store events in order (:attr:`Realizer.applied`); a change that affects
a host's tables opens a *pending* window on that host from its revision until a sync of the host
completes.  So ``realized(h)`` is ``applied`` when nothing is pending there, else the revision
just before the first pending change.  A change that affects no host is realized at once.

Waiters (REST ``?wait``) are woken by events, not by polling.  The per-host store keys
(``/netplugin/oper/realized/<host>``) and the applied revision (``/netplugin/oper/applied``) are
written only when their value changes, batched (at most 128 operations per transaction), off
the critical path.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable

from intent import keys
from intent.store import Put, Store, StoreError
from ryu_apps.framework import blocking, hub

LOG = logging.getLogger(__name__)
BATCH = 128
RETRY = 1.0
COALESCE = 0.1  # how long publishing waits for syncs under way (see Realizer._settle)
APPLIED = "\0applied"  # the applied revision's slot in ``written`` (no host has this name)


class Realizer:
    """Tracks pending changes per host and publishes realized revisions."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.applied = 0
        self.seen = 0  # the watch position: every event up to here, relevant or not, is handled
        self.pending: dict[str, int] = {}  # host -> first revision not in a completed sync
        self.inflight: dict[str, int] = {}  # host -> first revision of the sync under way
        self.synced: set[str] = set()  # hosts whose switch completed a sync
        self.written: dict[str, int] = {}
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
        """``host``'s switch is gone: it realizes nothing until it syncs again."""
        self.synced.discard(host)
        self.written.pop(host, None)
        self.pending.pop(host, None)
        self.inflight.pop(host, None)
        self._since_pending.pop(host, None)
        self._since_inflight.pop(host, None)
        self._changed()

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
        try:
            while True:
                if max(self.applied, self.seen) >= revision and all(
                        realized(h) >= revision for h in hosts()):
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
        """Write changed per-host realized revisions (a greenthread)."""
        self.running = True
        while self.running:
            self._kick.wait()
            self._kick.clear()
            hub.sleep(0)  # let a burst of events and syncs land first
            self._settle()
            todo = {h: self.realized(h) for h in self.synced}
            todo = {keys.realized(h): r for h, r in todo.items()
                    if r and self.written.get(h) != r}
            if self.applied != self.written.get(APPLIED):
                todo[keys.OPER_APPLIED] = self.applied
            if not todo:
                continue
            items = sorted(todo.items())
            try:
                for i in range(0, len(items), BATCH):
                    part = items[i:i + BATCH]
                    blocking(self.store.txn, [], [Put(k, json.dumps({"revision": r}))
                                                  for k, r in part])
                    self.written.update((keys.last_segment(k) if k != keys.OPER_APPLIED
                                         else APPLIED, r) for k, r in part)
            except StoreError as exc:
                LOG.warning("cannot write realized revisions (%s); retrying", exc)
                hub.sleep(RETRY)
                self._kick.set()

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
