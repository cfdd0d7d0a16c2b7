"""A strict packet simulator of one switch's tables (tests, and a later ``trace`` command).

It interprets goto-table, apply/write/clear actions, write-metadata, set-field, push/pop VLAN,
Nicira move, groups of type all and output (``IN_PORT`` included; output to the in-port by
number is dropped, as OpenFlow requires).  Two entries of one table at the same priority that
both match the packet raise :class:`AmbiguousMatch`: the pipeline must never rely on luck.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ofctl.model import (
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Action,
    ApplyActions,
    ApplyMeter,
    ClearActions,
    Ct,
    DecTtl,
    Flow,
    GotoTable,
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
    to_int,
)


class AmbiguousMatch(RuntimeError):
    """Two same-priority entries of one table match one packet."""


class SimError(RuntimeError):
    """The tables do something the simulator (or OpenFlow) does not allow."""


@dataclass(frozen=True)
class Packet:
    """The header fields the pipeline looks at.  ``vlan_vid`` is OpenFlow's: 0 untagged,
    ``0x1000 | vid`` tagged.  ``eth_type`` is the type after any VLAN tag."""

    in_port: int = 0
    eth_src: str = "00:00:00:00:00:00"
    eth_dst: str = "ff:ff:ff:ff:ff:ff"
    eth_type: int = 0x0800
    vlan_vid: int = 0
    arp_op: int | None = None
    arp_spa: str | None = None
    arp_tpa: str | None = None
    arp_sha: str | None = None
    arp_tha: str | None = None
    ipv4_src: str | None = None
    ipv4_dst: str | None = None
    tunnel_id: int | None = None
    tun_ipv4_src: str | None = None
    tun_ipv4_dst: str | None = None
    metadata: int = 0
    ip_proto: int | None = None
    tcp_src: int | None = None
    tcp_dst: int | None = None
    udp_src: int | None = None
    udp_dst: int | None = None
    icmpv4_type: int | None = None
    ip_dscp: int = 0
    ct_state: int = 0
    nw_ttl: int = 64
    reg3: int = 0
    reg5: int = 0
    reg6: int = 0
    reg7: int = 0
    reg8: int = 0
    reg9: int = 0

    def fresh(self, **changes) -> Packet:
        """This packet as it enters another switch: no pipeline state, no conntrack state."""
        reset = {"metadata": 0, "ct_state": 0, "reg3": 0, "reg5": 0, "reg6": 0, "reg7": 0,
                 "reg8": 0, "reg9": 0, "tun_ipv4_src": None, "tun_ipv4_dst": None}
        return replace(self, **{**reset, **changes})


CT_NEW, CT_EST, CT_REL, CT_RPL, CT_INV, CT_TRK = 0x01, 0x02, 0x04, 0x08, 0x10, 0x20


def conn_tuple(p: Packet) -> tuple:
    """The 5-tuple conntrack keys a packet by (ICMP echo by its type pair)."""
    if p.ip_proto == 6:
        return (6, p.ipv4_src, p.tcp_src, p.ipv4_dst, p.tcp_dst)
    if p.ip_proto == 17:
        return (17, p.ipv4_src, p.udp_src, p.ipv4_dst, p.udp_dst)
    if p.ip_proto == 1 and p.icmpv4_type in (0, 8):  # echo: a reply is the other type
        return (1, p.ipv4_src, p.icmpv4_type, p.ipv4_dst, 8 - p.icmpv4_type)
    return (p.ip_proto, p.ipv4_src, None, p.ipv4_dst, None)


def reply_tuple(t: tuple) -> tuple:
    return (t[0], t[3], t[4], t[1], t[2])


@dataclass(frozen=True)
class Emitted:
    """A packet leaving the switch on ``port``."""

    port: int
    packet: Packet


@dataclass
class Trace:
    """The result of one packet walk: where it left and which entries it hit."""

    outputs: list[Emitted] = field(default_factory=list)
    hits: list[Flow] = field(default_factory=list)
    recirculate: int | None = None
    meters: list[int] = field(default_factory=list)  # meters the packet passed, in order

    @property
    def to_controller(self) -> list[Packet]:
        """Packets sent to the controller (packet-in)."""
        return [e.packet for e in self.outputs if e.port == OFPP_CONTROLLER]
    dropped: str | None = None  # why processing stopped early ("ttl")


def field_matches(packet: Packet, name: str, value, mask) -> bool:
    have = getattr(packet, name)
    if have is None:
        return False
    v, h = to_int(name, value), to_int(name, have)
    if mask is None:
        return v == h
    m = to_int(name, mask)
    return (h & m) == (v & m)


def flow_matches(flow: Flow, packet: Packet) -> bool:
    return all(field_matches(packet, f.name, f.value, f.mask) for f in flow.match)


class Switch:
    """One switch's state, indexed by table for lookups."""

    def __init__(self, state: SwitchState) -> None:
        self.state = state
        self.tables: dict[int, list[Flow]] = {}
        for f in state.flows:
            self.tables.setdefault(f.table, []).append(f)
        for flows in self.tables.values():
            flows.sort(key=lambda f: -f.priority)
        self.groups = {g.group_id: g for g in state.groups}
        self.meters = {m.meter_id: m for m in state.meters}
        self.conntrack: dict[tuple, tuple] = {}  # (zone, tuple) -> original-direction tuple

    def ct_lookup(self, zone: int, packet: Packet) -> int:
        """The ``ct_state`` of ``packet`` in ``zone``."""
        t = conn_tuple(packet)
        orig = self.conntrack.get((zone, t))
        if orig is None:
            return CT_TRK | CT_NEW
        return CT_TRK | CT_EST | (0 if orig == t else CT_RPL)

    def ct_commit(self, zone: int, packet: Packet) -> None:
        t = conn_tuple(packet)
        if (zone, t) not in self.conntrack:
            self.conntrack[(zone, t)] = t
            self.conntrack[(zone, reply_tuple(t))] = t

    def lookup(self, table: int, packet: Packet) -> Flow | None:
        """The entry that matches ``packet`` in ``table``; None on a miss."""
        best: Flow | None = None
        for f in self.tables.get(table, ()):
            if best is not None and f.priority < best.priority:
                break
            if flow_matches(f, packet):
                if best is not None and best.instructions != f.instructions:
                    raise AmbiguousMatch(f"table {table}: {best} and {f} both match {packet}")
                best = best or f
        return best

    def run(self, packet: Packet) -> Trace:
        """Walk ``packet`` (arriving on ``packet.in_port``) through the tables."""
        trace = Trace()
        table: int | None = 0
        action_set: dict[str, Action] = {}
        while table is not None:
            flow = self.lookup(table, packet)
            if flow is None:
                return trace  # miss without an entry: drop (OpenFlow 1.3)
            trace.hits.append(flow)
            next_table = None
            for ins in flow.instructions:
                if isinstance(ins, ApplyActions):
                    packet = self._apply(ins.actions, packet, trace)
                    if trace.dropped:
                        return trace
                    if trace.recirculate is not None:  # ct(table=...): continue there
                        next_table, trace.recirculate = trace.recirculate, None
                        break
                elif isinstance(ins, ApplyMeter):
                    if ins.meter_id not in self.meters:
                        raise SimError(f"meter {ins.meter_id} does not exist")
                    trace.meters.append(ins.meter_id)
                elif isinstance(ins, ClearActions):
                    action_set.clear()
                elif isinstance(ins, WriteActions):
                    for a in ins.actions:
                        action_set[_set_slot(a)] = a
                elif isinstance(ins, WriteMetadata):
                    packet = replace(packet, metadata=(packet.metadata & ~ins.mask)
                                     | (ins.value & ins.mask))
                elif isinstance(ins, GotoTable):
                    if ins.table <= table:
                        raise SimError(f"goto backwards from {table} to {ins.table}")
                    next_table = ins.table
            table = next_table
        ordered = _sort_set(list(action_set.values()))
        if "group" in action_set:
            ordered = [a for a in ordered if not isinstance(a, Output)]
        self._apply(ordered, packet, trace)
        return trace

    def _apply(self, actions: tuple[Action, ...] | list[Action], packet: Packet,
               trace: Trace) -> Packet:
        for a in actions:
            if isinstance(a, Output):
                if a.port == OFPP_IN_PORT:
                    trace.outputs.append(Emitted(packet.in_port, packet))
                elif a.port != packet.in_port:
                    trace.outputs.append(Emitted(a.port, packet))
            elif isinstance(a, SetField):
                if a.name == "vlan_vid" and not packet.vlan_vid:
                    raise SimError("set vlan_vid on an untagged packet")
                packet = replace(packet, **{a.name: a.value})
            elif isinstance(a, PushVlan):
                if packet.vlan_vid:
                    raise SimError("double tagging is not used")
                packet = replace(packet, vlan_vid=OFPVID_PRESENT)
            elif isinstance(a, PopVlan):
                if not packet.vlan_vid:
                    raise SimError("pop_vlan on an untagged packet")
                packet = replace(packet, vlan_vid=0)
            elif isinstance(a, Move):
                v = getattr(packet, a.src)
                if v is None:
                    raise SimError(f"move from absent field {a.src}")
                packet = replace(packet, **{a.dst: v})
            elif isinstance(a, Ct):
                zone = (getattr(packet, a.zone_src) & 0xFFFF) if a.zone_src else a.zone
                if a.commit:
                    self.ct_commit(zone, packet)
                if a.table is not None:
                    packet = replace(packet, ct_state=self.ct_lookup(zone, packet))
                    trace.recirculate = a.table
                    return packet
            elif isinstance(a, DecTtl):
                if packet.nw_ttl <= 1:
                    trace.dropped = "ttl"
                    return packet
                packet = replace(packet, nw_ttl=packet.nw_ttl - 1)
            elif isinstance(a, OutputReg):
                port = getattr(packet, a.field)
                if port != packet.in_port:
                    trace.outputs.append(Emitted(port, packet))
            elif isinstance(a, GroupAction):
                g = self.groups.get(a.group_id)
                if g is None:
                    raise SimError(f"group {a.group_id} does not exist")
                for b in g.buckets:
                    self._apply(b.actions, packet, trace)
            else:
                raise SimError(f"unknown action {a!r}")
        return packet


def _set_slot(a: Action) -> str:
    if isinstance(a, SetField):
        return f"set:{a.name}"
    return {PopVlan: "pop_vlan", PushVlan: "push_vlan", GroupAction: "group",
            Output: "output"}.get(type(a), type(a).__name__)


def _sort_set(actions: list[Action]) -> list[Action]:
    rank = {PopVlan: 0, PushVlan: 1, SetField: 2, GroupAction: 3, Output: 4}
    return sorted(actions, key=lambda a: rank.get(type(a), 5))
