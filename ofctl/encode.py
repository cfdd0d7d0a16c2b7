"""Encoding of entries and changes to OpenFlow 1.3 messages with the os-ken parser.

Importable without a running controller: pass ``os_ken.ofproto.ofproto_v1_3_parser`` and
``ofproto_v1_3``; the messages get a stand-in datapath unless a real one is given.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from ofctl.diff import DELETE, MODIFY, Change
from ofctl.model import (
    OFPCML_NO_BUFFER,
    OFPP_CONTROLLER,
    Action,
    ApplyActions,
    ApplyMeter,
    ClearActions,
    Ct,
    DecTtl,
    Flow,
    GotoTable,
    Group,
    GroupAction,
    Instruction,
    Match,
    Meter,
    Move,
    Output,
    OutputReg,
    PopVlan,
    PushVlan,
    SetField,
    WriteActions,
    WriteMetadata,
)

COOKIE_ALL = 0xFFFFFFFFFFFFFFFF


def stand_in_datapath(parser: Any, ofproto: Any) -> Any:
    """Enough of a datapath for os-ken messages to serialize."""
    return SimpleNamespace(ofproto=ofproto, ofproto_parser=parser, id=0)


def encode_match(m: Match, parser: Any) -> Any:
    return parser.OFPMatch(**{f.name: f.value if f.mask is None else (f.value, f.mask)
                              for f in m})


def encode_action(a: Action, parser: Any, ofproto: Any) -> Any:
    if isinstance(a, Output):
        return parser.OFPActionOutput(
            a.port, OFPCML_NO_BUFFER if a.port == OFPP_CONTROLLER else 0)
    if isinstance(a, SetField):
        return parser.OFPActionSetField(**{a.name: a.value})
    if isinstance(a, PushVlan):
        return parser.OFPActionPushVlan(a.ethertype)
    if isinstance(a, PopVlan):
        return parser.OFPActionPopVlan()
    if isinstance(a, GroupAction):
        return parser.OFPActionGroup(a.group_id)
    if isinstance(a, Move):
        return parser.NXActionRegMove(src_field=a.src, dst_field=a.dst, n_bits=a.n_bits)
    if isinstance(a, Ct):
        return parser.NXActionCT(flags=1 if a.commit else 0, zone_src=a.zone_src or "",
                                 zone_ofs_nbits=(15 if a.zone_src else a.zone),
                                 recirc_table=255 if a.table is None else a.table, alg=0,
                                 actions=[])
    if isinstance(a, OutputReg):
        return parser.NXActionOutputReg(ofs_nbits=31, src=a.field, max_len=0)
    if isinstance(a, DecTtl):
        return parser.OFPActionDecNwTtl()
    raise TypeError(f"cannot encode action {a!r}")


def encode_instruction(i: Instruction, parser: Any, ofproto: Any) -> Any:
    if isinstance(i, ApplyActions):
        return parser.OFPInstructionActions(
            ofproto.OFPIT_APPLY_ACTIONS, [encode_action(a, parser, ofproto) for a in i.actions])
    if isinstance(i, WriteActions):
        return parser.OFPInstructionActions(
            ofproto.OFPIT_WRITE_ACTIONS, [encode_action(a, parser, ofproto) for a in i.actions])
    if isinstance(i, ClearActions):
        return parser.OFPInstructionActions(ofproto.OFPIT_CLEAR_ACTIONS, [])
    if isinstance(i, WriteMetadata):
        return parser.OFPInstructionWriteMetadata(i.value, i.mask)
    if isinstance(i, GotoTable):
        return parser.OFPInstructionGotoTable(i.table)
    if isinstance(i, ApplyMeter):
        return parser.OFPInstructionMeter(i.meter_id, ofproto.OFPIT_METER)
    raise TypeError(f"cannot encode instruction {i!r}")


def encode_flow(f: Flow, command: int, dp: Any, parser: Any, ofproto: Any) -> Any:
    instr = [] if command == ofproto.OFPFC_DELETE_STRICT else [
        encode_instruction(i, parser, ofproto) for i in f.instructions]
    return parser.OFPFlowMod(
        dp, cookie=f.cookie, cookie_mask=0, table_id=f.table, command=command,
        idle_timeout=0, hard_timeout=0, priority=f.priority, buffer_id=ofproto.OFP_NO_BUFFER,
        out_port=ofproto.OFPP_ANY, out_group=ofproto.OFPG_ANY, flags=0,
        match=encode_match(f.match, parser), instructions=instr)


def encode_group(g: Group, command: int, dp: Any, parser: Any, ofproto: Any) -> Any:
    buckets = [] if command == ofproto.OFPGC_DELETE else [
        parser.OFPBucket(0, ofproto.OFPP_ANY, ofproto.OFPG_ANY,
                         [encode_action(a, parser, ofproto) for a in b.actions])
        for b in g.buckets]
    return parser.OFPGroupMod(dp, command, ofproto.OFPGT_ALL, g.group_id, buckets)


METER_FLAGS = {"kbps": "OFPMF_KBPS", "pktps": "OFPMF_PKTPS", "burst": "OFPMF_BURST",
               "stats": "OFPMF_STATS"}


def encode_meter(m: Meter, command: int, dp: Any, parser: Any, ofproto: Any) -> Any:
    flags = 0
    for name in m.flags:
        flags |= getattr(ofproto, METER_FLAGS[name])
    bands = [] if command == ofproto.OFPMC_DELETE else [
        parser.OFPMeterBandDrop(rate=b.rate, burst_size=b.burst) for b in m.bands]
    return parser.OFPMeterMod(dp, command, flags, m.meter_id, bands)


def encode_changes(changes: list[Change], parser: Any, ofproto: Any,
                   datapath: Any = None) -> list[Any]:
    """One OpenFlow message per change, in the order given."""
    dp = datapath if datapath is not None else stand_in_datapath(parser, ofproto)
    out = []
    for c in changes:
        e = c.entry
        if isinstance(e, Flow):
            cmd = ofproto.OFPFC_DELETE_STRICT if c.op == DELETE else ofproto.OFPFC_ADD
            out.append(encode_flow(e, cmd, dp, parser, ofproto))
        elif isinstance(e, Group):
            cmd = {DELETE: ofproto.OFPGC_DELETE, MODIFY: ofproto.OFPGC_MODIFY}.get(
                c.op, ofproto.OFPGC_ADD)
            out.append(encode_group(e, cmd, dp, parser, ofproto))
        else:
            cmd = {DELETE: ofproto.OFPMC_DELETE, MODIFY: ofproto.OFPMC_MODIFY}.get(
                c.op, ofproto.OFPMC_ADD)
            out.append(encode_meter(e, cmd, dp, parser, ofproto))
    return out
