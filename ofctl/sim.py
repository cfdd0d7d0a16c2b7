"""A strict packet simulator of one switch's tables (tests, and a later ``trace`` command).

It interprets goto-table, apply/write/clear actions, write-metadata, set-field, push/pop VLAN,
Nicira move, groups of type all and output (``IN_PORT`` included; output to the in-port by
number is dropped, as OpenFlow requires).  Two entries of one table at the same priority that
both match the packet raise :class:`AmbiguousMatch`: the pipeline must never rely on luck.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ofctl.model import (
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Action,
    ApplyActions,
    ClearActions,
    Flow,
    GotoTable,
    GroupAction,
    Move,
    Output,
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
    tun_ipv4_dst: str | None = None
    metadata: int = 0


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

    def lookup(self, table: int, packet: Packet) -> Flow | None:
        """The entry that matches ``packet`` in ``table``; None on a miss."""
        best: Flow | None = None
        for f in self.tables.get(table, ()):
            if best is not None and f.priority < best.priority:
                break
            if flow_matches(f, packet):
                if best is not None:
                    raise AmbiguousMatch(f"table {table}: {best} and {f} both match {packet}")
                best = f
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
