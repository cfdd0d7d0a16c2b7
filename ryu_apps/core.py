"""The controller's engine room: store watch → intake → incremental engine → per-switch workers.

Framework-independent apart from the hub: the Ryu app (``ryu_apps.netplugin``) feeds it switch
connections and replies; it feeds itself from the store's watch.  Per switch, one greenthread
does the work, one step at a time:

* on connect, it reads only the marker entry: when its digest equals the engine's input digest
  for the host, the switch already holds the desired state (nothing is sent) and a sliced audit
  follows in the background; otherwise it reads everything and repairs (``full``);
* on intent changes, it sends the delta of the fragments that changed (``delta``);
* every ``audit_interval`` it re-reads the switch slice by slice (cookie bits) and repairs.

Entries the controller did not produce, or cannot decode, are deleted exactly; entries a switch
refuses are reported with their owner and the rest is sent again without them.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from functools import partial
from typing import Any

from intent import keys
from intent.consistent import WatchGate, read_consistent, watch_start
from intent.logfmt import logline
from intent.store import Store, StoreError, WatchCompacted
from ofctl import cookies, wire
from ofctl.engine import Engine, EntryDelta, HostTable
from ofctl.model import Flow, Group, Meter, SwitchState
from ofctl.pipeline import MARKER, marker_flow
from ryu_apps import roles
from ryu_apps.election import Election
from ryu_apps.framework import blocking, hub
from ryu_apps.gateways import GatewayLearner
from ryu_apps.intake import Intake
from ryu_apps.mirror import StoreMirror
from ryu_apps.realize import Realizer
from ryu_apps.switch import EQUAL, MASTER, NotMaster, Outgoing, Rejected, Session, SwitchError

LOG = logging.getLogger(__name__)
RETRY = 1.0
SLICE_BITS = 4  # audits read 2**SLICE_BITS slices of flows, by the cookie's low bits
# what the tables are computed from (config endpoints and allocations are not needed)
WATCHED = (keys.STATE, keys.CONFIG_HOSTS, keys.CONFIG_POLICIES, keys.OPER_HOSTS,
           keys.OPER_ENDPOINTS, keys.OPER_GATEWAYS, keys.CONFIG_QOS, keys.OPER_MCAST)


def _pause() -> None:
    hub.sleep(0)


class Controller:
    """Keeps every connected switch equal to the intent in the store."""

    def __init__(self, store: Store, audit_interval: float = 60.0, timeout: float = 60.0,
                 audit_on_connect: bool = True, election: Election | None = None) -> None:
        self.store = store
        self.election = election  # None: the only controller (role EQUAL, always writes)
        self.audit_interval = audit_interval
        self.audit_on_connect = audit_on_connect
        self.timeout = timeout
        self.engine = Engine()
        self.cache = Intake(self.engine)
        self.mirror = StoreMirror(store)  # the keys as the watch delivered them (small writes)
        self.realizer = Realizer(store, election.name if election is not None else "controller")
        self.sessions: dict[int, Session] = {}
        self.gateways = GatewayLearner(store, lambda: self.engine, self.writer_of)
        self.running = False
        self.events_seen = 0
        self.changed_at: dict[str, int] = {}  # host -> revision of the last change of its tables
        self.changed_floor = 0
        self.watch_revision = 0  # the newest revision the watch delivered and was applied
        # per-host totals that outlive a switch's session (metrics)
        self.syncs_total: Counter[str] = Counter()
        self.sync_errors: Counter[str] = Counter()
        self.changes_total: Counter[str] = Counter()
        self._threads: list[Any] = []
        self._watcher: Any = None
        self._snap = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, background: bool = False) -> None:
        """Load the store, then start the watch, realize and audit greenthreads
        (``background``: return at once; switches that connect meanwhile wait for the load,
        so the OpenFlow listener can take them while a large store is read)."""
        self.running = True
        if self.election is not None:
            self.election.on_change = partial(roles.on_change, self)
            self.election.start()
        if background:
            self._threads = [hub.spawn(self._load_and_run)]
        else:
            self._load_and_run()

    def _load_and_run(self) -> None:
        self._reload()
        self._threads += [hub.spawn(self._watch_loop), hub.spawn(self.realizer.run),
                          hub.spawn(self.gateways.run)]
        if self.audit_interval > 0:
            self._threads.append(hub.spawn(self._audit_loop))

    def stop(self) -> None:
        self.running = False
        if self.election is not None:
            self.election.stop()
        if self._watcher is not None:
            self._watcher.close()
        for s in list(self.sessions.values()):
            s.abort()
        self.realizer.stop()
        self.gateways.stop()
        for t in self._threads:
            hub.kill(t)
        self._threads = []

    def _reload(self) -> None:
        while self.running:
            try:
                snap = blocking(read_consistent, self.store, (), WATCHED)
                break
            except StoreError as exc:
                LOG.warning("%s", logline("store-error", error=str(exc), retry=f"{RETRY}s"))
                hub.sleep(RETRY)
        else:
            return
        fresh = Engine()
        intake = Intake(fresh)
        intake.load(snap)
        self.engine, self.cache, self._snap = fresh, intake, snap
        self.mirror.load(snap)
        # the newest change any host may still have to realize (for hosts another master has)
        self.changed_floor = max((kv.mod_revision for kv in snap.items.values()), default=0)
        self.realizer.advance(intake.revision)
        for s in self.sessions.values():
            s.host = intake.host_for_dpid(s.dpid)
            s.need_full = True
            s.kick()

    # ------------------------------------------------------------------ store side
    def _watch_loop(self) -> None:
        gate, start = WatchGate(self._snap), watch_start(self._snap)
        while self.running:
            try:
                self._watcher = blocking(self.store.watch, keys.ROOT, start)
                it = self._watcher.batches()
                while self.running:
                    batch = blocking(next, it, None)
                    if batch is None:
                        break
                    for ev in batch:
                        for e in gate.feed(ev):
                            self.on_event(e)
                    start = batch[-1].mod_revision + 1
                    self.watch_revision = batch[-1].mod_revision
                    self.mirror.settle(batch[-1].mod_revision, gate.holding)
                    if not gate.holding:  # every relevant event up to here is applied
                        self.realizer.advance(self.cache.revision)
                        self.realizer.saw(batch[-1].mod_revision)
            except WatchCompacted:
                LOG.warning("watch history compacted: re-reading the store")
                self._reload()
                gate, start = WatchGate(self._snap), watch_start(self._snap)
            except StoreError as exc:
                LOG.warning("%s", logline("watch-error", error=str(exc), retry="resume"))
                hub.sleep(RETRY)
            except Exception:  # noqa: BLE001 - keep the controller alive, log loudly
                LOG.exception("watch loop error")
                hub.sleep(RETRY)

    def on_event(self, ev: Any) -> None:
        """Apply one store event and wake the switches it affects."""
        self.events_seen += 1
        self.mirror.apply(ev)
        if self.election is not None and self.election.owns(ev.key):
            self.election.apply(ev)
            return
        if not self.cache.apply(ev):
            return
        if ev.key.startswith(keys.OPER_HOSTS):
            self._bind_hosts()
        dirty = self.engine.dirty_hosts()
        for host in dirty:
            self.realizer.changed(host, ev.mod_revision)
            self.changed_at[host] = ev.mod_revision
        for s in self.sessions.values():
            if s.host in dirty:
                s.kick()
            elif s.host and s.checked is not None and s.host not in self.engine.tables and \
                    self.engine.digest(s.host) != s.checked:
                self.realizer.changed(s.host, ev.mod_revision)  # its table is still to build

    def _audit_loop(self) -> None:
        while self.running:
            hub.sleep(self.audit_interval)
            for s in list(self.sessions.values()):
                s.audit()

    # ------------------------------------------------------------------ switch side
    def switch_connected(self, dp: Any) -> Session:
        """A switch finished its handshake: start its session (marker check, then repair)."""
        old = self.sessions.pop(dp.id, None)
        if old is not None:
            old.abort()
        s = Session(dp, self.cache.host_for_dpid(dp.id), timeout=self.timeout)
        s.realized_written = self.realizer.written_revision
        self.sessions[dp.id] = s
        LOG.info("%s", logline("switch-connected", dpid=f"{dp.id:016x}",
                               host=s.host or "not-registered-yet"))
        hub.spawn(self._worker, s)
        s.kick()
        return s

    def switch_disconnected(self, dp: Any) -> None:
        s = self.sessions.get(dp.id)
        if s is not None and s.dp is dp:
            del self.sessions[dp.id]
            s.abort()
            if s.host:
                self.engine.drop_table(s.host)
                self.realizer.forget(s.host)
                mine = self.election and self.election.is_mine(s.host)
                if mine:  # the others need not wait for our lease to take this switch
                    hub.spawn(self.election.release, s.host, mine.generation)
            LOG.info("%s", logline("switch-disconnected", dpid=f"{dp.id:016x}", host=s.host))

    def switch_message(self, dp: Any, msg: Any) -> None:
        s = self.sessions.get(dp.id)
        if s is not None and s.dp is dp:
            s.on_message(msg)

    def session_of(self, host: str) -> Session | None:
        """The session of ``host``'s switch (None: not connected)."""
        for s in self.sessions.values():
            if s.host == host and s.alive:
                return s
        return None

    def writer_of(self, host: str) -> Session | None:
        """The session of ``host``'s switch when this controller may send to it."""
        return self.session_of(host) if self.is_master(host) else None

    def packet_in(self, dp: Any, data: bytes) -> None:
        """A frame a switch passed up (only gateway ARP replies are sent to the controller)."""
        s = self.sessions.get(dp.id)
        if s is not None and s.dp is dp:
            hub.spawn(self.gateways.packet_in, s.host, bytes(data))

    def _bind_hosts(self) -> None:
        for s in self.sessions.values():
            host = self.cache.host_for_dpid(s.dpid)
            if host != s.host:
                LOG.info("switch %016x is host %s", s.dpid, host)
                if s.host:
                    self.engine.drop_table(s.host)
                    self.realizer.forget(s.host)
                s.host, s.in_sync, s.need_check = host, False, True
                s.kick()

    def _worker(self, s: Session) -> None:
        while s.alive and self.running:
            s.wake.wait()
            s.wake.clear()
            if not s.alive or not s.host:
                continue
            s.busy = True
            try:
                if self.election is not None and not roles.settle(self, s):
                    continue
                while s.alive and s.host and (s.pending or s.need_check or s.need_full or
                                              s.checked is not None):
                    s.pending = False
                    self.sync(s)
                roles.took_over(s)
                if s.alive and s.audit_due and not s.audit_slices:
                    s.audit_due = False
                    s.audit_slices = list(range(1 << SLICE_BITS)) + [-1]
                if s.alive and s.audit_slices:
                    self._audit_slice(s, s.audit_slices.pop(0))
                    if s.audit_slices:
                        s.wake.set()
            except NotMaster as exc:
                roles.refused(self, s, str(exc))
            except Rejected as exc:
                self._failed(s, str(exc), full=False)
            except SwitchError as exc:
                self._failed(s, str(exc))
            except Exception as exc:  # noqa: BLE001 - a bad entry must not kill the worker
                LOG.exception("%s", logline("sync-exception", host=s.host, error=repr(exc)))
                self._failed(s, repr(exc))
            finally:
                s.busy = False

    def _failed(self, s: Session, why: str, full: bool = True) -> None:
        LOG.warning("%s", logline("sync-error", host=s.host, error=why, retry="re-read"))
        s.last_error, s.in_sync = why, False
        if s.host:
            self.sync_errors[s.host] += 1
            self.realizer.end(s.host, ok=False)
        s.need_full = s.need_full or full
        if s.alive:
            hub.spawn_after(RETRY, s.kick)

    # ------------------------------------------------------------------ syncing
    def sync(self, s: Session) -> int:
        """One step for switch ``s``; returns how many changes were sent."""
        host = s.host
        self.realizer.begin(host)
        if s.unsent is not None:  # a bundle the switch refused as a whole: it changed nothing
            unsent, s.unsent = s.unsent, None
            try:
                s.send(unsent[0])
            except Rejected:
                s.unsent = unsent
                raise
            s.marker = unsent[1]
            s.changes_sent += unsent[2]
            self.changes_total[host] += unsent[2]
        if s.need_check:
            sent = self._check(s)
        elif s.checked is not None:
            sent = self._build(s)
        elif s.need_full:
            sent = self._full(s)
        else:
            sent = self._delta(s)
        s.in_sync, s.last_error = True, None
        s.syncs += 1
        self.syncs_total[host] += 1
        self.realizer.end(host, ok=True)
        return sent

    def table_of(self, host: str) -> HostTable:
        """``host``'s desired table, kept up to date."""
        return self._table(host)

    def _table(self, host: str) -> HostTable:
        if host not in self.engine.tables:
            return self.engine.table(host, pause=_pause)
        return self.engine.refresh(host)

    def _check(self, s: Session) -> int:
        """On connect: a marker that carries the current input digest means the switch holds
        the desired state already.  Nothing is sent; the table is built next (``_build``)."""
        s.need_check = False
        digest = self.engine.digest(s.host)
        s.reads += 1
        found = [f for f in s.read_flows(table=MARKER) if isinstance(f, Flow)]
        s.marker = found[0].cookie if found else None
        if s.marker == digest and not s.need_full:
            self.engine.drop_table(s.host)
            s.checked = digest
            LOG.info("%s", logline("sync", host=s.host, mode="check", changes=0,
                                   result="marker matches, nothing to send"))
            return 0
        return self._full(s)

    def _build(self, s: Session) -> int:
        """Build the table of a switch whose marker matched; if the inputs changed meanwhile,
        the switch's content is unknown: read it all."""
        checked, s.checked = s.checked, None
        table = self._table(s.host)
        if self.engine.digest(s.host) != checked:
            return self._full(s)
        table.take()
        if self.audit_on_connect:
            s.audit()
        return 0

    def _full(self, s: Session) -> int:
        """Read the whole switch, send the difference (foreign entries removed exactly)."""
        s.need_full = False
        s.reads += 1
        flows, groups, meters = s.read_flows(), s.read_groups(), s.read_meters()
        table = self._table(s.host)
        table.take()
        have, foreign = {}, []
        s.marker = None
        for f in flows:
            if isinstance(f, wire.Foreign):
                LOG.info("%s", logline("foreign-entry", host=s.host, action="remove", why=f.why))
                foreign.append(f)
            elif f.table == MARKER and f.priority == 0 and not f.match:
                s.marker = f.cookie
            else:
                have[f.key] = f
        d = _difference(have, table.flows, groups, table.groups, meters, table.meters)
        out = Outgoing()
        _delta_changes(out, d, foreign)
        return self._send(s, out)

    def _delta(self, s: Session) -> int:
        table = self._table(s.host)
        out = Outgoing()
        _delta_changes(out, table.take())
        return self._send(s, out, level=logging.DEBUG)

    def _send(self, s: Session, out: Outgoing, level: int = logging.INFO) -> int:
        """Send ``out`` plus the marker (when the digest moved); entries the switch refuses are
        reported and the rest is sent again without them.  Logged at ``level`` (incremental
        syncs at DEBUG: one line per host and change is noise at INFO)."""
        digest = self.engine.digest(s.host)
        changes = len(out)
        if digest != s.marker:
            out.bundle.append((partial(wire.flow_add, marker_flow(digest)), "the marker entry"))
        if not len(out):
            return 0
        t0 = time.perf_counter()
        for _attempt in range(3):
            try:
                s.send(out)
                break
            except Rejected as exc:
                bad = {id(o) for o, _ in exc.rejected}
                if not bad:  # refused as a whole (nothing was applied): send it again later
                    s.unsent = (out, digest, changes)
                    raise
                s.rejected = [(_owner(o), why) for o, why in exc.rejected]
                LOG.warning("%s", logline("rejected", host=s.host, entries=len(bad),
                                          owners=",".join(o for o, _ in s.rejected),
                                          error=str(exc)))
                out = Outgoing(*[[m for m in part if id(m[1]) not in bad]
                                 for part in (out.before, out.bundle, out.after)])
                changes -= len(bad)
        else:
            raise SwitchError(f"{s.host}: the switch keeps refusing changes")
        s.marker = digest
        s.changes_sent += changes
        self.changes_total[s.host] += changes
        if LOG.isEnabledFor(level):
            LOG.log(level, "%s", logline("sync", host=s.host, changes=changes,
                                         ms=f"{(time.perf_counter() - t0) * 1e3:.1f}"))
        return changes

    def _audit_slice(self, s: Session, k: int) -> None:
        """Re-read one slice of the switch (cookie low bits == k; -1: groups and meters) and
        repair it against what the switch should hold now."""
        table = self._table(s.host)
        out = Outgoing()
        if k < 0:
            _delta_changes(out, _difference({}, {}, s.read_groups(), table.baseline_groups(),
                                            s.read_meters(), table.baseline_meters()))
            s.audits += 1
        else:
            mask = (1 << SLICE_BITS) - 1
            have, foreign = {}, []
            for f in s.read_flows(cookie=k, cookie_mask=mask):
                if isinstance(f, wire.Foreign):
                    foreign.append(f)
                else:
                    have[f.key] = f
            base = table.baseline_flows()
            if s.marker is not None:
                base[(MARKER, 0, ())] = marker_flow(s.marker)
            want = {key: f for key, f in base.items() if f.cookie & mask == k}
            changes = {key: (have.get(key), f) for key, f in want.items() if have.get(key) != f}
            for key, f in have.items():
                if key not in want:
                    changes[key] = (f, base.get(key))
            _delta_changes(out, EntryDelta(flows=changes), foreign)
        if len(out):
            LOG.warning("%s", logline("audit-repair", host=s.host, changes=len(out)))
            s.send(out)
            s.changes_sent += len(out)
            self.changes_total[s.host] += len(out)

    # ------------------------------------------------------------------ queries
    def desired(self, host: str) -> SwitchState:
        """The state ``host``'s switch should hold now."""
        if host in self.engine.tables:
            return self.engine.refresh(host).state()
        table = self.engine.table(host)  # a throw-away table: no switch of it is connected
        self.engine.drop_table(host)
        return table.state()

    def marker(self, host: str) -> Flow:
        """The marker entry ``host``'s switch should hold (its input digest)."""
        return marker_flow(self.engine.digest(host))

    def describe(self, cookie: int, table: int | None = None) -> str:
        """The intent object behind a cookie (the marker entry is the pipeline's)."""
        if table == MARKER:
            return "pipeline marker (input digest)"
        return cookies.describe(cookie)

    def host_status(self) -> list[dict]:
        """Every registered or connected host with its switch status and realized revision."""
        by_host = {s.host: s for s in self.sessions.values() if s.host}
        out = []
        for name in sorted(set(self.cache.hosts) | set(by_host)):
            s = by_host.get(name)
            reg = self.cache.hosts.get(name, {})
            out.append({
                "name": name, "dpid": reg.get("dpid"), "vtep_ip": reg.get("vtep_ip"),
                "connected": s is not None, "in_sync": bool(s and s.in_sync),
                "realized_revision": self.realized_of(name) if s else None,
                "changes_sent": s.changes_sent if s else 0, "syncs": s.syncs if s else 0,
                "last_error": s.last_error if s else None,
                "rejected": [f"{o} ({why})" for o, why in s.rejected] if s else [],
                **self.mastership(name, s),
            })
        return out

    def mastership(self, host: str, s: Session | None = None) -> dict:
        """Who is master of ``host``'s switch, and this controller's role there."""
        if self.election is None:
            return {"master": None, "role": EQUAL if s else None}
        m = self.election.masters.get(host)
        return {"master": m.controller if m else None, "master_rest": m.rest if m else None,
                "generation": m.generation if m else None,
                "role": s.role if s and s.role_known else None,
                "master_since": s.master_since if s else None}

    def is_master(self, host: str) -> bool:
        """Whether this controller writes ``host``'s switch (the only controller always does)."""
        s = self.session_of(host)
        if s is None:
            return False
        return self.election is None or (s.role == MASTER and
                                         self.election.is_mine(host) is not None)

    def realized_of(self, host: str, live: bool = False) -> int:
        """The revision ``host``'s switch realized: ours when we are its master (or the only
        controller), else as its master wrote it in the store (``live``: for waiters here)."""
        if self.election is None or self.is_master(host):
            return self.realizer.realized(host, live=live)
        return roles.realized_elsewhere(self, host, live)

    def wait_realized(self, revision: int, timeout: float) -> bool:
        """Block (cooperatively) until every connected host realized ``revision``."""
        return self.realizer.wait(revision, lambda: [s.host for s in self.sessions.values()
                                                     if s.host], timeout,
                                  realized=partial(self.realized_of, live=True))


