"""compute / pipeline / cookies / diff / encode / decode / text of ofctl."""

from __future__ import annotations

import random
import shutil
import struct
import subprocess
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from os_ken.ofproto import ofproto_parser
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from ofctl import ofctl_text
from ofctl.compute import IntentIndex, compute_host
from ofctl.cookies import describe
from ofctl.decode import switch_state_from_stats
from ofctl.diff import ADD, DELETE, MODIFY, apply_changes, diff
from ofctl.encode import encode_changes, stand_in_datapath
from ofctl.engine import engine_from
from ofctl.model import Flow, GroupAction, Meter, MeterBand, SwitchState, match
from ofctl.pipeline import PipelineError, check_flow, check_state
from tests.unit.ofctl_fixtures import (
    ep,
    generated_intent,
    ports_for,
    resolved,
    sample_intent,
    states_for,
)


def test_every_entry_fits_the_declared_pipeline():
    intent = sample_intent()
    for s in states_for(intent, ports_for(intent)).values():
        check_state(s)


def test_pipeline_check_rejects_undeclared_match_and_jump():
    with pytest.raises(PipelineError):
        check_flow(Flow(30, 5, match(in_port=3), ()))
    with pytest.raises(PipelineError):
        from ofctl.model import GotoTable
        check_flow(Flow(40, 5, match(metadata=1), (GotoTable(10),)))


def test_cost_formula_on_100_hosts_5000_endpoints():
    intent = generated_intent(100, 5000)
    ports = ports_for(intent)
    idx = IntentIndex(intent)
    for name in ("h0", "h37", "h99"):
        state = compute_host(intent, ports[name], idx)
        flows, groups = 8, 0  # 6 table misses + multicast->BUM + unrouted gateway frames
        for n in intent.networks:
            eps = [e for e in intent.endpoints if e.network == n.name]
            local = sum(1 for e in eps if e.host == name)
            if local:
                # classify 2 per local, ARP + L2 per endpoint, 2 BUM, gateway ARP+ICMP, and
                # ingress: one from the uplink (VLAN), one per peer VTEP (VXLAN)
                peers = {e.host for e in eps if e.host != name}
                ingress = 1 if n.net_type == "vlan" else len(peers)
                flows += 4 * local + 2 * (len(eps) - local) + 2 + 2 + ingress
                if n.net_type == "vlan" and ports[name].uplink_port is not None:
                    flows += local + 4  # uplink ARP answers, hand-off
                groups += 1
        assert (len(state.flows), len(state.groups)) == (flows, groups)
        assert len(state.flows) < 1000  # grows with what the host sees, not the cluster


def test_compute_is_deterministic_and_order_independent():
    intent = sample_intent()
    ports = ports_for(intent)["h1"]
    shuffled = list(intent.endpoints)
    random.Random(4).shuffle(shuffled)
    other = replace(intent, endpoints=tuple(shuffled), networks=intent.networks[::-1])
    a, b = compute_host(intent, ports), compute_host(other, ports)
    assert a == b and a.digest() == b.digest() == compute_host(intent, ports).digest()


def test_every_flow_is_explained_by_its_cookie():
    intent = sample_intent()
    state = compute_host(intent, ports_for(intent)["h1"])
    texts = {describe(f.cookie, intent) for f in state.flows}
    assert "endpoint orange-c1" in texts and "network purple" in texts
    assert "pipeline br-int" in texts
    assert not any("#" in t for t in texts)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 10), st.sampled_from(["h1", "h2", "h3"]), st.booleans())
def test_change_then_revert_restores_every_table_exactly(i, new_host, remove):
    """Faucet's check, on the stateful parts: the live engine's per-host tables (and a switch
    brought along by diffs) after a change and then its revert hash exactly as before; after
    the change they equal a full recompute, and differ from before when it mattered."""
    intent = sample_intent()
    ports = ports_for(intent)
    engine = engine_from(intent, ports)
    states = {h: engine.table(h).state() for h in ports}
    switches = {h: apply_changes(SwitchState(), diff(SwitchState(), st)) for h, st in
                states.items()}
    before = {h: st.digest() for h, st in states.items()}
    inputs = {h: engine.digest(h) for h in ports}
    old = intent.endpoints[i]
    eps = list(intent.endpoints)
    new = None if remove else replace(old, host=new_host)
    changed = replace(intent, endpoints=tuple(eps[:i] + ([] if new is None else [new])
                                              + eps[i + 1:]))
    ports2 = dict(ports)
    if old.host is not None:
        ports2[old.host] = ports2[old.host].with_endpoint(old.id, None)
        engine.set_port(old.host, old.id, None)
    engine.set_endpoint(old.id, new)
    if new is not None:
        ports2[new.host] = ports2[new.host].with_endpoint(new.id, 90)
        engine.set_port(new.host, new.id, 90)
    for h in ports:
        state = engine.refresh(h).state()
        assert state == compute_host(changed, ports2[h]), h
        switches[h] = apply_changes(switches[h], diff(switches[h], state))
        assert switches[h] == state, h
    if old.host is not None or new is not None:  # else: an unbound endpoint removed
        assert {h: engine.table(h).state().digest() for h in ports} != before
    if new is not None:  # revert
        engine.set_port(new.host, new.id, None)
    engine.set_endpoint(old.id, old)
    if old.host is not None:
        engine.set_port(old.host, old.id, dict(ports[old.host].endpoint_ports)[old.id])
    for h in ports:
        state = engine.refresh(h).state()
        switches[h] = apply_changes(switches[h], diff(switches[h], state))
    assert {h: engine.table(h).state().digest() for h in ports} == before
    assert {h: st.digest() for h, st in switches.items()} == before
    assert {h: engine.digest(h) for h in ports} == inputs


