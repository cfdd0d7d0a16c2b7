"""What a switch reports (os-ken flow / group-desc / meter-config stats) -> SwitchState.

The result compares equal to :func:`ofctl.compute.compute_host`'s output when the switch holds
exactly the computed entries: values are canonicalised, zero masks dropped, full masks turned
into exact matches, Nicira field aliases (``eth_src_nxm``) mapped to OXM names, empty
apply-actions dropped and instructions put in execution order.  Groups carry no cookie.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ofctl.model import (
    Action,
    ApplyActions,
    ApplyMeter,
    Bucket,
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
    MeterBand,
    Move,
    Output,
    OutputReg,
    PopVlan,
    PushVlan,
    SwitchState,
    WriteActions,
    WriteMetadata,
    canonical_buckets,
    instructions,
    masked_field,
    set_field,
)

OFPIT_GOTO_TABLE, OFPIT_WRITE_METADATA = 1, 2
OFPIT_WRITE_ACTIONS, OFPIT_APPLY_ACTIONS, OFPIT_CLEAR_ACTIONS = 3, 4, 5
OFPGT_ALL = 0
METER_FLAG_BITS = (("kbps", 1), ("pktps", 2), ("burst", 4), ("stats", 8))


def field_name(name: str) -> str:
    return name[:-4] if name.endswith("_nxm") else name


def decode_match(m: Any) -> Match:
    out = []
    for name, v in m.items():
        name = field_name(name)
        f = masked_field(name, v[0], v[1]) if isinstance(v, tuple) else masked_field(name, v, None)
        if f is not None:
            out.append(f)
    return tuple(sorted(out))


def decode_action(a: Any) -> Action:
    cls = type(a).__name__
    if cls == "OFPActionOutput":
        return Output(a.port)
    if cls == "OFPActionSetField":
        return set_field(field_name(a.key), a.value)
    if cls == "OFPActionPushVlan":
        return PushVlan(a.ethertype)
    if cls == "OFPActionPopVlan":
        return PopVlan()
    if cls == "OFPActionGroup":
        return GroupAction(a.group_id)
    if cls == "OFPActionDecNwTtl":
        return DecTtl()
    if cls == "NXActionCT":
        if a.alg or a.actions or a.flags & ~1:
            raise ValueError(f"conntrack options not modelled: {a}")
        zone_src = field_name(a.zone_src) if a.zone_src else None
        if zone_src and a.zone_ofs_nbits != 15:
            raise ValueError(f"conntrack zone bits not modelled: {a}")
        return Ct(commit=bool(a.flags & 1), zone_src=zone_src,
                  zone=0 if zone_src else a.zone_ofs_nbits,
                  table=None if a.recirc_table == 255 else a.recirc_table)
    if cls == "NXActionOutputReg":
        if a.ofs_nbits != 31 or a.max_len:
            raise ValueError(f"output from part of a register not modelled: {a}")
        return OutputReg(field_name(a.src))
    if cls == "NXActionRegMove":
        if a.src_ofs or a.dst_ofs:
            raise ValueError(f"partial-field move not modelled: {a}")
        return Move(field_name(a.src_field), field_name(a.dst_field), a.n_bits)
    raise ValueError(f"action not modelled: {a}")


def decode_instruction(i: Any) -> Instruction | None:
    t = i.type
    if t == OFPIT_GOTO_TABLE:
        return GotoTable(i.table_id)
    if t == OFPIT_WRITE_METADATA:
        return WriteMetadata(i.metadata, i.metadata_mask)
    if t == OFPIT_CLEAR_ACTIONS:
        return ClearActions()
    if type(i).__name__ == "OFPInstructionMeter":
        return ApplyMeter(i.meter_id)
    acts = tuple(decode_action(a) for a in i.actions)
    if t == OFPIT_APPLY_ACTIONS:
        return ApplyActions(acts)
    if t == OFPIT_WRITE_ACTIONS:
        return WriteActions(acts)
    raise ValueError(f"instruction not modelled: {i}")


def decode_flow(s: Any) -> Flow:
    """A flow from an OFPFlowStats (or anything with the same attributes, e.g. a FlowMod)."""
    instr = [decode_instruction(i) for i in s.instructions]
    return Flow(s.table_id, s.priority, decode_match(s.match),
                instructions(*(i for i in instr if i is not None)), s.cookie)


def decode_group(g: Any) -> Group:
    if g.type != OFPGT_ALL:
        raise ValueError(f"group type not modelled: {g}")
    buckets = canonical_buckets(Bucket(tuple(decode_action(a) for a in b.actions))
                                for b in g.buckets)
    return Group(g.group_id, buckets)


def decode_meter(m: Any) -> Meter:
    flags = tuple(n for n, bit in METER_FLAG_BITS if m.flags & bit)
    bands = tuple(MeterBand(b.rate, b.burst_size) for b in m.bands)
    return Meter(m.meter_id, bands, flags)


def switch_state_from_stats(flow_stats: Iterable[Any], group_desc: Iterable[Any] = (),
                            meter_config: Iterable[Any] = ()) -> SwitchState:
    """The state a switch reports, comparable with computed state."""
    return SwitchState(frozenset(decode_flow(s) for s in flow_stats),
                       frozenset(decode_group(g) for g in group_desc),
                       frozenset(decode_meter(m) for m in meter_config))
