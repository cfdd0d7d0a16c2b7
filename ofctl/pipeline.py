"""The pipeline of br-int, declared as data, and the check every generated entry goes through.

::

    0 CLASSIFY  port -> network (+ port security), tun_id -> network, uplink VLAN -> network
    5 QOS       meter and DSCP of what a local endpoint with a QoS profile sends
    10 ARP      ARP requests for endpoints and gateways answered in flows; VLAN networks hand
                other ARP to the uplink; anything else dropped
    15-21       policy networks only (see :mod:`ofctl.policy`)
    25 L3       gateway ICMP echo; routing between a router's networks (:mod:`ofctl.router`)
    30 L2       known unicast to a local port, a tunnel or the uplink; multicast -> BUM
    35 MCAST    snooping networks: IGMP -> controller, a group -> its receivers, else drop
    40 BUM      one group per network (local origin); local ports only (remote origin)
    250 MARKER  one inert entry whose cookie is the digest of the inputs the tables were
                computed from (a restarted controller checks it first)

Metadata: bits 0-24 carry the network id (see :mod:`ofctl.cookies`), bit 32 is set when the
packet came from a tunnel or the uplink, bits 40-55 carry the routing domain (the id of the
network's router; 0: none).
"""

from __future__ import annotations

from dataclasses import dataclass

