"""The direct packer/parser against os-ken's encoder, byte for byte, and parse round trips."""

from __future__ import annotations

import struct

import pytest
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from ofctl import wire
from ofctl.diff import ADD, DELETE, MODIFY, Change
from ofctl.encode import encode_changes
from ofctl.model import (
    ApplyActions,
    ClearActions,
    Ct,
    Flow,
    GotoTable,
    Meter,
    MeterBand,
    Output,
    OutputReg,
    SetField,
    WriteActions,
    match,
)
from tests.unit.ofctl_fixtures import ports_for, sample_intent, states_for


def os_ken_bytes(change: Change) -> bytes:
    msg = encode_changes([change], parser, ofp)[0]
    msg.xid = 0
    msg.serialize()
    return bytes(msg.buf)


def every_entry():
    intent = sample_intent()
    flows, groups = {}, {}
    for state in states_for(intent, ports_for(intent)).values():
        for f in state.flows:
            flows[(f.key, f.instructions)] = f
        for g in state.groups:
            groups[g] = g
    extra = [Flow(20, 5, match(metadata=(1, 0xFF)),
                  (ClearActions(), WriteActions((Output(3),)), GotoTable(30)), 7),
             Flow(0, 9, match(in_port=1, eth_type=0x0800, ip_proto=6, tcp_dst=80),
                  (ApplyActions((SetField("ip_dscp", 46), Output(2))),), 8),
             Flow(20, 100, match(metadata=(5, 0x1FFFFFF), eth_type=0x0800),
                  (ApplyActions((SetField("reg3", 7), Ct(zone_src="reg3", table=21))),), 9),
             Flow(51, 1021, match(eth_type=0x0800, reg6=3, reg5=4, ip_proto=17,
                                  udp_dst=(5000, 0xFFF8), ct_state=(0x28, 0x28)),
                  (ApplyActions((Ct(commit=True, zone_src="reg3"), OutputReg("reg7"))),), 10),
             Flow(21, 5, match(eth_type=0x0800, ipv4_dst=("11.1.0.0", "255.255.255.0")),
                  (ApplyActions((Ct(commit=True, zone=9),)), GotoTable(30)), 11)]
    return list(flows.values()) + extra, list(groups.values())


def test_every_flow_kind_packs_as_os_ken_does() -> None:
    flows, _ = every_entry()
    kinds = set()
    for f in flows:
        assert wire.flow_add(f) == os_ken_bytes(Change(ADD, f)), f
        assert wire.flow_delete(f) == os_ken_bytes(Change(DELETE, f)), f
        for i in f.instructions:
            kinds.add(type(i).__name__)
            kinds.update(type(a).__name__ for a in getattr(i, "actions", ()))
    # the pipeline's whole vocabulary is covered
    assert kinds >= {"ApplyActions", "WriteMetadata", "GotoTable", "Output", "SetField",
                     "Move", "GroupAction", "PushVlan", "PopVlan", "WriteActions",
                     "ClearActions", "Ct", "OutputReg"}


def test_groups_and_meters_pack_as_os_ken_does() -> None:
    _, groups = every_entry()
    assert groups
    for g in groups:
        assert wire.group_mod(g, wire.OFPGC_ADD) == os_ken_bytes(Change(ADD, g))
        assert wire.group_mod(g, wire.OFPGC_MODIFY) == os_ken_bytes(Change(MODIFY, g))
        assert wire.group_mod(g, wire.OFPGC_DELETE) == os_ken_bytes(Change(DELETE, g))
    m = Meter(7, (MeterBand(10000, 1000),), ("kbps", "burst", "stats"))
    assert wire.meter_mod(m, wire.OFPMC_ADD) == os_ken_bytes(Change(ADD, m))
    assert wire.meter_mod(m, wire.OFPMC_MODIFY) == os_ken_bytes(Change(MODIFY, m))
    assert wire.meter_mod(m, wire.OFPMC_DELETE) == os_ken_bytes(Change(DELETE, m))


def stats_entry(f: Flow) -> bytes:
    """A flow-stats entry as a switch would send it back (our own encoding)."""
    mod = wire.flow_add(f)
    body = mod[48:]
    return struct.pack("!HBxIIHHHH4xQQQ", 48 + len(body), f.table, 1, 2, f.priority, 0, 0, 0,
                       f.cookie, 3, 4) + body


def test_flow_stats_parse_back_to_the_same_entries() -> None:
    flows, _ = every_entry()
    parsed = wire.parse_flow_stats(b"".join(stats_entry(f) for f in flows))
    assert parsed == flows


def test_an_unknown_action_makes_a_foreign_entry_with_its_raw_match() -> None:
    f = Flow(0, 7, match(in_port=3), (ApplyActions((Output(1),)),), 99)
    entry = bytearray(stats_entry(f))
    struct.pack_into("!H", entry, 48 + 16 + 8, 0x0B)  # output -> OFPAT_COPY_TTL_OUT (11)
    (foreign,) = wire.parse_flow_stats(bytes(entry))
    assert isinstance(foreign, wire.Foreign) and "action type 11" in foreign.why
    assert foreign.raw_match == wire.pack_match(f.match)
    assert wire.flow_delete_raw(0, 7, foreign.raw_match) == wire.flow_delete(
        Flow(0, 7, f.match, (), 0))


@pytest.mark.parametrize("request_bytes,mp_type", [
    (wire.flow_stats_request(5), ofp.OFPMP_FLOW),
    (wire.group_desc_request(5), ofp.OFPMP_GROUP_DESC),
    (wire.meter_config_request(5), ofp.OFPMP_METER_CONFIG)], ids=["flow", "group", "meter"])
def test_requests_match_os_ken(request_bytes: bytes, mp_type: int) -> None:
    from ryu_apps.switch import PROTO

    ref = {ofp.OFPMP_FLOW: lambda: parser.OFPFlowStatsRequest(
        PROTO, 0, ofp.OFPTT_ALL, ofp.OFPP_ANY, ofp.OFPG_ANY, 0, 0, parser.OFPMatch()),
        ofp.OFPMP_GROUP_DESC: lambda: parser.OFPGroupDescStatsRequest(PROTO, 0),
        ofp.OFPMP_METER_CONFIG: lambda: parser.OFPMeterConfigStatsRequest(
            PROTO, 0, ofp.OFPM_ALL)}[mp_type]()
    ref.xid = 5
    ref.serialize()
    assert request_bytes == bytes(ref.buf)
