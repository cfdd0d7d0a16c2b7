"""The entry model: frozen, hashable flows, groups and meters, and a switch state made of them.

Field names follow os-ken's OXM names (``in_port``, ``eth_src``, ``tunnel_id``, ``tun_ipv4_dst``,
``metadata`` …) so encoding is a straight mapping.  Values are canonical: MAC addresses are
lower-case ``aa:bb:..`` strings, IPv4 addresses dotted strings, everything else ``int``.  A mask is
``None`` when the field is matched exactly; a mask that selects every bit is normalised away.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from typing import NamedTuple

MAC_FIELDS = frozenset({"eth_src", "eth_dst", "arp_sha", "arp_tha"})
IPV4_FIELDS = frozenset({"ipv4_src", "ipv4_dst", "arp_spa", "arp_tpa", "tun_ipv4_src",
                         "tun_ipv4_dst"})
FIELD_BITS = {
    "in_port": 32, "metadata": 64, "eth_src": 48, "eth_dst": 48, "eth_type": 16,
    "vlan_vid": 13, "arp_op": 16, "arp_spa": 32, "arp_tpa": 32, "arp_sha": 48, "arp_tha": 48,
    "ipv4_src": 32, "ipv4_dst": 32, "tunnel_id": 64, "tun_ipv4_src": 32, "tun_ipv4_dst": 32,
    "ip_proto": 8,
    "tcp_src": 16, "tcp_dst": 16, "udp_src": 16, "udp_dst": 16, "icmpv4_type": 8,
    "icmpv4_code": 8, "ct_state": 32, "ct_zone": 16, "ct_mark": 32, "ip_dscp": 6,
    **{f"reg{i}": 32 for i in range(10)}, "nw_ttl": 8,
}

OFPVID_PRESENT = 0x1000
OFPP_IN_PORT = 0xFFFFFFF8
OFPP_CONTROLLER = 0xFFFFFFFD
OFPCML_NO_BUFFER = 0xFFFF  # a packet-in carries the whole frame
ETH_IPV4 = 0x0800
ETH_ARP = 0x0806
ETH_VLAN = 0x8100

Value = int | str


# --------------------------------------------------------------------------- values


def to_int(name: str, value: Value) -> int:
    """A field value (or mask) as an integer."""
    if isinstance(value, int):
        return value
    if name in MAC_FIELDS:
        return int(value.replace(":", ""), 16)
    if name in IPV4_FIELDS:
        a, b, c, d = (int(x) for x in value.split("."))
        return (a << 24) | (b << 16) | (c << 8) | d
    return int(value, 0)


def from_int(name: str, value: int) -> Value:
    """The canonical form of an integer field value."""
    if name in MAC_FIELDS:
        h = f"{value:012x}"
        return f"{h[0:2]}:{h[2:4]}:{h[4:6]}:{h[6:8]}:{h[8:10]}:{h[10:12]}"
    if name in IPV4_FIELDS:
        return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"
    return value


@lru_cache(maxsize=1 << 12)
def _canonical(name: str, value: Value) -> Value:
    return from_int(name, to_int(name, value))


def canonical(name: str, value: Value) -> Value:
    """Normalise a value: lower-case MACs, ints for numeric fields."""
    if isinstance(value, int):
        return value
    if name in MAC_FIELDS and len(value) == 17 and value == value.lower():
        return value
    return _canonical(name, value)


# --------------------------------------------------------------------------- match


class MatchField(NamedTuple):
    """One OXM field of a match; ``mask`` is None for an exact match."""

    name: str
    value: Value
    mask: Value | None = None


Match = tuple[MatchField, ...]  # sorted by name, each name once
_tuple_new = tuple.__new__


def match(**fields: Value | tuple[Value, Value]) -> Match:
    """Build a canonical match: ``match(in_port=3, eth_dst=("01:00:..", "01:00:.."))``."""
    out = []
    for name, v in fields.items():
        if v is None:
            continue
        if v.__class__ is tuple:
            f = _masked(name, v[0], v[1]) if v[1] is not None else _exact(name, v[0])
            if f is None:
                continue
        else:
            f = _exact(name, v)
        out.append(f)
    out.sort()  # names are unique: ordered by name
    return tuple(out)


def _exact(name: str, value: Value) -> MatchField:
    """``MatchField(name, canonical(name, value))`` without the named tuple's slow path."""
    if value.__class__ is not int:
        value = canonical(name, value)
    return _tuple_new(MatchField, (name, value, None))


def masked_field(name: str, value: Value, mask: Value | None) -> MatchField | None:
    """A canonical field: full masks dropped, value reduced by mask; None for a zero mask."""
    if mask is None:
        return _exact(name, value)
    return _masked(name, value, mask)


@lru_cache(maxsize=1 << 12)
def _masked(name: str, value: Value, mask: Value) -> MatchField | None:
    m = to_int(name, mask)
    full = (1 << FIELD_BITS[name]) - 1
    if m == 0:
        return None
    v = to_int(name, value) & m
    if m & full == full:
        return MatchField(name, from_int(name, v))
    return MatchField(name, from_int(name, v), from_int(name, m))


def match_dict(m: Match) -> dict[str, MatchField]:
    return {f.name: f for f in m}


# --------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class Output:
    port: int


@dataclass(frozen=True)
class SetField:
    name: str
    value: Value


@dataclass(frozen=True)
class PushVlan:
    ethertype: int = ETH_VLAN


@dataclass(frozen=True)
class PopVlan:
    pass


