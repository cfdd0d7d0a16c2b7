"""Which controller is master of which switch, decided through etcd.

Every controller holds one lease (``--master-lease-ttl`` seconds) and registers itself under
``/netplugin/oper/controllers/<name>``.  The master of host *h*'s switch is whoever holds
``/netplugin/oper/masters/<h>``, a key put under its lease with "only if absent": at most one
master per switch, and when a master dies its keys vanish with its lease.  The key's mod revision
is the OpenFlow *generation id* the master sends in its ROLE_REQUEST: etcd revisions only grow,
so a later master always carries a larger one and a stale master is refused by the switch.

Load is spread by rendezvous hashing over the live controllers: for a switch without a master,
the preferred controller claims at once and the others only after ``claim_delay`` (in case the
preferred one does not reach that switch).  A mastership is never moved away from a live master
(no flapping when a controller comes back).  A controller restarted under the same name takes
its own previous keys over at once instead of waiting for its old lease to expire.

Framework-light (the hub only); store calls go through ``blocking``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from intent import keys
from intent.logfmt import logline
from intent.realized import applied_revisions, realized_of, written_by
from intent.store import Compare, Delete, Event, LeaseExpired, Put, Store, StoreError
from ryu_apps.framework import blocking, hub

LOG = logging.getLogger(__name__)
RETRY = 0.5


@dataclass(frozen=True)
class Master:
    """The master of one switch: controller name, generation id (the key's mod revision)."""

    controller: str
    generation: int
    lease: int = 0
    rest: str | None = None


def preferred(host: str, controllers: Iterable[str]) -> str | None:
    """The live controller that should be master of ``host`` (rendezvous hashing: adding or
    removing a controller moves only the switches it gains or loses)."""
    return max(controllers, default=None,
               key=lambda c: hashlib.sha256(f"{host}\0{c}".encode()).digest())


def _master_of(value: str | None, revision: int) -> Master | None:
    try:
        doc = json.loads(value or "")
        return Master(str(doc["controller"]), revision, int(doc.get("lease", 0)),
                      doc.get("rest"))
    except (ValueError, KeyError, TypeError):
        return None


class Election:
    """This controller's side of the election: its lease, and everyone's masterships."""

    def __init__(self, store: Store, name: str, ttl: int = 5, rest: str | None = None,
                 claim_delay: float = 0.5) -> None:
        self.store = store
        self.name = name
        self.ttl = max(1, int(ttl))
        self.rest = rest
        self.claim_delay = claim_delay
        self.masters: dict[str, Master] = {}
        self.controllers: dict[str, dict] = {}
        # what hosts' masters wrote (intent.realized): host keys and processes' applied revisions
        self.realized_values: dict[str, str] = {}
        self.applied: dict[str, int] = {}
        self._by_process: dict[str, set[str]] = {}  # process -> hosts whose key it wrote
        self.lease = None
        self.valid_until = 0.0  # our masterships are certain until then (monotonic clock)
        self.seen = 0  # events up to this revision are in the state already
        self.on_change: Callable[[set[str] | None], None] = lambda hosts: None
        self.running = False
        self._thread = None

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Take a lease, register, load everyone's state, keep the lease alive."""
        self.running = True
        while self.running:
            try:
                self._register()
                self._load()
                break
            except StoreError as exc:
                LOG.warning("%s", logline("election-store-error", error=str(exc),
                                          retry=f"{RETRY}s"))
                hub.sleep(RETRY)
        self._thread = hub.spawn(self._keepalive)

    def stop(self) -> None:
        """Give every mastership up now (the others take over without waiting for the TTL)."""
        self.running = False
        if self._thread is not None:
            hub.kill(self._thread)
        if self.lease is not None:
            try:
                blocking(self.lease.revoke)
            except StoreError:
                pass

    def _register(self) -> None:
        t0 = time.monotonic()
        lease = blocking(self.store.lease, self.ttl)
        blocking(self.store.put, keys.controller(self.name),
                 json.dumps({"name": self.name, "rest": self.rest, "lease": lease.id}),
                 lease=lease.id)
        self.lease, self.valid_until = lease, t0 + self.ttl
        LOG.info("%s", logline("controller-registered", controller=self.name,
                               lease=f"{lease.id:x}", ttl=f"{self.ttl}s"))

    def _load(self) -> None:
        snap = blocking(self.store.read, (), [keys.OPER_MASTERS, keys.OPER_CONTROLLERS,
                                              keys.OPER_REALIZED, keys.OPER_APPLIED])
        self.masters, self.controllers = {}, {}
        self.realized_values, self.applied, self._by_process = {}, {}, {}
        for key, kv in snap.items.items():
            self._put(key, kv.value, kv.mod_revision)
        self.seen = snap.revision

    def _keepalive(self) -> None:
        while self.running:
            hub.sleep(self.ttl / 3)
            t0 = time.monotonic()
            try:
                blocking(self.lease.refresh)
                self.valid_until = t0 + self.ttl
            except LeaseExpired:
                LOG.warning("%s", logline("lease-expired", controller=self.name,
                                          masterships="lost"))
                self._lost()
                self._reregister()
            except StoreError as exc:
                if time.monotonic() > self.valid_until:
                    LOG.warning("%s", logline("lease-unrefreshed", controller=self.name,
                                              error=str(exc), masterships="lost"))
                    self._lost()
                    self._reregister()

    def _reregister(self) -> None:
        while self.running:
            try:
                self._register()
                self.on_change(None)
                return
            except StoreError as exc:
                LOG.warning("%s", logline("election-store-error", error=str(exc),
                                          retry=f"{RETRY}s"))
                hub.sleep(RETRY)

    def _lost(self) -> None:
        self.valid_until = 0.0
        self.masters = {h: m for h, m in self.masters.items() if m.controller != self.name}
        self.on_change(None)

    # ------------------------------------------------------------------ state
    def owns(self, key: str) -> bool:
        """Whether a store key is the election's (or a realized revision it tracks)."""
        return key.startswith((keys.OPER_MASTERS, keys.OPER_CONTROLLERS, keys.OPER_REALIZED,
                               keys.OPER_APPLIED))

    def realized_of(self, host: str) -> int:
        """The revision ``host`` realized, as its master's writes say (0: nothing known)."""
        return realized_of(self.realized_values.get(host), self.applied)

    def _wake_hosts_of(self, process: str) -> None:
        hosts = {h for h in self._by_process.get(process, ()) if self.is_mine(h) is None}
        if hosts:
            self.on_change(hosts)

    def apply(self, ev: Event) -> None:
        """One watch event under :meth:`owns`' prefixes."""
        if ev.mod_revision <= self.seen:
            return
        if ev.type == "put":
            self._put(ev.key, ev.value, ev.mod_revision)
            return
        name = keys.last_segment(ev.key)
        if ev.key.startswith(keys.OPER_MASTERS):
            m = self.masters.get(name)
            if m is not None and m.generation < ev.mod_revision:
                del self.masters[name]
                LOG.info("%s", logline("master-gone", host=name, controller=m.controller))
                self.on_change({name})
        elif ev.key.startswith(keys.OPER_CONTROLLERS):
            if self.controllers.pop(name, None) is not None:
                self.on_change(None)
        elif ev.key.startswith(keys.OPER_APPLIED):
            self.applied.pop(name, None)
            self._wake_hosts_of(name)
        else:
            self._set_realized(name, None)
            self.on_change({name})

    def _set_realized(self, host: str, value: str | None) -> None:
        old = written_by(self.realized_values.get(host))
        if old is not None:
            self._by_process.get(old, set()).discard(host)
        if value is None:
            self.realized_values.pop(host, None)
            return
        self.realized_values[host] = value
        by = written_by(value)
        if by is not None:
            self._by_process.setdefault(by, set()).add(host)

    def _put(self, key: str, value: str | None, revision: int) -> None:
        name = keys.last_segment(key)
        if key.startswith(keys.OPER_MASTERS):
            m = _master_of(value, revision)
            old = self.masters.get(name)
            if m is not None and (old is None or old.generation <= revision):
                self.masters[name] = m
                if old != m:
                    self.on_change({name})
        elif key.startswith(keys.OPER_CONTROLLERS):
            try:
                self.controllers[name] = json.loads(value or "")
            except ValueError:
                self.controllers[name] = {}
            self.on_change(None)
        elif key.startswith(keys.OPER_APPLIED):
            self.applied.update(applied_revisions({key: value}))
            self._wake_hosts_of(name)
        else:
            self._set_realized(name, value)
            if self.is_mine(name) is None:  # ours: our own write, our realizer knows already
                self.on_change({name})

    def is_mine(self, host: str) -> Master | None:
        """Our mastership of ``host`` (None: someone else's, nobody's, or no longer certain)."""
        m = self.masters.get(host)
        if (m is None or m.controller != self.name or self.lease is None or
                m.lease != self.lease.id or time.monotonic() >= self.valid_until):
            return None
        return m

    def claimable(self, host: str) -> bool:
        """Whether ``host``'s switch has no master, or only our previous life (a restart under
        the same name: take it over at once rather than wait for the old lease)."""
        m = self.masters.get(host)
        return m is None or (m.controller == self.name and self.lease is not None and
                             m.lease != self.lease.id)

    def preferred(self, host: str) -> str | None:
        return preferred(host, set(self.controllers) | {self.name})

    def claim(self, host: str) -> Master | None:
        """Become master of ``host`` if it has none (or only our previous life); the new
        mastership, or None when another controller holds it."""
        if self.lease is None or time.monotonic() >= self.valid_until:
            return None
        key = keys.master(host)
        cur = self.masters.get(host)
        if cur is not None and cur.controller == self.name and cur.lease != self.lease.id:
            compares = [Compare(key, "mod", "=", cur.generation)]  # our previous life
        else:
            compares = [Compare(key, "create", "=", 0)]
        value = json.dumps({"controller": self.name, "lease": self.lease.id, "rest": self.rest})
        res = blocking(self.store.txn, compares, [Put(key, value, lease=self.lease.id)])
        if not res.succeeded:
            return None
        m = Master(self.name, res.revision, self.lease.id, self.rest)
        old = self.masters.get(host)
        if old is None or old.generation <= res.revision:
            self.masters[host] = m
        LOG.info("%s", logline("master-claimed", host=host, controller=self.name,
                               generation=res.revision))
        return m

    def release(self, host: str, generation: int) -> None:
        """Give up the mastership of ``host`` taken at ``generation`` (its switch left us);
        a later claim is left alone."""
        try:
            blocking(self.store.txn, [Compare(keys.master(host), "mod", "=", generation)],
                     [Delete(keys.master(host))])
        except StoreError as exc:
            LOG.warning("%s", logline("master-release-error", host=host, error=str(exc)))
