"""The controller engine against fake switches and the in-memory store."""

from __future__ import annotations

import json
import time

import pytest

from intent import keys
from intent.apply import apply_config
from intent.loader import load_config
from intent.store_memory import MemoryStore
from ofctl.decode import switch_state_from_stats
from ryu_apps.core import Controller
from ryu_apps.dataplane import OfctlDataplane
from ryu_apps.framework import hub
from ryu_apps.framework import ofproto_v1_3 as OFP
from ryu_apps.framework import ofproto_v1_3_parser as PARSER
from ryu_apps.switch import PROTO, bundle_add, serialize
from ryu_apps.testing import FakeDatapath

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


def plug(store, ep_id: str, host: str, ofport: int) -> None:
    store.put(keys.oper_endpoint(ep_id), json.dumps({"host": host, "ofport": ofport}))


@pytest.fixture
def world():
    store = MemoryStore()
    apply_config(store, load_config(DOC))
    for i, h in enumerate(("host1", "host2", "host3"), start=1):
        register(store, h, i)
    plug(store, "orange-c1", "host1", 5)
    plug(store, "orange-c2", "host2", 5)
    plug(store, "blue-c3", "host3", 7)
    ctl = Controller(store, OfctlDataplane(), audit_interval=0, timeout=2)
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
    return switch_state_from_stats(list(dp.flows.values()), list(dp.groups.values()), [])


def realized(store, host: str) -> int:
    kv = store.get(keys.realized(host))
    return json.loads(kv.value)["revision"] if kv else 0


def test_connect_installs_exactly_the_computed_state_in_one_bundle(world):
    store, ctl = world
    dp = connect(ctl, 1)
    desired = ctl.desired("host1")
    assert desired.flows and installed(dp) == desired
    assert dp.committed_bundles == 1
    assert not [m for m in dp.sent if not isinstance(m, tuple) and m.kind.endswith("_mod")]
    assert realized(store, "host1") == ctl.cache.revision


def test_restart_with_unchanged_intent_sends_zero_changes(world):
    store, ctl = world
    first = connect(ctl, 1)
    ctl.stop()
    ctl2 = Controller(store, OfctlDataplane(), audit_interval=0, timeout=2)
    ctl2.start()
    try:
        again = FakeDatapath(1)
        again.flows, again.groups = dict(first.flows), dict(first.groups)
        connect(ctl2, 1, again)
        assert again.changes() == []
        assert ctl2.sessions[1].changes_sent == 0 and ctl2.sessions[1].reads == 1
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
    assert any("orange-c9" in ctl.dataplane.describe(f.cookie) for f in installed(dp1).flows)
    assert len(dp3.changes()) == n3  # blue's host: not recomputed, nothing sent, still realized
    assert ctl.wait_realized(res.revision, 1)


def test_deleted_flow_is_restored_by_audit(world):
    store, ctl = world
    dp = connect(ctl, 1)
    victim = next(iter(dp.flows))
    del dp.flows[victim]
    s = ctl.sessions[1]
    before = s.syncs
    s.audit()
    wait_for(lambda: s.syncs > before and not s.busy)
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
