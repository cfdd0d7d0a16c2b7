"""Builders of ResolvedIntent values and port maps for the ofctl tests."""

from __future__ import annotations

import hashlib
from dataclasses import replace

from intent.model import VLAN, VXLAN, EndpointSpec, HostSpec, NetworkSpec, ResolvedIntent
from ofctl.compute import IntentIndex, compute_host
from ofctl.model import SwitchState
from ofctl.sim import Packet
from ofctl.simnet import NetworkSim
from ofctl.topology import HostPorts

VXLAN_PORT = 1
UPLINK_PORT = 2
FIRST_EP_PORT = 10


def mac_of(ep_id: str) -> str:
    """A stable locally administered unicast MAC per endpoint id."""
    d = hashlib.sha256(ep_id.encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in d[:5])


def host(name: str, index: int, uplink: bool = True) -> HostSpec:
    return HostSpec(name, vtep_ip=f"192.168.0.{index}", uplink="eth2" if uplink else None)


def net(name: str, tenant: str, kind: str, tag: int, subnet: str) -> NetworkSpec:
    gw = subnet.rsplit(".", 1)[0] + ".254"
    return NetworkSpec(name, tenant, kind, tag, subnet, gw)


def ep(network: str, container: str, host_name: str | None, ip: str) -> EndpointSpec:
    eid = f"{network}-{container}"
    return EndpointSpec(eid, network, container, host_name, ip, mac_of(eid))


def resolved(hosts, networks, endpoints) -> ResolvedIntent:
    return ResolvedIntent(tuple(networks), tuple(endpoints), tuple(hosts),
                          tenants=tuple(sorted({n.tenant for n in networks})))


def ports_for(intent: ResolvedIntent) -> dict[str, HostPorts]:
    """Every bound endpoint plugged, ofports numbered by endpoint id from 10."""
    out = {}
    for h in intent.hosts:
        eps = sorted(e.id for e in intent.endpoints if e.host == h.name)
        out[h.name] = HostPorts(h.name, tuple((eid, FIRST_EP_PORT + i) for i, eid in
                                             enumerate(eps)), VXLAN_PORT,
                                UPLINK_PORT if h.uplink else None)
    return out


def states_for(intent: ResolvedIntent, ports: dict[str, HostPorts]) -> dict[str, SwitchState]:
    idx = IntentIndex(intent)
    return {h: compute_host(intent, p, idx) for h, p in ports.items()}


def network_sim(intent: ResolvedIntent) -> tuple[NetworkSim, dict[str, HostPorts]]:
    ports = ports_for(intent)
    return NetworkSim(states_for(intent, ports), ports, {h.name: h for h in intent.hosts}), ports


def sample_intent() -> ResolvedIntent:
    """3 hosts, two tenants with overlapping subnets, VXLAN and VLAN networks."""
    hosts = [host("h1", 1), host("h2", 2), host("h3", 3)]
    nets = [net("orange", "t1", VXLAN, 5001, "10.1.0.0/24"),
            net("purple", "t1", VLAN, 100, "10.2.0.0/24"),
            net("blue", "t2", VXLAN, 6001, "10.1.0.0/24"),  # overlaps orange
            net("green", "t2", VLAN, 200, "10.1.0.0/24")]
    eps = [ep("orange", "c1", "h1", "10.1.0.1"), ep("orange", "c2", "h1", "10.1.0.2"),
           ep("orange", "c3", "h2", "10.1.0.3"), ep("orange", "c4", "h3", "10.1.0.4"),
           ep("purple", "c1", "h1", "10.2.0.1"), ep("purple", "c5", "h2", "10.2.0.2"),
           ep("blue", "c6", "h1", "10.1.0.1"), ep("blue", "c7", "h2", "10.1.0.2"),
           ep("green", "c8", "h2", "10.1.0.1"), ep("green", "c9", "h3", "10.1.0.3"),
           ep("orange", "late", None, "10.1.0.9")]
    return resolved(hosts, nets, eps)


# --------------------------------------------------------------------------- packets


def endpoint_ports(ports: dict[str, HostPorts]) -> dict[str, tuple[str, int]]:
    return {eid: (h, port) for h, p in ports.items() for eid, port in p.endpoint_ports}


def arp_request(src: EndpointSpec, in_port: int, target_ip: str) -> Packet:
    return Packet(in_port=in_port, eth_src=src.mac, eth_dst="ff:ff:ff:ff:ff:ff",
                  eth_type=0x0806, arp_op=1, arp_spa=src.ip, arp_sha=src.mac,
                  arp_tpa=target_ip, arp_tha="00:00:00:00:00:00")