def test_incremental_update_equals_full_compute():
    intent = generated_intent(20, 500)
    ports = ports_for(intent)
    engine = engine_from(intent, ports)
    for h in ports:
        engine.table(h).take()
    new = ep("n3", "new", "h16", "10.0.0.200")
    intent2 = replace(intent, endpoints=intent.endpoints + (new,))
    ports2 = {**ports, "h16": ports["h16"].with_endpoint(new.id, 999)}
    engine.set_endpoint(new.id, new)
    engine.set_port("h16", new.id, 999)
    for h in ports:
        assert engine.refresh(h).state() == compute_host(intent2, ports2[h]), h
    engine.set_endpoint(new.id, None)
    engine.set_port("h16", new.id, None)
    for h in ports:
        assert engine.refresh(h).state() == compute_host(intent, ports[h]), h


def test_diff_reaches_desired_and_orders_groups_around_flows():
    intent = sample_intent()
    ports = ports_for(intent)["h1"]
    old = compute_host(intent, ports)
    moved = resolved(intent.hosts, intent.networks,
                     [e for e in intent.endpoints if e.network != "purple"]
                     + [ep("orange", "c10", "h1", "10.1.0.10")])
    new_ports = ports.with_endpoint("orange-c10", 40)
    new = compute_host(moved, new_ports)
    changes = diff(old, new)
    assert apply_changes(old, changes) == new
    assert diff(new, new) == []
    kinds = [(c.op, type(c.entry).__name__) for c in changes]
    first_flow = next(i for i, k in enumerate(kinds) if k[1] == "Flow")
    assert ("modify", "Group") in kinds[:first_flow]  # orange's group changes first
    assert kinds[-1] == (DELETE, "Group")  # purple's group goes last
    assert {op for op, _ in kinds} == {ADD, MODIFY, DELETE}
    uses = {a.group_id for c in changes if isinstance(c.entry, Flow) and c.op != DELETE
            for i in c.entry.instructions for a in getattr(i, "actions", ())
            if isinstance(a, GroupAction)}
    assert uses <= {g.group_id for g in new.groups}


def _roundtrip(msgs) -> SwitchState:
    """Serialize messages, parse them back; groups/meters as a switch's desc replies."""
    dp = stand_in_datapath(parser, ofp)
    flows, groups, meters = [], [], []
    for m in msgs:
        m.serialize()
        buf = bytes(m.buf)
        v, t, length, x = ofproto_parser.header(buf)
        body = struct.pack("!H", length - 8) + buf[10:]  # *Mod body -> *Desc/Config entry
        if t == ofp.OFPT_FLOW_MOD:
            flows.append(ofproto_parser.msg(dp, v, t, length, x, buf))
        elif t == ofp.OFPT_GROUP_MOD:
            groups.append(parser.OFPGroupDescStats.parser(body, 0))
        else:
            meters.append(parser.OFPMeterConfigStats.parser(body, 0))
    return switch_state_from_stats(flows, groups, meters)


def test_encode_then_decode_gives_the_computed_state():
    intent = sample_intent()
    for p in ports_for(intent).values():
        state = compute_host(intent, p)
        state = replace(state, meters=frozenset({Meter(7, (MeterBand(1000, 100),),
                                                       ("kbps", "burst"))}))
        assert _roundtrip(encode_changes(diff(SwitchState(), state), parser, ofp)) == state


def test_delete_messages_are_strict_and_ordered():
    intent = sample_intent()
    state = compute_host(intent, ports_for(intent)["h1"])
    msgs = encode_changes(diff(state, SwitchState()), parser, ofp)
    flow_cmds = [m.command for m in msgs if isinstance(m, parser.OFPFlowMod)]
    assert set(flow_cmds) == {ofp.OFPFC_DELETE_STRICT}
    assert isinstance(msgs[-1], parser.OFPGroupMod) and msgs[-1].command == ofp.OFPGC_DELETE


@pytest.mark.skipif(not shutil.which("ovs-ofctl"), reason="ovs-ofctl not installed")
def test_text_form_is_accepted_by_ovs_ofctl(tmp_path):
    intent = sample_intent()
    flows, groups = ofctl_text(compute_host(intent, ports_for(intent)["h2"]))
    f = tmp_path / "flows"
    f.write_text("\n".join(flows) + "\n")
    out = subprocess.run(["ovs-ofctl", "-O", "OpenFlow13", "parse-flows", str(f)],
                         capture_output=True, text=True, check=True).stdout
    assert out.count("OFPT_FLOW_MOD") == len(flows)
    assert any(g.startswith("group_id=") and ",bucket=" in g for g in groups)
