"""Underlay ingress (issue 11 item 8): a VNI is taken only from the VTEPs of hosts that send
it, and the uplink only with the tags of VLAN networks.  Each refused packet is paired with
the same packet from a legitimate sender, which is delivered: the drop is the filter's."""

from __future__ import annotations

from dataclasses import replace

from intent.model import VXLAN, RouterSpec
from ofctl.router import GW_MAC
from ofctl.sim import Packet
from tests.unit.ofctl_fixtures import (
    endpoint_ports,
    ep,
    host,
    ipv4,
    net,
    network_sim,
    resolved,
    sample_intent,
)


def tunnelled(sim, dst_host: str, src_vtep: str, vni: int, eth_dst: str, ip_dst: str) -> Packet:
    """A VXLAN packet as the underlay hands it to ``dst_host``'s tunnel port."""
    return Packet(in_port=sim.ports[dst_host].vxlan_port, eth_src="52:54:00:00:00:99",
                  eth_dst=eth_dst, eth_type=0x0800, ipv4_src="10.1.0.77", ipv4_dst=ip_dst,
                  tunnel_id=vni, tun_ipv4_src=src_vtep)


def test_a_vni_from_an_address_that_is_no_vtep_is_dropped():
    intent = sample_intent()
    sim, _ports = network_sim(intent)
    c4 = next(e for e in intent.endpoints if e.id == "orange-c4")  # on h3, VNI 5001
    good = sim.send("h3", tunnelled(sim, "h3", "192.168.0.1", 5001, c4.mac, c4.ip))
    assert [d.endpoint for d in good.deliveries] == ["orange-c4"]
    for stranger in ("192.168.0.99", "10.1.0.1"):
        t = sim.send("h3", tunnelled(sim, "h3", stranger, 5001, c4.mac, c4.ip))
        assert t.deliveries == [], stranger


def test_a_vni_from_a_vtep_whose_host_has_no_endpoint_of_it_is_dropped():
    intent = sample_intent()  # blue (VNI 6001): c6 on h1, c7 on h2, nothing on h3
    sim, _ports = network_sim(intent)
    c7 = next(e for e in intent.endpoints if e.id == "blue-c7")
    good = sim.send("h2", tunnelled(sim, "h2", "192.168.0.1", 6001, c7.mac, c7.ip))
    assert [d.endpoint for d in good.deliveries] == ["blue-c7"]
    t = sim.send("h2", tunnelled(sim, "h2", "192.168.0.3", 6001, c7.mac, c7.ip))
    assert t.deliveries == []


def test_routed_traffic_is_taken_from_a_host_with_another_network_of_the_router():
    """x on h1 only, y on h2 only, one router: h1 sends y's VNI though it has no y endpoint;
    h3 (only z, on no router) may not."""
    hosts = [host("h1", 1), host("h2", 2), host("h3", 3)]
    nets = [net("x", "t", VXLAN, 7001, "10.7.0.0/24"), net("y", "t", VXLAN, 7002, "10.8.0.0/24"),
            net("z", "t", VXLAN, 7003, "10.9.0.0/24")]
    eps = [ep("x", "a", "h1", "10.7.0.2"), ep("y", "b", "h2", "10.8.0.2"),
           ep("z", "c", "h3", "10.9.0.2"), ep("z", "d", "h2", "10.9.0.3")]
    intent = replace(resolved(hosts, nets, eps),
                     routers=(RouterSpec("t", "r", 9, ("x", "y"), None, None, None),))
    sim, ports = network_sim(intent)
    a, b = (next(e for e in intent.endpoints if e.id == i) for i in ("x-a", "y-b"))
    h, p = endpoint_ports(ports)[a.id]
    t = sim.send(h, replace(ipv4(a, p, GW_MAC, b.ip), nw_ttl=64))
    assert [(d.endpoint, d.packet.nw_ttl) for d in t.deliveries] == [("y-b", 63)]
    assert sim.send("h2", tunnelled(sim, "h2", "192.168.0.1", 7002, b.mac, b.ip)).deliveries
    assert sim.send("h2", tunnelled(sim, "h2", "192.168.0.3", 7002, b.mac, b.ip)).deliveries \
        == []


def test_the_uplink_takes_only_the_tags_of_vlan_networks_present():
    intent = sample_intent()  # purple: VLAN 100 (h1, h2); green: VLAN 200 (h2, h3)
    sim, ports = network_sim(intent)
    c5 = next(e for e in intent.endpoints if e.id == "purple-c5")  # on h2
    up = ports["h2"].uplink_port

    def frame(vid: int) -> Packet:
        return Packet(in_port=up, eth_src="52:54:00:00:00:98", eth_dst=c5.mac, eth_type=0x0800,
                      ipv4_src="10.2.0.77", ipv4_dst=c5.ip, vlan_vid=vid)

    good = sim.send("h2", frame(0x1000 | 100))
    assert [d.endpoint for d in good.deliveries] == ["purple-c5"]
    for vid in (0, 0x1000 | 101, 0x1000 | 300, 0x1000 | 5001):  # untagged, no such network
        assert sim.send("h2", frame(vid)).deliveries == [], vid
    other = sim.send("h2", frame(0x1000 | 200))  # green's tag: green's frame, not purple's
    assert "purple-c5" not in [d.endpoint for d in other.deliveries]
