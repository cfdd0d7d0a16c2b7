"""Several controllers: the etcd election (in-memory store) and OpenFlow roles against a fake
switch that enforces them as OVS does (generation ids, slaves refused)."""

from __future__ import annotations

import json

import pytest

from agent.ovsdb import controller_targets
from allocator.write import apply_config
from intent import keys
from intent.loader import load_config
from intent.realized import realized_in
from intent.store_memory import MemoryStore
from ryu_apps.core import Controller
from ryu_apps.election import Election, preferred
from ryu_apps.framework import hub
from ryu_apps.framework import ofproto_v1_3 as OFP
from tests.fake_roles import RoleConnection, RoleSwitch
from tests.unit.test_controller import DOC, plug, register, wait_for

MASTER, SLAVE = OFP.OFPCR_ROLE_MASTER, OFP.OFPCR_ROLE_SLAVE


def test_the_agent_takes_one_or_several_controller_targets():
    assert controller_targets(None) == [] and controller_targets("") == []
    assert controller_targets("tcp:10.0.0.5:6653") == ["tcp:10.0.0.5:6653"]
    assert controller_targets("unix:/r/c2.sock, unix:/r/c.sock,,unix:/r/c2.sock") == [
        "unix:/r/c.sock", "unix:/r/c2.sock"]


# ------------------------------------------------------------------ the election alone
def test_preferred_spreads_switches_and_moves_only_those_of_a_lost_controller():
    hosts = [f"host{i}" for i in range(300)]
    three = {h: preferred(h, ["a", "b", "c"]) for h in hosts}
    counts = {c: list(three.values()).count(c) for c in "abc"}
    assert all(60 < n < 140 for n in counts.values()), counts
    two = {h: preferred(h, ["a", "b"]) for h in hosts}
    assert {h for h in hosts if two[h] != three[h]} == {h for h in hosts if three[h] == "c"}


def test_claim_is_exclusive_and_a_later_master_has_a_larger_generation():
    store = MemoryStore()
    a, b = Election(store, "a", ttl=5), Election(store, "b", ttl=5)
    a._register(), b._register()
    first = a.claim("host1")
    assert first is not None and b.claim("host1") is None
    assert first.generation == store.get(keys.master("host1")).mod_revision
    store.expire_lease(a.lease.id)  # a died: its key goes with its lease
    assert store.get(keys.master("host1")) is None
    b._load()
    second = b.claim("host1")
    assert second is not None and second.generation > first.generation
    assert b.is_mine("host1") == second
    a._load()  # once a hears of it, it is no longer master (until then: the switch refuses it)
    assert a.is_mine("host1") is None


def test_a_restart_under_the_same_name_takes_its_own_mastership_over_at_once():
    store = MemoryStore()
    old = Election(store, "ctl", ttl=30)
    old._register()
    g1 = old.claim("host1").generation
    new = Election(store, "ctl", ttl=30)  # the same controller, restarted: old lease still on
    new._register()
    new._load()
    again = new.claim("host1")
    assert again is not None and again.generation > g1
    assert json.loads(store.get(keys.master("host1")).value)["lease"] == new.lease.id
    assert Election(store, "other", ttl=30).claim("host1") is None


def test_an_uncertain_lease_is_no_mastership():
    store = MemoryStore()
    a = Election(store, "a", ttl=5)
    a._register()
    assert a.claim("host1") is not None
    a.valid_until = 0.0  # the lease could not be refreshed in time
    assert a.is_mine("host1") is None and a.claim("host2") is None


# ------------------------------------------------------------------ controllers and a switch
@pytest.fixture
def store():
    st = MemoryStore()
    apply_config(st, load_config(DOC))
    for i, h in enumerate(("host1", "host2", "host3"), start=1):
        register(st, h, i)
    plug(st, "orange-c1", "host1", 5)
    plug(st, "orange-c2", "host2", 5)
    return st


@pytest.fixture
def controllers(store):
    made = []

    def make(name: str) -> Controller:
        ctl = Controller(store, audit_interval=0, timeout=2,
                         election=Election(store, name, ttl=2, claim_delay=0.05))
        ctl.start()
        made.append(ctl)
        return ctl

    yield make
    for ctl in made:
        if ctl.running:
            ctl.stop()


def attach(ctl: Controller, sw: RoleSwitch) -> RoleConnection:
    conn = sw.connect()
    conn.deliver = ctl.switch_message
    ctl.switch_connected(conn)
    return conn


def in_charge(ctls: list[Controller], host: str) -> Controller:
    """The one controller that is master of ``host`` and done with its takeover."""
    def one():
        done = [c for c in ctls if c.is_master(host) and c.session_of(host).master_since]
        return done[0] if len(done) == 1 else None
    wait_for(one)
    return one()


def kill(ctl: Controller, sw: RoleSwitch) -> None:
    """``kill -9``: nothing more from it, its connections drop, its lease runs out."""
    ctl.running = False
    el = ctl.election
    el.running = False
    hub.kill(el._thread)
    for t in ctl._threads:
        hub.kill(t)
    if ctl._watcher is not None:
        ctl._watcher.close()
    for s in ctl.sessions.values():
        s.abort()
    sw.connections = [c for c in sw.connections if c.deliver != ctl.switch_message]
    ctl.store.expire_lease(el.lease.id)


def conn_of(ctl: Controller, sw: RoleSwitch) -> RoleConnection:
    return next(c for c in sw.connections if c.deliver == ctl.switch_message)


