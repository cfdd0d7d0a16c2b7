"""The controller engine against fake switches and the in-memory store."""

from __future__ import annotations

import json
import struct
import time

import pytest

from allocator.write import apply_config
from intent import keys
from intent.loader import load_config, load_document
from intent.realized import realized_in
from intent.store_memory import MemoryStore
from ryu_apps.core import Controller
from ryu_apps.framework import hub
from ryu_apps.framework import ofproto_v1_3 as OFP
from ryu_apps.framework import ofproto_v1_3_parser as PARSER
from ryu_apps.switch import PROTO, bundle_add, serialize
from tests.fake_switch import FakeDatapath

DOC = {
    "Hosts": [{"Name": "host1", "VtepIp": "192.168.2.10"},
              {"Name": "host2", "VtepIp": "192.168.2.11"},
              {"Name": "host3", "VtepIp": "192.168.2.12"}],
    "Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
                 "AllocSubnetLen": 24, "Vxlans": "10001-10100", "Networks": [
                     {"Name": "orange", "Endpoints": [{"Container": "c1", "Host": "host1"},
                                                      {"Container": "c2", "Host": "host2"}]},
                     {"Name": "blue", "Endpoints": [{"Container": "c3", "Host": "host3"}]}]}],
}


def wait_for(cond, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, "condition not reached in time"
        hub.sleep(0.005)


def register(store, host: str, dpid: int, vxlan: int = 100) -> int:
    return store.put(keys.oper_host(host), json.dumps({
        "name": host, "dpid": dpid, "vxlan_ofport": vxlan, "uplink_ofport": None,
        "vtep_ip": None}))


def plug(store, ep_id: str, host: str, ofport: int) -> int:
    """``ep_id`` plugged on ``host`` at ``ofport``; the revision of that write."""
    return store.put(keys.oper_endpoint(ep_id), json.dumps({"host": host, "ofport": ofport}))


def populate(store) -> None:
    """DOC in ``store``, its three hosts registered and its endpoints plugged."""
    apply_config(store, load_config(DOC))
    for i, h in enumerate(("host1", "host2", "host3"), start=1):
        register(store, h, i)
    plug(store, "orange-c1", "host1", 5)
    plug(store, "orange-c2", "host2", 5)
    plug(store, "blue-c3", "host3", 7)


@pytest.fixture
def world():
    store = MemoryStore()
    populate(store)
    ctl = Controller(store, audit_interval=0, timeout=2)
    ctl.start()
    yield store, ctl
    ctl.stop()


def connect(ctl, dpid: int, dp: FakeDatapath | None = None) -> FakeDatapath:
    dp = dp or FakeDatapath(dpid)
    dp.deliver = ctl.switch_message
    s = ctl.switch_connected(dp)
    wait_for(lambda: s.in_sync and s.realized)
    return dp


def installed(dp: FakeDatapath):
    return dp.state()


def realized(store, host: str) -> int:
    """What a reader of the store sees ``host`` realized (intent.realized)."""
    snap = store.read(prefixes=[keys.OPER_REALIZED, keys.OPER_APPLIED])
    return realized_in(snap).get(host, 0)


def test_connect_installs_exactly_the_computed_state_in_one_bundle(world):
    store, ctl = world
    dp = connect(ctl, 1)
    desired = ctl.desired("host1")
    assert desired.flows and installed(dp) == desired
    assert dp.committed_bundles == 1
    assert not [m for kind, m in dp.sent if kind.endswith("_mod") and
                not kind.startswith("bundled")]
    assert realized(store, "host1") == ctl.cache.revision


def test_restart_with_unchanged_intent_sends_zero_changes(world):
    store, ctl = world
    first = connect(ctl, 1)
    ctl.stop()
    ctl2 = Controller(store, audit_interval=0, timeout=2)
    ctl2.start()
    try:
        again = FakeDatapath(1)
        again.flows, again.groups = dict(first.flows), dict(first.groups)
        connect(ctl2, 1, again)
        assert again.changes() == []
        assert ctl2.sessions[1].changes_sent == 0 and ctl2.sessions[1].reads == 1
    finally:
        ctl2.stop()


def test_a_switch_that_connects_while_the_store_loads_waits_for_it(world):
    """start(background=True) (the app's: OpenFlow listens while the store is read): a switch
    that connects before the load ends gets nothing until then, and then nothing but what
    the intent says - a restart over its unchanged tables sends no change at all."""
    store, ctl = world
    first = connect(ctl, 1)
    ctl.stop()
    ctl2 = Controller(store, audit_interval=0, timeout=2)
    loaded = hub.Event()
    reload = ctl2._reload

    def slow_reload() -> None:
        hub.sleep(0.3)  # the switch is connected by now
        reload()
        loaded.set()

    ctl2._reload = slow_reload
    ctl2.start(background=True)
    try:
        again = FakeDatapath(1)
        again.flows, again.groups = dict(first.flows), dict(first.groups)
        again.deliver = ctl2.switch_message
        s = ctl2.switch_connected(again)
        assert not loaded.is_set() and s.host is None  # connected during the load
        wait_for(lambda: s.in_sync and s.realized)
        assert loaded.is_set() and again.changes() == [] and again.state() == first.state()
    finally:
        ctl2.stop()


def test_intent_change_reaches_only_affected_switches(world):
    store, ctl = world
    dp1, dp3 = connect(ctl, 1), connect(ctl, 3)
    n1, n3 = len(dp1.changes()), len(dp3.changes())
    doc = json.loads(json.dumps(DOC))
    doc["Tenants"][0]["Networks"][0]["Endpoints"].append({"Container": "c9", "Host": "host1"})
    res = apply_config(store, load_config(doc))
    plug(store, "orange-c9", "host1", 9)
    wait_for(lambda: realized(store, "host1") >= res.revision + 1
             and realized(store, "host3") >= res.revision + 1)
    assert len(dp1.changes()) > n1 and installed(dp1) == ctl.desired("host1")
    assert any("orange-c9" in ctl.describe(f.cookie) for f in installed(dp1).flows)
    assert len(dp3.changes()) == n3  # blue's host: not recomputed, nothing sent, still realized
    assert ctl.wait_realized(res.revision, 1)


def test_a_change_goes_out_as_bundle_adds_and_one_commit_acknowledged_by_its_reply(world):
    """No open request (the first add opens the bundle) and no barrier: the commit's reply is
    the one answer a sync waits for; a switch that never sends it leaves the host behind."""
    store, ctl = world
    dp = connect(ctl, 1)
    before = len(dp.sent)
    rev = plug(store, "orange-c1", "host1", 6)  # the port moved: host1's flows change
    wait_for(lambda: realized(store, "host1") >= rev)
    kinds = [k for k, _ in dp.sent[before:]]
    assert kinds and all(k.startswith("bundled ") for k in kinds[:-1])
    assert kinds[-1] == "bundle_ctrl"
    assert struct.unpack_from("!H", dp.sent[-1][1], 20)[0] == OFP.ONF_BCT_COMMIT_REQUEST
    assert installed(dp) == ctl.desired("host1")
    # the same change again, with the commit reply lost: the sync is not taken as done
    ctl.timeout = ctl.sessions[1].timeout = 0.2
    reply = dp._bundle_reply
    dp._bundle_reply = lambda *a: None
    rev = plug(store, "orange-c1", "host1", 7)
    s = ctl.sessions[1]
    wait_for(lambda: "no answer to bundle" in (s.last_error or ""), 3)
    assert realized(store, "host1") < rev
    dp._bundle_reply = reply  # answered again: the retry brings the host up to date
    wait_for(lambda: realized(store, "host1") >= rev, 5)
    assert installed(dp) == ctl.desired("host1")


def test_deleted_flow_is_restored_by_audit(world):
    store, ctl = world
    dp = connect(ctl, 1)
    victim = next(iter(dp.flows))
    del dp.flows[victim]
    s = ctl.sessions[1]
    before = s.audits
    s.audit()
    wait_for(lambda: s.audits > before and not s.busy)
    assert victim in dp.flows and installed(dp) == ctl.desired("host1")
    assert s.changes_sent == len(ctl.desired("host1").flows) + len(
        ctl.desired("host1").groups) + 1


def test_rejected_bundle_is_reread_and_retried(world, monkeypatch):
    store, ctl = world
    monkeypatch.setattr("ryu_apps.core.RETRY", 0.01)
    dp = FakeDatapath(2)
    dp.fail_next_bundle = True
    connect(ctl, 2, dp)
    assert dp.committed_bundles == 1 and installed(dp) == ctl.desired("host2")
    assert ctl.sessions[2].reads == 2


def test_switch_that_does_not_answer_is_reported(world):
    store, ctl = world
    ctl.timeout = 0.05
    dp = FakeDatapath(1)
    dp.silent = True
    dp.deliver = ctl.switch_message
    s = ctl.switch_connected(dp)
    wait_for(lambda: s.last_error is not None)
    assert "no answer" in s.last_error and not s.in_sync and realized(store, "host1") == 0
    row = next(h for h in ctl.host_status() if h["name"] == "host1")
    assert row["connected"] and not row["in_sync"] and row["last_error"]


def test_unregistered_switch_waits_for_its_registration(world):
    store, ctl = world
    dp = FakeDatapath(42)
    dp.deliver = ctl.switch_message
    s = ctl.switch_connected(dp)
    # a later registration of another switch: once the controller processed it, it has looked
    # at the registrations again (and woken dpid 42's worker first), still without host4's
    rev = register(store, "host5", 43)
    wait_for(lambda: ctl.cache.revision >= rev and "host5" in ctl.cache.hosts)
    assert s.host is None and dp.sent == []
    register(store, "host4", 42)
    wait_for(lambda: s.in_sync and s.realized)
    assert s.host == "host4"


def test_disconnect_stops_the_session(world):
    store, ctl = world
    dp = connect(ctl, 1)
    ctl.switch_disconnected(dp)
    assert 1 not in ctl.sessions


def test_bundle_add_bytes_match_os_ken_serialisation():
    inner = PARSER.OFPFlowMod(PROTO, table_id=3, priority=7, match=PARSER.OFPMatch(in_port=1),
                              instructions=[])
    raw = serialize(inner, 0)
    ref = PARSER.ONFBundleAddMsg(PROTO, 9, OFP.ONF_BF_ATOMIC | OFP.ONF_BF_ORDERED,
                                 PARSER.OFPFlowMod(PROTO, table_id=3, priority=7,
                                                   match=PARSER.OFPMatch(in_port=1),
                                                   instructions=[]), [])
    assert bundle_add(raw, 9, 1234) == serialize(ref, 1234)


# --------------------------------------------------------------------------- reliability


def learn_flow_mod() -> bytes:
    """A flow with an action the pipeline never installs (NXAST_LEARN), as a raw flow mod."""
    from ofctl import wire
    from ofctl.model import Flow, match

    mod = bytearray(wire.flow_add(Flow(10, 5, match(eth_type=0x0806), (), 0x77)))
    learn = struct.pack("!HHIH", 0xFFFF, 16, 0x2320, 16) + bytes(6)  # learn, no specs
    instr = struct.pack("!HH4x", 4, 8 + len(learn)) + learn
    struct.pack_into("!H", mod, 2, len(mod) + len(instr))
    return bytes(mod) + instr


def test_foreign_entries_are_removed_and_never_wedge_the_switch(world):
    from ofctl import wire
    from ofctl.model import Flow, match

    store, ctl = world
    dp = FakeDatapath(1)
    dp.add_flow(learn_flow_mod())
    drop = Flow(30, 7, match(eth_dst="02:00:00:00:99:99"), (), 0x1234)
    dp.add_flow(wire.flow_add(drop))
    connect(ctl, 1, dp)
    assert installed(dp) == ctl.desired("host1")  # both foreign entries are gone
    # ... and the switch keeps taking changes
    doc = json.loads(json.dumps(DOC))
    doc["Tenants"][0]["Networks"][0]["Endpoints"].append({"Container": "c7", "Host": "host1"})
    res = apply_config(store, load_config(doc))
    assert ctl.wait_realized(res.revision, 2)
    assert any("orange-c7" in ctl.describe(f.cookie) for f in installed(dp).flows)
    # one put back behind the controller's back is found by the audit and removed
    dp.add_flow(learn_flow_mod())
    s = ctl.sessions[1]
    before = s.audits
    s.audit()
    wait_for(lambda: s.audits > before and not s.busy)
    assert installed(dp) == ctl.desired("host1")


def test_an_unreadable_value_quarantines_that_endpoint_only(world):
    store, ctl = world
    connect(ctl, 1)
    dp2 = connect(ctl, 2)
    before = installed(dp2)
    c2_flows = {f for f in before.flows if "orange-c2" in ctl.describe(f.cookie)}
    assert c2_flows
    store.put(keys.state_endpoint("orange-c2"), "{not json")
    wait_for(lambda: keys.state_endpoint("orange-c2") in ctl.cache.problems)
    assert "not JSON" in ctl.cache.problems[keys.state_endpoint("orange-c2")]
    # every other change is still applied everywhere
    res = apply_config(store, load_document({"Tenants": [{"Name": "t1", "Networks": [
        {"Name": "orange", "Endpoints": [{"Container": "c8", "Host": "host2"}]}]}]}), "add")
    assert ctl.wait_realized(res.revision, 2)
    after = installed(dp2)
    assert any("orange-c8" in ctl.describe(f.cookie) for f in after.flows)
    assert c2_flows <= after.flows  # unknown is not absent: its entries stay
    assert all(s.last_error is None for s in ctl.sessions.values())


def test_a_refused_entry_is_reported_with_its_owner_and_the_rest_goes_in(world):
    store, ctl = world
    dp = FakeDatapath(1)
    victim = json.loads(store.get(keys.state_endpoint("orange-c1")).value)["mac"]
    dp.refuse = lambda m: m[1] == OFP.OFPT_FLOW_MOD and bytes.fromhex(
        victim.replace(":", "")) in m and m[24] == 30  # its local L2 entry
    connect(ctl, 1, dp)
    s = ctl.sessions[1]
    assert s.rejected and all("orange-c1" in owner for owner, _why in s.rejected)
    want = ctl.desired("host1")
    missing = want.flows - installed(dp).flows
    assert len(missing) == 1 and "orange-c1" in ctl.describe(next(iter(missing)).cookie)
    row = next(h for h in ctl.host_status() if h["name"] == "host1")
    assert row["rejected"] and "endpoint orange-c1" in row["rejected"][0]


def test_a_change_that_affects_no_host_is_realized_at_once(world):
    store, ctl = world
    dp1 = connect(ctl, 1)
    sent = len(dp1.changes())
    res = apply_config(store, load_config({"Tenants": [{
        "Name": "t9", "DefaultNetType": "vxlan", "SubnetPool": "12.0.0.0/16",
        "AllocSubnetLen": 24, "Vxlans": "20001-20010", "Networks": [{"Name": "idle"}]}]}),
        "add")
    assert ctl.wait_realized(res.revision, 2)
    wait_for(lambda: realized(store, "host1") >= res.revision)
    assert len(dp1.changes()) == sent


def test_waiting_for_a_revision_of_ignored_keys_answers_once_the_watch_passed_it(world):
    """REST /wait?revision=R where R wrote only keys the controller ignores: it answers once
    the watch delivered R, not at the next relevant event (that may never come)."""
    store, ctl = world
    connect(ctl, 1)
    rev = store.put(keys.RUNTIME + "someone-else", "{}")
    assert ctl.wait_realized(rev, 2)
    assert not ctl.wait_realized(rev + 1000, 0.2)  # a revision not reached is not realized