@dataclass(frozen=True)
class GroupAction:
    group_id: int


@dataclass(frozen=True)
class Move:
    """Nicira reg-move: copy ``n_bits`` of field ``src`` into ``dst`` (both from bit 0)."""

    src: str
    dst: str
    n_bits: int


@dataclass(frozen=True)
class Ct:
    """Nicira conntrack: look the packet up (``commit``: and record its connection) in a zone -
    the low 16 bits of register ``zone_src``, or the immediate ``zone`` - then, with ``table``,
    continue the pipeline there with ``ct_state`` set (the packet recirculates)."""

    commit: bool = False
    zone_src: str | None = None
    zone: int = 0
    table: int | None = None


@dataclass(frozen=True)
class DecTtl:
    """Decrement the IPv4 TTL; a packet whose TTL would reach 0 is dropped."""


@dataclass(frozen=True)
class OutputReg:
    """Output to the port number held in register ``field``."""

    field: str


Action = Output | SetField | PushVlan | PopVlan | GroupAction | Move | Ct | OutputReg | DecTtl


def set_field(name: str, value: Value) -> SetField:
    return SetField(name, canonical(name, value))


# --------------------------------------------------------------------------- instructions


@dataclass(frozen=True)
class ApplyActions:
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class WriteActions:
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class ClearActions:
    pass


@dataclass(frozen=True)
class WriteMetadata:
    value: int
    mask: int


@dataclass(frozen=True)
class GotoTable:
    table: int


@dataclass(frozen=True)
class ApplyMeter:
    """The meter instruction: the packet passes meter ``meter_id`` first (may be dropped)."""

    meter_id: int


Instruction = ApplyActions | WriteActions | ClearActions | WriteMetadata | GotoTable | ApplyMeter
_INSTR_ORDER = {ApplyMeter: -1, ClearActions: 0, ApplyActions: 1, WriteActions: 2,
                WriteMetadata: 3, GotoTable: 4}


def instructions(*items: Instruction) -> tuple[Instruction, ...]:
    """Instructions in OpenFlow's execution order (the order OVS reports them)."""
    kept = [i for i in items if not (i.__class__ is ApplyActions and not i.actions)]
    if len(kept) > 1:
        kept.sort(key=_instr_rank)
    return tuple(kept)


def _instr_rank(i: Instruction) -> int:
    return _INSTR_ORDER[type(i)]


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class Flow:
    """A flow entry.  Identity on a switch is ``key`` (table, priority, match)."""

    table: int
    priority: int
    match: Match
    instructions: tuple[Instruction, ...]
    cookie: int = 0

    @property
    def key(self) -> tuple[int, int, Match]:
        return (self.table, self.priority, self.match)

    def __hash__(self) -> int:  # cached: states are sets of many flows
        h = self.__dict__.get("_hash")
        if h is None:
            h = hash((self.table, self.priority, self.match, self.instructions, self.cookie))
            object.__setattr__(self, "_hash", h)
        return h


@dataclass(frozen=True, order=True)
class Bucket:
    actions: tuple[Action, ...]


@dataclass(frozen=True)
class Group:
    """A group entry (type ``all``).  OpenFlow groups carry no cookie: ours is for explanation
    only and does not take part in equality."""

    group_id: int
    buckets: tuple[Bucket, ...]  # sorted: order is irrelevant for type all
    type: str = "all"
    cookie: int = field(default=0, compare=False, repr=False)


@dataclass(frozen=True)
class MeterBand:
    rate: int  # kbps
    burst: int = 0
    type: str = "drop"


@dataclass(frozen=True)
class Meter:
    meter_id: int
    bands: tuple[MeterBand, ...]
    flags: tuple[str, ...] = ("kbps",)
    cookie: int = field(default=0, compare=False, repr=False)


def bucket_key(b: Bucket) -> tuple[int, int, str]:
    """The canonical order of a group's buckets: single-port outputs by port first (the common
    case, cheap), then the rest by their text."""
    acts = b.actions
    if len(acts) == 1 and type(acts[0]) is Output:
        return (0, acts[0].port, "")
    return (1, 0, repr(b))


def canonical_buckets(buckets) -> tuple[Bucket, ...]:  # noqa: ANN001 - any iterable of Bucket
    """``buckets`` in canonical order (what equal groups compare by)."""
    return tuple(sorted(buckets, key=bucket_key))


def group(group_id: int, buckets: list[tuple[Action, ...] | Bucket], cookie: int = 0) -> Group:
    """A type-all group with canonically ordered buckets (action tuples or buckets)."""
    return Group(group_id, canonical_buckets(b if type(b) is Bucket else Bucket(tuple(b))
                                             for b in buckets), cookie=cookie)


@dataclass(frozen=True)
class SwitchState:
    """Everything one switch should hold (or holds)."""

    flows: frozenset[Flow] = frozenset()
    groups: frozenset[Group] = frozenset()
    meters: frozenset[Meter] = frozenset()

    def digest(self) -> str:
        """A stable hash of the whole state: equal states give byte-identical digests."""
        h = hashlib.sha256()
        for part in (self.flows, self.groups, self.meters):
            for line in sorted(repr(e) for e in part):
                h.update(line.encode())
                h.update(b"\n")
            h.update(b"--\n")
        return h.hexdigest()

    def flows_in(self, table: int) -> list[Flow]:
        return sorted((f for f in self.flows if f.table == table),
                      key=lambda f: (-f.priority, repr(f.match)))