def _owner(entry: Any) -> str:
    """The intent object behind an entry (or a description of what it is)."""
    cookie = getattr(entry, "cookie", None)
    return cookies.describe(cookie) if cookie is not None else str(entry)


def _difference(have_f: dict, want_f: dict, have_g: list, want_g: dict, have_m: list,
                want_m: dict) -> EntryDelta:
    """What turns the switch's entries into the wanted ones (``before`` is the switch's).
    Groups and meters the model cannot hold arrive as bare ids: they are deleted."""
    d = EntryDelta()
    d.flows = {k: (have_f.get(k), f) for k, f in want_f.items() if have_f.get(k) != f}
    d.flows.update((k, (f, None)) for k, f in have_f.items() if k not in want_f)
    for have, want, part, make in ((have_g, want_g, d.groups, lambda i: Group(i, ())),
                                   (have_m, want_m, d.meters, lambda i: Meter(i, ()))):
        by_id = {}
        for e in have:
            if isinstance(e, int):
                by_id[e] = make(e)  # unknown to the model: delete it
            else:
                by_id[e.group_id if isinstance(e, Group) else e.meter_id] = e
        part.update((k, (by_id.get(k), e)) for k, e in want.items() if by_id.get(k) != e)
        part.update((k, (e, None)) for k, e in by_id.items() if k not in want)
    return d


