"""``trace``: walk one packet through the desired tables of every host it reaches.

Pure: the simulator (:mod:`ofctl.simnet`) runs the packet; this module turns what it did into a
report a person can read (and a machine can check): per switch the entries that matched, in
order, with the intent object that owns each (its cookie), their actions, and how the walk on
that switch ended; then the verdicts: delivered to which endpoint on which host, or dropped by
which entry (or by a table miss).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields

import netaddr

from intent.errors import ConflictError, NotFoundError, ValidationError
from intent.model import EndpointSpec, NetworkSpec
from ofctl.model import ApplyActions, Ct, Flow, GotoTable
from ofctl.pipeline import MARKER, TABLES
from ofctl.router import GW_MAC
from ofctl.sim import Packet
from ofctl.simnet import Hop, NetTrace
from ofctl.textform import actions_text, match_text

Describe = Callable[[int, int], str]  # (cookie, table) -> owning intent object
PortName = Callable[[str, int], str]  # (host, ofport) -> what the port is
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,126}")


@dataclass(frozen=True)
class Step:
    """One matched entry."""

    table: int
    table_name: str
    priority: int
    cookie: str
    owner: str
    match: str
    actions: str


@dataclass(frozen=True)
class Verdict:
    """Where one copy of the packet ended.  ``result``: ``delivered``, ``dropped``,
    ``controller`` (a packet-in) or ``tunnel-unknown`` (sent to a VTEP no host has)."""

    result: str
    host: str
    port: int | None = None
    endpoint: str | None = None
    table: int | None = None
    entry: str | None = None  # the dropping entry's owner, or the miss
    text: str = ""


@dataclass(frozen=True)
class HopReport:
    """One switch the packet (or a copy) entered."""

    host: str
    in_port: int
    in_port_is: str
    packet: dict
    steps: tuple[Step, ...]
    outputs: tuple[str, ...]
    ended: str


@dataclass(frozen=True)
class TraceReport:
    hops: tuple[HopReport, ...]
    verdicts: tuple[Verdict, ...]

    def as_json(self) -> dict:
        return {"hops": [asdict(h) for h in self.hops],
                "verdicts": [asdict(v) for v in self.verdicts]}


def packet_fields(p: Packet) -> dict:
    """The fields of ``p`` that are set (no pipeline registers at 0), as JSON values."""
    out = {}
    for f in fields(Packet):
        v = getattr(p, f.name)
        if v is None or (f.name.startswith("reg") or f.name in ("metadata", "ct_state",
                                                               "ip_dscp")) and not v:
            continue
        out[f.name] = v
    return out


def _next_table(flow: Flow) -> int | None:
    for ins in flow.instructions:
        if isinstance(ins, ApplyActions):
            for a in ins.actions:
                if isinstance(a, Ct) and a.table is not None:
                    return a.table
        if isinstance(ins, GotoTable):
            return ins.table
    return None


def table_name(table: int) -> str:
    t = TABLES.get(table)
    return t.name if t else "marker" if table == MARKER else f"table {table}"


def _hop(hop: Hop, describe: Describe, port_name: PortName, hops_out: dict) -> HopReport:
    t = hop.trace
    steps = tuple(Step(f.table, table_name(f.table), f.priority, f"{f.cookie:#x}",
                       describe(f.cookie, f.table), match_text(f) or "(any)", actions_text(f))
                  for f in t.hits)
    outputs = tuple(f"{e.port} ({port_name(hop.host, e.port)})" for e in t.outputs)
    if t.dropped == "ttl":
        ended = "dropped: TTL expired"
    elif t.outputs:
        ended = "sent to " + ", ".join(outputs)
    elif not t.hits:
        ended = "dropped: no entry of table 0 (classify) matches"
    else:
        last = t.hits[-1]
        nxt = _next_table(last)
        if nxt is not None:
            ended = f"dropped: no entry of table {nxt} ({table_name(nxt)}) matches"
        else:
            ended = (f"dropped by table {last.table} ({table_name(last.table)}) priority "
                     f"{last.priority}: {describe(last.cookie, last.table)}")
    hops_out[id(hop)] = (t, ended)
    return HopReport(hop.host, hop.packet.in_port, port_name(hop.host, hop.packet.in_port),
                     packet_fields(hop.packet), steps, outputs, ended)


def report(net: NetTrace, describe: Describe, port_name: PortName) -> TraceReport:
    """The readable form of a :class:`NetTrace`."""
    ends: dict = {}
    hops = tuple(_hop(h, describe, port_name, ends) for h in net.hops)
    verdicts: list[Verdict] = []
    for d in net.deliveries:
        if d.host.startswith("phys:"):
            verdicts.append(Verdict("delivered", d.host[5:], endpoint=d.endpoint,
                                    text=f"delivered to physical machine {d.endpoint}"))
        else:
            what = f"endpoint {d.endpoint}" if d.endpoint else port_name(d.host, d.port)
            verdicts.append(Verdict("delivered", d.host, d.port, d.endpoint,
                                    text=f"delivered to {what} on {d.host} (port {d.port})"))
    for h in net.hops:
        t, ended = ends[id(h)]
        if not t.outputs:
            last = t.hits[-1] if t.hits else None
            nxt = _next_table(last) if last is not None else 0
            miss = t.dropped != "ttl" and nxt is not None
            table = nxt if miss else last.table if last else 0
            entry = "no entry matches (table miss)" if miss else \
                describe(last.cookie, last.table) if last else None
            verdicts.append(Verdict("dropped", h.host, table=table, entry=entry,
                                    text=f"{ended} (on {h.host})"))
    for h, _p in net.to_controller:
        verdicts.append(Verdict("controller", h, text=f"sent to the controller by {h}"))
    for _p in net.dropped_tunnel:
        verdicts.append(Verdict("tunnel-unknown", "", text="sent to a VTEP no host has"))
    return TraceReport(hops, tuple(verdicts))


PROTOCOLS = {"icmp": 1, "tcp": 6, "udp": 17}


@dataclass(frozen=True)
class Start:
    """The packet to trace and the switch it enters."""

    host: str
    packet: Packet
    source: EndpointSpec
    destination: str  # what the destination address is (an endpoint, a gateway, routed)


def start_packet(endpoints: Mapping[str, EndpointSpec], networks: Mapping[str, NetworkSpec],
                 port_of: Callable[[str, str], int | None], src: str, to: str,
                 proto: str = "icmp", dport: int | None = None, sport: int | None = None,
                 host: str | None = None) -> Start:
    """The packet endpoint ``src`` sends to ``to`` (an IPv4 address, or an endpoint id: its
    address and MAC, as with a static ARP entry).  Errors name the parameter at fault."""
    ep = endpoints.get(src)
    if ep is None:
        raise NotFoundError(f'from: endpoint "{src}" does not exist')
    net = networks.get(ep.network)
    if net is None:
        raise NotFoundError(f'from: endpoint "{src}": its network "{ep.network}" is not known')
    at = host or ep.host
    if not at:
        raise ConflictError(f'from: endpoint "{src}" is not bound to a host (give -host, or '
                            f"bind it)")
    port = port_of(at, src)
    if port is None:
        raise ConflictError(f'from: endpoint "{src}" has no port on host "{at}" (not plugged '
                            f"there yet)")
    if proto not in PROTOCOLS:
        raise ValidationError(f"proto: {proto!r} is not icmp, tcp or udp")
    if proto == "icmp" and (dport is not None or sport is not None):
        raise ValidationError("dport/sport: only with proto tcp or udp")
    dst_ip, dst_mac, what = _destination(endpoints, net, to)
    l4: dict = {"icmpv4_type": 8}
    if proto != "icmp":
        l4 = {f"{proto}_src": sport or 40000, f"{proto}_dst": dport or 80}
    pkt = Packet(in_port=port, eth_src=ep.mac, eth_dst=dst_mac, eth_type=0x0800,
                 ipv4_src=ep.ip, ipv4_dst=dst_ip, ip_proto=PROTOCOLS[proto], **l4)
    return Start(at, pkt, ep, what)


def _destination(endpoints: Mapping[str, EndpointSpec], net: NetworkSpec,
                 to: str) -> tuple[str, str, str]:
    """(address, MAC the source puts in the frame, what the destination is)."""
    try:
        addr = netaddr.IPAddress(to, version=4, flags=netaddr.INET_PTON)
    except (netaddr.AddrFormatError, ValueError, TypeError):
        addr = None
    if addr is None and re.fullmatch(r"[0-9.]+", to):
        raise ValidationError(f"to: {to!r} is not an IPv4 address (nor an endpoint id)")
    if addr is None:
        dst = endpoints.get(to)
        if dst is None:
            raise (NotFoundError(f'to: endpoint "{to}" does not exist') if NAME.fullmatch(to)
                   else ValidationError(f"to: {to!r} is neither an IPv4 address nor an "
                                        f"endpoint id"))
        return dst.ip, dst.mac, f"endpoint {dst.id} (static ARP: its own MAC)"
    ip = str(addr)
    if net.gateway and ip == net.gateway:
        return ip, GW_MAC, f"the gateway of network {net.name}"
    if addr not in netaddr.IPNetwork(net.subnet):
        return ip, GW_MAC, f"routed: outside network {net.name}'s subnet {net.subnet}, " \
                           f"sent to its gateway"
    for e in endpoints.values():
        if e.network == net.name and e.ip == ip:
            return ip, e.mac, f"endpoint {e.id}"
    raise NotFoundError(f"to: no endpoint of network {net.name} has address {ip} (an ARP "
                        f"request for it gets no answer)")