def ipv4(src: EndpointSpec, in_port: int, dst_mac: str, dst_ip: str) -> Packet:
    return Packet(in_port=in_port, eth_src=src.mac, eth_dst=dst_mac, eth_type=0x0800,
                  ipv4_src=src.ip, ipv4_dst=dst_ip)


def generated_intent(n_hosts: int, n_endpoints: int, eps_per_net: int = 50,
                     hosts_per_net: int = 5) -> ResolvedIntent:
    """A cluster where each network spans a few hosts (as schedulers place tenants)."""
    hosts = [host(f"h{i}", i % 250 + 1) for i in range(n_hosts)]
    hosts = [HostSpec(h.name, f"192.168.{i // 250}.{i % 250 + 1}", "eth2")
             for i, h in enumerate(hosts)]
    n_nets = max(1, n_endpoints // eps_per_net)
    nets, eps = [], []
    for k in range(n_nets):
        kind = VXLAN if k % 3 else VLAN
        tag = 10000 + k if kind == VXLAN else 2 + k % 4000
        nets.append(net(f"n{k}", f"t{k % 20}", kind, tag, "10.0.0.0/16"))
        first = (k * hosts_per_net) % n_hosts
        for j in range(eps_per_net):
            h = hosts[(first + j % hosts_per_net) % n_hosts].name
            eps.append(ep(f"n{k}", f"c{j}", h, f"10.0.{j // 250}.{j % 250 + 1}"))
    return resolved(hosts, nets, eps)


# --------------------------------------------------------------------------- invariants


def check_isolation(intent: ResolvedIntent) -> int:
    """Assert reachability, isolation, flooding and anti-spoofing for every endpoint pair.

    Returns the number of packets simulated.
    """
    sim, ports = network_sim(intent)
    at = endpoint_ports(ports)
    eps = [e for e in intent.endpoints if e.id in at]
    vlan = {x.name: x.net_type == VLAN for x in intent.networks}
    n = 0
    for a in eps:
        h, p = at[a.id]
        same = [e for e in eps if e.network == a.network and e.id != a.id]
        # broadcast: every other endpoint of the network exactly once, nobody else
        t = sim.send(h, ipv4(a, p, "ff:ff:ff:ff:ff:ff", "255.255.255.255"))
        got = sorted(d.endpoint for d in t.deliveries)
        assert got == sorted(e.id for e in same), (a.id, got)
        # spoofing: foreign MAC, foreign IP, foreign ARP sender
        for pkt in (_with(ipv4(a, p, "ff:ff:ff:ff:ff:ff", "1.1.1.1"), eth_src="02:00:00:00:00:99"),
                    _with(ipv4(a, p, "ff:ff:ff:ff:ff:ff", "1.1.1.1"), ipv4_src="10.9.9.9"),
                    _with(arp_request(a, p, a.ip), arp_spa="10.9.9.9"),
                    _with(arp_request(a, p, a.ip), arp_sha="02:00:00:00:00:99"),
                    Packet(in_port=p, eth_src=a.mac, eth_type=0x86DD)):
            assert sim.send(h, pkt).deliveries == [], (a.id, pkt)
        n += 6
        for b in eps:
            if b.id == a.id:
                continue
            bh, bp = at[b.id]
            t = sim.send(h, arp_request(a, p, b.ip))
            owner = [e for e in eps if e.network == a.network and e.ip == b.ip]
            if b.network == a.network:
                assert [(d.host, d.port) for d in t.deliveries] == [(h, p)], (a.id, b.id)
                r = t.deliveries[0].packet
                assert (r.arp_op, r.arp_sha, r.arp_spa, r.eth_dst) == (2, b.mac, b.ip, a.mac)
                t = sim.send(h, ipv4(a, p, b.mac, b.ip))
                assert [(d.host, d.port) for d in t.deliveries] == [(bh, bp)], (a.id, b.id)
            else:
                replies = [d for d in t.deliveries if d.packet.arp_op == 2]
                macs = {d.packet.arp_sha for d in replies}
                assert macs == {o.mac for o in owner}, (a.id, b.id, macs)
                assert all(d.port == p and d.host == h for d in replies)
                # a VLAN network asks the physical segment: only a's own network hears it
                asked = {d.endpoint for d in t.deliveries if d.packet.arp_op != 2}
                assert asked <= ({e.id for e in same} if vlan[a.network] else set()), (a.id,
                                                                                       asked)
                t = sim.send(h, ipv4(a, p, b.mac, b.ip))
                # only an endpoint of a's own network that happens to share the MAC may get it
                assert all(d.endpoint in {e.id for e in same if e.mac == b.mac}
                           for d in t.deliveries), (a.id, b.id)
                assert (bh, bp) not in {(d.host, d.port) for d in t.deliveries}
            n += 2
    return n


def _with(pkt: Packet, **changes) -> Packet:
    return replace(pkt, **changes)