from ofctl.model import (
    ApplyActions,
    ApplyMeter,
    ClearActions,
    Ct,
    DecTtl,
    Flow,
    GotoTable,
    Group,
    GroupAction,
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

NET_MASK = (1 << 25) - 1
REMOTE = 1 << 32
META_MASK = NET_MASK | REMOTE

CLASSIFY, ARP, EGRESS, L2, BUM = 0, 10, 20, 30, 40
SRC_GROUP, DST_GROUP, EGRESS_CT = 15, 16, 20  # EGRESS_CT is table 20: policy networks
EGRESS_POLICY, INGRESS_CT, INGRESS = 21, 50, 51
L3 = 25  # gateways answer, routers route; everything else goes on to L2
DOMAIN_SHIFT = 40
DOMAIN_MASK = 0xFFFF << DOMAIN_SHIFT  # metadata bits 40-55: the routing domain (router id)
QOS, MCAST = 5, 35  # issue 13: QoS and multicast
MARKER = 250  # one entry, never reached: its cookie is the input digest of the switch's tables

DROP = "drop"


@dataclass(frozen=True)
class Table:
    """One stage: what its entries may match, do and jump to, and what a miss does."""

    id: int
    name: str
    purpose: str
    matches: frozenset[str]
    actions: frozenset[type]
    next_tables: frozenset[int]
    miss: str | int  # DROP or the table a miss continues in
    writes_metadata: bool = False


def _t(id_: int, name: str, purpose: str, matches: str, actions: tuple[type, ...],
       next_tables: tuple[int, ...], miss: str | int, writes_metadata: bool = False) -> Table:
    return Table(id_, name, purpose, frozenset(matches.split()), frozenset(actions),
                 frozenset(next_tables), miss, writes_metadata)


TABLES: dict[int, Table] = {t.id: t for t in (
    _t(CLASSIFY, "classify", "port/tunnel/VLAN -> network; port security",
       "in_port eth_src eth_dst eth_type ipv4_src arp_spa arp_sha tunnel_id tun_ipv4_src "
       "vlan_vid",
       (PopVlan,), (ARP, SRC_GROUP, EGRESS, L3, L2, QOS), DROP, writes_metadata=True),
    _t(QOS, "qos", "meter and DSCP of what a local endpoint with a QoS profile sends",
       "in_port eth_type", (SetField,), (ARP, SRC_GROUP, L3), DROP),
    _t(MCAST, "mcast", "snooping networks: IGMP to the controller, groups to their receivers",
       "metadata eth_type ip_proto ipv4_dst", (Output, GroupAction), (BUM,), DROP),
    _t(ARP, "arp", "answer ARP requests for endpoints and gateways; hand the rest to the uplink",
       "metadata eth_type arp_op arp_tpa", (Move, SetField, Output, PushVlan), (L2,), DROP),
    _t(SRC_GROUP, "src_group", "policy networks: source address -> reg5 = source group",
       "metadata eth_type ipv4_src", (SetField,), (DST_GROUP,), DST_GROUP),
    _t(DST_GROUP, "dst_group", "policy networks: destination address -> reg6 = its group",
       "metadata eth_type ipv4_dst", (SetField,), (EGRESS_CT,), EGRESS_CT),
    _t(EGRESS, "egress", "conntrack of local-origin IPv4 in policy networks (else: on)",
       "metadata eth_type", (SetField, Ct), (L3,), L3),
    _t(EGRESS_POLICY, "egress_policy", "out rules of the source's group; allowed: commit",
       "metadata eth_type ip_proto ipv4_dst tcp_dst udp_dst reg5 reg6 reg9 ct_state", (Ct,),
       (L3,), DROP),
    _t(L3, "l3", "gateway ARP/ICMP answers; routes between a router's networks",
       "metadata eth_src eth_dst eth_type ip_proto ipv4_dst icmpv4_type",
       (Move, SetField, DecTtl, Output, PushVlan), (L2,), L2, writes_metadata=True),
    _t(L2, "l2", "known unicast; multicast to BUM",
       "metadata eth_dst", (Output, SetField, PushVlan), (BUM, INGRESS_CT, MCAST), DROP),
    _t(BUM, "bum", "flood within the network", "metadata", (Output, GroupAction), (), DROP),
    _t(INGRESS_CT, "ingress_ct", "conntrack of IPv4 to a local endpoint of a policy network",
       "metadata eth_type", (SetField, Ct, OutputReg), (), DROP),
    _t(INGRESS, "ingress", "in rules of the destination's group; allowed: commit, deliver",
       "metadata eth_type ip_proto ipv4_src tcp_dst udp_dst reg5 reg6 reg8 ct_state",
       (Ct, OutputReg), (), DROP),
)}
BASE_TABLES = (CLASSIFY, ARP, EGRESS, L3, L2, BUM)
POLICY_TABLES = (SRC_GROUP, DST_GROUP, EGRESS_POLICY, INGRESS_CT, INGRESS)

SET_FIELDS = frozenset({"eth_src", "eth_dst", "arp_op", "arp_sha", "arp_spa", "tunnel_id",
                        "tun_ipv4_dst", "vlan_vid", "ipv4_src", "icmpv4_type", "reg3", "reg5",
                        "reg6", "reg7", "reg8", "reg9", "ip_dscp"})
METER_TABLES = frozenset({QOS, MCAST})  # the tables whose entries may pass a meter


class PipelineError(ValueError):
    """An entry that the pipeline declaration does not allow."""


def marker_flow(digest: int) -> Flow:
    """The marker entry carrying ``digest``."""
    return Flow(MARKER, 0, (), (), digest)


def miss_flows(cookie: int, tables: tuple[int, ...] = BASE_TABLES) -> list[Flow]:
    """The explicit table-miss entry of every table of ``tables`` (priority 0)."""
    out = []
    for t in (TABLES[i] for i in tables):
        instr = () if t.miss == DROP else (GotoTable(int(t.miss)),)
        out.append(Flow(t.id, 0, (), instr, cookie))
    return out


def check_flow(flow: Flow) -> None:
    """Raise :class:`PipelineError` unless ``flow`` fits its table's declaration."""
    t = TABLES.get(flow.table)
    if t is None:
        raise PipelineError(f"unknown table {flow.table}: {flow}")
    matches = t.matches
    for f in flow.match:
        if f[0] not in matches:
            raise PipelineError(f"table {t.name} may not match {f.name}: {flow}")
    if flow.priority == 0 and (flow.match or flow.instructions != miss_instr(t)):
        raise PipelineError(f"priority 0 is the miss entry of {t.name}: {flow}")
    for i in flow.instructions:
        kind = i.__class__  # the model's classes are final: identity is the type test
        if kind is GotoTable:
            if i.table not in t.next_tables and not (flow.priority == 0 and i.table == t.miss):
                raise PipelineError(f"table {t.name} may not go to {i.table}: {flow}")
        elif kind is WriteMetadata:
            if not t.writes_metadata:
                raise PipelineError(f"table {t.name} may not write metadata: {flow}")
        elif kind is ApplyActions or kind is WriteActions:
            allowed = t.actions
            for a in i.actions:
                if a.__class__ not in allowed:
                    raise PipelineError(f"table {t.name} may not {type(a).__name__}: {flow}")
                if a.__class__ is SetField and a.name not in SET_FIELDS:
                    raise PipelineError(f"set_field {a.name} not allowed: {flow}")
        elif kind is ApplyMeter:
            if t.id not in METER_TABLES:
                raise PipelineError(f"table {t.name} may not use a meter: {flow}")
        elif kind is not ClearActions:
            raise PipelineError(f"unknown instruction {i!r}")


def miss_instr(t: Table) -> tuple:
    return () if t.miss == DROP else (GotoTable(int(t.miss)),)


def check_state(state: SwitchState) -> None:
    """Check every flow, unique flow keys, and that every group and meter a flow uses
    exists."""
    keys: set = set()
    group_ids = {g.group_id for g in state.groups}
    meter_ids = {m.meter_id for m in state.meters}
    for f in state.flows:
        check_flow(f)
        if f.key in keys:
            raise PipelineError(f"two flows with one key: {f.key}")
        keys.add(f.key)
        for i in f.instructions:
            if isinstance(i, ApplyMeter) and i.meter_id not in meter_ids:
                raise PipelineError(f"flow uses missing meter {i.meter_id}: {f}")
            for a in getattr(i, "actions", ()):
                if isinstance(a, GroupAction) and a.group_id not in group_ids:
                    raise PipelineError(f"flow uses missing group {a.group_id}: {f}")
    for g in state.groups:
        _check_group(g)


def _check_group(g: Group) -> None:
    if g.type != "all":
        raise PipelineError(f"only groups of type all are used: {g}")
    for b in g.buckets:
        for a in b.actions:
            if not isinstance(a, (Output, SetField, PushVlan)):
                raise PipelineError(f"group bucket action {a!r} not allowed")