def test_one_master_writes_after_its_role_request_and_slaves_send_nothing(store, controllers):
    a, b = controllers("a"), controllers("b")
    sw = RoleSwitch(1)
    conns = {a: attach(a, sw), b: attach(b, sw)}
    master = in_charge([a, b], "host1")
    slave = b if master is a else a
    generation = store.get(keys.master("host1")).mod_revision
    mc, sc = conns[master], conns[slave]
    assert mc.roles_asked == [(MASTER, generation)] and sw.generation == generation
    kinds = [k for k, _m in mc.sent]
    first_change = next(i for i, k in enumerate(kinds) if "mod" in k or k == "bundle_ctrl")
    assert kinds.index("role_request") < first_change  # nothing before the role is answered
    assert mc.state() == master.desired("host1")
    wait_for(lambda: slave.session_of("host1").role == "slave")
    assert sc.roles_asked[-1] == (SLAVE, generation) and sc.table_changes() == []
    # the slave keeps its view: an intent change reaches its desired table, not the switch
    plug(store, "orange-c1", "host1", 6)
    rev = store.revision()
    wait_for(lambda: master.realized_of("host1") >= rev and slave.realized_of("host1") >= rev)
    assert mc.state() == master.desired("host1") == slave.desired("host1")
    assert sc.table_changes() == []


def test_the_new_master_sends_nothing_when_the_intent_did_not_change(store, controllers):
    a, b = controllers("a"), controllers("b")
    sw = RoleSwitch(1)
    attach(a, sw), attach(b, sw)
    old = in_charge([a, b], "host1")
    new = b if old is a else a
    before, g_old = dict(sw.flows), sw.generation
    kill(old, sw)
    assert in_charge([new], "host1") is new
    nc = conn_of(new, sw)
    assert nc.table_changes() == [] and sw.flows == before
    assert nc.roles_asked[-1][0] == MASTER and sw.generation > g_old
    assert new.session_of("host1").reads >= 1  # it read the switch back before deciding


def test_a_stale_master_cannot_write(store, controllers):
    a, b = controllers("a"), controllers("b")
    sw = RoleSwitch(1)
    conns = {a: attach(a, sw), b: attach(b, sw)}
    stale = in_charge([a, b], "host1")
    other = b if stale is a else a
    # the master freezes (no keepalive, no watch); its lease runs out and the other takes over
    el = stale.election
    hub.kill(el._thread)
    stale._watcher.close()
    for t in stale._threads:
        hub.kill(t)
    mine = el.masters["host1"]
    store.expire_lease(el.lease.id)
    assert in_charge([other], "host1") is other
    plug(store, "orange-c1", "host1", 7)  # a change only the new master sees
    rev = store.revision()
    wait_for(lambda: other.realized_of("host1") >= rev)
    assert conns[other].state() == other.desired("host1") != stale.desired("host1")
    want = dict(sw.flows)
    # it wakes up believing it is still master and tries to repair "its" switch
    el.masters["host1"], el.valid_until = mine, float("inf")
    s = stale.session_of("host1")
    s.kick(reread=True)
    wait_for(lambda: s.role == "slave" and s.refused == mine.generation)
    assert conns[stale].refused_slave and sw.flows == want
    # a new connection of the stale master: its ROLE_REQUEST is refused, nothing is sent
    late = attach(stale, sw)
    late_session = stale.session_of("host1")
    wait_for(lambda: late_session.refused == mine.generation)
    assert late.roles_asked[0] == (MASTER, mine.generation) and late.table_changes() == []
    assert sw.flows == want


def test_a_controller_restarted_under_its_name_is_master_at_once_and_sends_nothing(
        store, controllers):
    first = controllers("only")
    sw = RoleSwitch(1)
    attach(first, sw)
    in_charge([first], "host1")
    before, generation = dict(sw.flows), sw.generation
    kill(first, sw)  # its lease is expired by kill(): put the key back as a live old lease
    old = store.lease(60)
    store.put(keys.master("host1"), json.dumps({"controller": "only", "lease": old.id}),
              lease=old.id)
    again = controllers("only")
    conn = attach(again, sw)
    assert in_charge([again], "host1") is again  # without waiting for the old lease (60 s)
    assert conn.table_changes() == [] and sw.flows == before and sw.generation > generation


def test_a_slave_answers_wait_from_its_master_s_realized_revisions(store, controllers):
    a, b = controllers("a"), controllers("b")
    sw = RoleSwitch(1)
    attach(a, sw), attach(b, sw)
    master = in_charge([a, b], "host1")
    slave = b if master is a else a
    plug(store, "orange-c1", "host1", 8)  # changes host1's tables
    rev = store.revision()
    assert slave.wait_realized(rev, 5)
    snap = store.read(prefixes=[keys.OPER_REALIZED, keys.OPER_APPLIED])
    assert realized_in(snap)["host1"] >= rev
    assert master.desired("host1") == conn_of(master, sw).state()
    store.put(keys.runtime_container("host9", "x"), "{}")  # touches no switch
    assert slave.wait_realized(store.revision(), 5)


def test_a_master_whose_switch_left_hands_it_over_at_once(store, controllers):
    a, b = controllers("a"), controllers("b")
    sw = RoleSwitch(1)
    attach(a, sw), attach(b, sw)
    left = in_charge([a, b], "host1")
    other = b if left is a else a
    conn = conn_of(left, sw)
    sw.connections.remove(conn)
    left.switch_disconnected(conn)  # only its own connection broke; it stays alive
    assert in_charge([other], "host1") is other
    assert conn_of(other, sw).table_changes() == []
    assert left.election.lease is not None and left.running