def _delta_changes(out: Outgoing, d: EntryDelta, foreign: list = ()) -> None:
    """A delta as messages, in an order no switch can refuse: meter adds (outside the bundle:
    OVS takes no meter mods in bundles), then in the bundle group adds, flow adds, flow deletes
    (foreign ones by their raw match), group deletes, then meter deletes."""
    for _k, (before, after) in d.meters.items():
        if after is not None:
            cmd = wire.OFPMC_ADD if before is None else wire.OFPMC_MODIFY
            out.before.append((partial(wire.meter_mod, after, cmd), after))
        else:
            out.after.append((partial(wire.meter_mod, before, wire.OFPMC_DELETE), before))
    group_deletes = []
    for _k, (before, after) in d.groups.items():
        if after is not None:
            cmd = wire.OFPGC_ADD if before is None else wire.OFPGC_MODIFY
            out.bundle.append((partial(wire.group_mod, after, cmd), after))
        else:
            group_deletes.append((partial(wire.group_mod, before, wire.OFPGC_DELETE), before))
    deletes = []
    for _key, (before, after) in d.flows.items():
        if after is not None:
            out.bundle.append((partial(wire.flow_add, after), after))
        elif before is not None:
            deletes.append((partial(wire.flow_delete, before), before))
    out.bundle.extend(deletes)
    out.bundle.extend((partial(wire.flow_delete_raw, f.table, f.priority, f.raw_match), f)
                      for f in foreign)
    out.bundle.extend(group_deletes)
