"""A SwitchState as ``ovs-ofctl -O OpenFlow13 add-flows`` / ``add-groups`` input lines."""

from __future__ import annotations

from ofctl.model import (
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
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
    MatchField,
    Move,
    Output,
    OutputReg,
    PopVlan,
    PushVlan,
    SetField,
    SwitchState,
    WriteActions,
    WriteMetadata,
)

OVS_NAMES = {"ipv4_src": "nw_src", "ipv4_dst": "nw_dst", "tunnel_id": "tun_id",
             "tun_ipv4_src": "tun_src", "tun_ipv4_dst": "tun_dst", "icmpv4_type": "icmp_type"}
HEX_FIELDS = frozenset({"metadata", "eth_type", "vlan_vid", "tunnel_id", "ct_state"})


def _name(n: str) -> str:
    return OVS_NAMES.get(n, n)


def _val(name: str, v) -> str:
    return hex(v) if isinstance(v, int) and name in HEX_FIELDS else str(v)


def _field(f: MatchField) -> str:
    text = _val(f.name, f.value)
    if f.mask is not None:
        text += "/" + _val(f.name, f.mask)
    return f"{_name(f.name)}={text}"


def action_text(a: Action) -> str:
    if isinstance(a, Output):
        if a.port == OFPP_CONTROLLER:
            return "controller"
        return "in_port" if a.port == OFPP_IN_PORT else f"output:{a.port}"
    if isinstance(a, SetField):
        return f"set_field:{_val(a.name, a.value)}->{_name(a.name)}"
    if isinstance(a, PushVlan):
        return f"push_vlan:{a.ethertype:#06x}"
    if isinstance(a, PopVlan):
        return "pop_vlan"
    if isinstance(a, GroupAction):
        return f"group:{a.group_id}"
    if isinstance(a, Move):
        return f"move:{_name(a.src)}[0..{a.n_bits - 1}]->{_name(a.dst)}[0..{a.n_bits - 1}]"
    if isinstance(a, Ct):
        parts = ["commit"] if a.commit else []
        parts.append(f"zone={_name(a.zone_src)}[0..15]" if a.zone_src else f"zone={a.zone}")
        if a.table is not None:
            parts.append(f"table={a.table}")
        return "ct(" + ",".join(parts) + ")"
    if isinstance(a, OutputReg):
        return f"output:{_name(a.field)}"
    if isinstance(a, DecTtl):
        return "dec_ttl"
    raise TypeError(f"no text form for {a!r}")


def _instruction(i: Instruction) -> str:
    if isinstance(i, ApplyActions):
        return ",".join(action_text(a) for a in i.actions)
    if isinstance(i, WriteActions):
        return "write_actions(" + ",".join(action_text(a) for a in i.actions) + ")"
    if isinstance(i, ClearActions):
        return "clear_actions"
    if isinstance(i, WriteMetadata):
        return f"write_metadata:{i.value:#x}/{i.mask:#x}"
    if isinstance(i, GotoTable):
        return f"goto_table:{i.table}"
    if isinstance(i, ApplyMeter):
        return f"meter:{i.meter_id}"
    raise TypeError(f"no text form for {i!r}")


def match_text(f: Flow) -> str:
    """The entry's match in ``ovs-ofctl`` syntax (empty: matches everything)."""
    return ",".join(_field(m) for m in f.match)


def actions_text(f: Flow) -> str:
    """The entry's instructions in ``ovs-ofctl`` syntax (``drop`` when it has none)."""
    return ",".join(t for t in (_instruction(i) for i in f.instructions) if t) or "drop"


def flow_text(f: Flow) -> str:
    parts = [f"table={f.table}", f"priority={f.priority}", f"cookie={f.cookie:#x}"]
    parts += [_field(m) for m in f.match]
    return ",".join(parts) + ",actions=" + actions_text(f)


def group_text(g: Group) -> str:
    buckets = ",".join("bucket=" + ",".join(action_text(a) for a in b.actions)
                       for b in g.buckets)
    return f"group_id={g.group_id},type={g.type}" + ("," + buckets if buckets else "")


def ofctl_text(state: SwitchState) -> tuple[list[str], list[str]]:
    """(flow lines, group lines), sorted; feed them to ``add-flows`` and ``add-groups``."""
    flows = [flow_text(f) for f in sorted(state.flows, key=lambda f: (f.table, -f.priority,
                                                                      repr(f.match)))]
    groups = [group_text(g) for g in sorted(state.groups, key=lambda g: g.group_id)]
    return flows, groups
