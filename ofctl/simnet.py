"""The network-level simulator: follows tunnel and uplink outputs to the other hosts' tables.

The underlay delivers a tunnelled packet to the host whose VTEP IP is ``tun_ipv4_dst``; the VLAN
trunk behind the uplinks is a shared segment (every other host's uplink receives the frame, and
so does every *physical machine* on the frame's VLAN: an ordinary machine on an access port).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from intent.model import HostSpec
from ofctl.model import OFPP_CONTROLLER, OFPVID_PRESENT, Flow, SwitchState
from ofctl.sim import Packet, SimError, Switch, Trace
from ofctl.topology import HostPorts

MAX_HOPS = 64


@dataclass(frozen=True)
class Delivery:
    """A packet handed to a local endpoint port of ``host``."""

    host: str
    port: int
    endpoint: str | None
    packet: Packet


@dataclass(frozen=True)
class Hop:
    """One switch walk: the packet as it entered ``host``'s switch, and what happened there."""

    host: str
    packet: Packet
    trace: Trace


@dataclass
class NetTrace:
    deliveries: list[Delivery] = field(default_factory=list)
    hits: list[tuple[str, Flow]] = field(default_factory=list)
    dropped_tunnel: list[Packet] = field(default_factory=list)  # to an unknown VTEP
    to_controller: list[tuple[str, Packet]] = field(default_factory=list)
    hops: list[Hop] = field(default_factory=list)  # every switch the packet (or a copy) entered

    def at(self, endpoint: str) -> list[Packet]:
        """The packets delivered to ``endpoint`` (an endpoint id or a physical machine)."""
        return [d.packet for d in self.deliveries if d.endpoint == endpoint]


class NetworkSim:
    """All hosts' switches plus the underlay between them."""

    def __init__(self, states: dict[str, SwitchState], ports: dict[str, HostPorts],
                 hosts: dict[str, HostSpec], physical: dict[str, int] | None = None) -> None:
        self.physical = dict(physical or {})  # machine name -> VLAN id of its access port
        self.switches = {h: Switch(s) for h, s in states.items()}
        self.ports = ports
        self.by_vtep = {h.vtep_ip: h.name for h in hosts.values()
                        if h.vtep_ip and h.name in states}
        self.vtep_of = {name: ip for ip, name in self.by_vtep.items()}
        self.endpoint_at = {(h, port): eid for h, p in ports.items()
                            for eid, port in p.endpoint_ports}

    def send_physical(self, machine: str, packet: Packet) -> NetTrace:
        """A physical machine sends ``packet`` (untagged) on its access port."""
        vid = OFPVID_PRESENT | self.physical[machine]
        out = NetTrace()
        queue = [(h, packet.fresh(in_port=p.uplink_port, vlan_vid=vid, tunnel_id=None), 1)
                 for h, p in self.ports.items() if p.uplink_port is not None]
        self._trunk(machine, packet.fresh(vlan_vid=vid), out)
        return self._follow(queue, out)

    def send(self, host: str, packet: Packet) -> NetTrace:
        """Inject ``packet`` at ``host`` (on ``packet.in_port``) and follow every copy."""
        return self._follow([(host, packet, 0)], NetTrace())

    def _trunk(self, sender: str, q: Packet, out: NetTrace) -> None:
        """``q`` on the trunk: every physical machine on its VLAN but the sender gets it."""
        for m, vid in sorted(self.physical.items()):
            if m != sender and q.vlan_vid == OFPVID_PRESENT | vid:
                out.deliveries.append(Delivery(f"phys:{m}", 0, m, q.fresh(vlan_vid=0)))

    def _follow(self, queue: list, out: NetTrace) -> NetTrace:
        while queue:
            h, pkt, hops = queue.pop(0)
            if hops > MAX_HOPS:
                raise SimError(f"packet loops: more than {MAX_HOPS} switch hops")
            trace = self.switches[h].run(pkt)
            out.hops.append(Hop(h, pkt, trace))
            out.hits.extend((h, f) for f in trace.hits)
            p = self.ports[h]
            for em in trace.outputs:
                q = em.packet
                if em.port == p.vxlan_port and p.vxlan_port is not None:
                    dst = self.by_vtep.get(q.tun_ipv4_dst)
                    if dst is None or q.tunnel_id is None:
                        out.dropped_tunnel.append(q)
                        continue
                    arrive = q.fresh(in_port=self.ports[dst].vxlan_port,
                                     tun_ipv4_src=self.vtep_of.get(h))
                    queue.append((dst, arrive, hops + 1))
                elif em.port == OFPP_CONTROLLER:
                    out.to_controller.append((h, q))
                elif em.port == p.uplink_port and p.uplink_port is not None:
                    self._trunk(h, q, out)
                    for other, op in self.ports.items():
                        if other != h and op.uplink_port is not None:
                            queue.append((other, q.fresh(in_port=op.uplink_port,
                                                       tunnel_id=None), hops + 1))
                else:
                    out.deliveries.append(Delivery(h, em.port,
                                                   self.endpoint_at.get((h, em.port)), q))
        return out
