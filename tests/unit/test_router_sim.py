"""Gateways, the distributed router and the VLAN hand-off in the simulator: who reaches whom,
with which MACs and TTL, what a physical machine on the trunk sees; random router layouts
checked against a plain reachability model; the engine equal to the full recompute."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from intent.model import (
    ALLOW,
    DENY,
    IN,
    PEER_GROUP,
    VLAN,
    VXLAN,
    EndpointGroupSpec,
    PolicyConfig,
    RouterSpec,
    RuleConfig,
)
from ofctl.compute import IntentIndex, compute_host
from ofctl.engine import engine_from
from ofctl.router import GW_MAC, router_mac
from ofctl.sim import Packet
from ofctl.simnet import NetworkSim
from tests.unit.ofctl_fixtures import (
    arp_request,
    endpoint_ports,
    ep,
    host,
    ipv4,
    net,
    ports_for,
    resolved,
)

HOSTS = [host("h1", 1), host("h2", 2), host("h3", 3)]
PHYS_MAC = "52:54:00:00:00:64"
GW_PHYS_MAC = "52:54:00:00:00:01"


def tenant_world(t: str, tags: tuple[int, int, int], routed: bool = True,
                 external: bool = False):
    """Tenant ``t``: orange (VXLAN), purple (VLAN) and ext (VLAN, physical gateway .1);
    a, b in orange on h1, h2; c, d in purple on h1, h2; router r1 over orange + purple."""
    o, p, x = (f"orange{t}", f"purple{t}", f"ext{t}")
    nets = [net(o, t, VXLAN, tags[0], "10.1.0.0/24"), net(p, t, VLAN, tags[1], "10.2.0.0/24"),
            replace(net(x, t, VLAN, tags[2], "10.9.0.0/24"), gateway="10.9.0.1")]
    eps = [ep(o, "a", "h1", "10.1.0.2"), ep(o, "b", "h2", "10.1.0.3"),
           ep(p, "c", "h1", "10.2.0.2"), ep(p, "d", "h2", "10.2.0.3")]
    routers = []
    if routed:
        routers.append(RouterSpec(t, "r1", tags[0] % 1000 + 1, (o, p),
                                  *((x, "10.9.0.2", "h3") if external else (None,) * 3)))
    return nets, eps, routers


def world(routed: bool = True, external: bool = False, second_tenant: bool = True):
    nets, eps, routers = tenant_world("t1", (5001, 100, 300), routed, external)
    if second_tenant:  # the same subnets, addresses and router names
        n2, e2, r2 = tenant_world("t2", (5002, 101, 301), routed, external)
        nets, eps, routers = nets + n2, eps + e2, routers + r2
    return replace(resolved(HOSTS, nets, eps), routers=tuple(routers))


def sim_of(intent, physical=None, gateway_macs=None) -> tuple[NetworkSim, dict]:
    ports = ports_for(intent)
    idx = IntentIndex(intent, gateway_macs)
    states = {h: compute_host(intent, ports[h], idx) for h in ports}
    engine = engine_from(intent, ports)
    for key, mac in (gateway_macs or {}).items():
        engine.set_gateway_mac(*key, mac)
    for h in ports:
        assert engine.table(h).state() == states[h], h
    return NetworkSim(states, ports, {h.name: h for h in intent.hosts}, physical), ports


def endpoint(intent, eid: str):
    return next(e for e in intent.endpoints if e.id == eid)


def routed_packet(src, port: int, dst_ip: str, ttl: int = 64, proto: int = 6) -> Packet:
    return replace(ipv4(src, port, GW_MAC, dst_ip), nw_ttl=ttl, ip_proto=proto,
                   tcp_dst=80 if proto == 6 else None)


def test_containers_ping_their_gateway_on_every_host():
    intent = world(routed=False)
    sim, ports = sim_of(intent)
    at = endpoint_ports(ports)
    for e in intent.endpoints:
        h, p = at[e.id]
        gw = next(n.gateway for n in intent.networks if n.name == e.network)
        t = sim.send(h, arp_request(e, p, gw))
        (reply,) = t.at(e.id)
        assert (reply.arp_op, reply.arp_sha, reply.arp_spa, reply.eth_dst) == (2, GW_MAC, gw,
                                                                               e.mac)
        t = sim.send(h, replace(ipv4(e, p, GW_MAC, gw), ip_proto=1, icmpv4_type=8))
        (echo,) = t.at(e.id)
        assert (echo.icmpv4_type, echo.ipv4_src, echo.ipv4_dst, echo.eth_src) == (
            0, gw, e.ip, GW_MAC)
        assert len(t.deliveries) == 1  # answered on the host: nothing reaches the trunk


def test_routed_pair_across_hosts_and_types_ttl_minus_one():
    intent = world()
    sim, ports = sim_of(intent)
    at = endpoint_ports(ports)
    for src, dst in (("a", "d"), ("d", "a"), ("c", "b"), ("b", "c"), ("a", "c"), ("c", "a")):
        s, d = endpoint(intent, f"orange{'t1'}-{src}" if src in "ab" else f"purplet1-{src}"), \
            endpoint(intent, f"orange{'t1'}-{dst}" if dst in "ab" else f"purplet1-{dst}")
        h, p = at[s.id]
        t = sim.send(h, routed_packet(s, p, d.ip))
        assert [x.endpoint for x in t.deliveries] == [d.id], (src, dst, t.deliveries)
        got = t.deliveries[0].packet
        assert got.nw_ttl == 63 and got.eth_dst == d.mac and got.ipv4_src == s.ip
        dst_net = next(n for n in intent.networks if n.name == d.network)
        crossed = at[d.id][0] != h
        expect_src = router_mac(h) if dst_net.net_type == VLAN and crossed else GW_MAC
        assert got.eth_src == expect_src, (src, dst)


def test_ttl_one_is_dropped():
    intent = world()
    sim, ports = sim_of(intent)
    a, d = endpoint(intent, "oranget1-a"), endpoint(intent, "purplet1-d")
    h, p = endpoint_ports(ports)[a.id]
    assert sim.send(h, routed_packet(a, p, d.ip, ttl=1)).deliveries == []
    assert len(sim.send(h, routed_packet(a, p, d.ip, ttl=2)).deliveries) == 1


def test_without_a_router_networks_stay_isolated():
    intent = world(routed=False)
    sim, ports = sim_of(intent)
    at = endpoint_ports(ports)
    for s in intent.endpoints:
        for d in intent.endpoints:
            if s.network != d.network:
                h, p = at[s.id]
                assert sim.send(h, routed_packet(s, p, d.ip)).deliveries == [], (s.id, d.id)
                assert sim.send(h, ipv4(s, p, d.mac, d.ip)).deliveries == [], (s.id, d.id)


def test_two_tenants_with_identical_routers_never_reach_each_other():
    intent = world()
    sim, ports = sim_of(intent)
    at = endpoint_ports(ports)
    tenant = {e.id: next(n.tenant for n in intent.networks if n.name == e.network)
              for e in intent.endpoints}
    for s in intent.endpoints:
        h, p = at[s.id]
        for d in intent.endpoints:
            if tenant[d.id] == tenant[s.id]:
                continue
            # d's address exists in both tenants: only the sender's own tenant may get it
            for pkt in (routed_packet(s, p, d.ip), ipv4(s, p, d.mac, d.ip)):
                got = {x.endpoint for x in sim.send(h, pkt).deliveries}
                assert all(tenant[g] == tenant[s.id] for g in got), (s.id, d.id, got)
            assert sim.send(h, ipv4(s, p, d.mac, d.ip)).deliveries == []


def test_policies_judge_routed_traffic_with_the_source_group_kept():
    web_in = PolicyConfig("web-in", "t1", (
        RuleConfig(1, 10, IN, ALLOW, PEER_GROUP, "app", "tcp", 80),
        RuleConfig(2, 5, IN, DENY)))
    intent = world(second_tenant=False)
    eps = tuple(replace(e, group={"a": "app", "d": "web"}.get(e.container))
                for e in intent.endpoints)
    intent = replace(intent, endpoints=eps, policies=(web_in,), groups=(
        EndpointGroupSpec("t1", "app", 1), EndpointGroupSpec("t1", "web", 2, ("web-in",))))
    sim, ports = sim_of(intent)
    at = endpoint_ports(ports)
    a, b, d = (endpoint(intent, x) for x in ("oranget1-a", "oranget1-b", "purplet1-d"))

    def tcp(src, dst, dport, sport=40000, ttl=64, mac=GW_MAC):
        h, p = at[src.id]
        pkt = replace(ipv4(src, p, mac, dst.ip), nw_ttl=ttl, ip_proto=6, tcp_src=sport,
                      tcp_dst=dport)
        return [x.endpoint for x in sim.send(h, pkt).deliveries]

    assert tcp(a, d, 80) == [d.id]  # routed orange (h1) -> purple (h2): group app kept
    assert tcp(a, d, 22) == []
    assert tcp(b, d, 80) == []  # b is in no group
    # the reply of the allowed connection passes back through the router
    h, p = at[d.id]
    back = replace(ipv4(d, p, GW_MAC, a.ip), ip_proto=6, tcp_src=80, tcp_dst=40000)
    assert [x.endpoint for x in sim.send(h, back).deliveries] == [a.id]


def test_a_physical_machine_on_the_vlan_reaches_containers_on_both_hosts():
    intent = world(routed=False, second_tenant=False)
    sim, ports = sim_of(intent, physical={"phys": 100, "other": 999})
    at = endpoint_ports(ports)
    phys = Packet(eth_src=PHYS_MAC, eth_type=0x0806, arp_op=1, arp_spa="10.2.0.100",
                  arp_sha=PHYS_MAC, arp_tha="00:00:00:00:00:00")
    for eid in ("purplet1-c", "purplet1-d"):
        e = endpoint(intent, eid)
        # its ARP for a container is answered once, by that container's own host
        t = sim.send_physical("phys", replace(phys, arp_tpa=e.ip))
        replies = [x for x in t.at("phys") if x.arp_op == 2]
        assert [(r.arp_sha, r.arp_spa) for r in replies] == [(e.mac, e.ip)]
        assert t.at("other") == []
        # unicast to the container arrives there only
        t = sim.send_physical("phys", Packet(eth_src=PHYS_MAC, eth_dst=e.mac,
                                             ipv4_src="10.2.0.100", ipv4_dst=e.ip))
        assert [x.endpoint for x in t.deliveries] == [e.id]
        # the container's ARP for the machine goes to the trunk (not answered locally) and
        # its unicast reaches the machine, once, tagged with purple's VLAN only
        h, p = at[e.id]
        t = sim.send(h, arp_request(e, p, "10.2.0.100"))
        assert [x.arp_tpa for x in t.at("phys")] == ["10.2.0.100"] and t.at("other") == []
        t = sim.send(h, ipv4(e, p, PHYS_MAC, "10.2.0.100"))
        assert len(t.at("phys")) == 1 and t.at("other") == []
        # broadcast reaches the segment exactly once
        t = sim.send(h, ipv4(e, p, "ff:ff:ff:ff:ff:ff", "10.2.0.255"))
        assert len(t.at("phys")) == 1


def test_a_machine_on_another_vlan_reaches_nothing():
    intent = world(routed=False, second_tenant=False)
    sim, _ports = sim_of(intent, physical={"other": 999})
    for e in intent.endpoints:
        t = sim.send_physical("other", Packet(eth_src=PHYS_MAC, eth_type=0x0806, arp_op=1,
                                              arp_spa="10.2.0.100", arp_sha=PHYS_MAC,
                                              arp_tpa=e.ip))
        assert t.deliveries == []
        t = sim.send_physical("other", Packet(eth_src=PHYS_MAC, eth_dst=e.mac,
                                              ipv4_src="10.2.0.100", ipv4_dst=e.ip))
        assert t.deliveries == []


def test_external_gateway_route_and_return():
    intent = world(external=True, second_tenant=False)
    gw = {("t1", "r1"): GW_PHYS_MAC}
    sim, ports = sim_of(intent, physical={"router": 300}, gateway_macs=gw)
    at = endpoint_ports(ports)
    for eid in ("oranget1-a", "purplet1-d"):
        e = endpoint(intent, eid)
        h, p = at[e.id]
        t = sim.send(h, routed_packet(e, p, "192.0.2.7"))
        out = [x for x in t.at("router") if x.eth_dst == GW_PHYS_MAC]
        assert len(out) == 1, t.deliveries
        assert out[0].eth_src == router_mac("h3") and out[0].nw_ttl == 63
        assert out[0].ipv4_src == e.ip
        # the reply comes back to ExternalIp's MAC (on h3) and is routed on to the container
        back = Packet(eth_src=GW_PHYS_MAC, eth_dst=router_mac("h3"), ipv4_src="192.0.2.7",
                      ipv4_dst=e.ip, nw_ttl=64)
        t = sim.send_physical("router", back)
        assert [x.endpoint for x in t.deliveries if x.endpoint != "router"] == [e.id]
        assert t.at(e.id)[0].nw_ttl == 63 and t.at(e.id)[0].eth_dst == e.mac
    # the physical gateway's ARP for ExternalIp is answered by the gateway host only
    t = sim.send_physical("router", Packet(eth_src=GW_PHYS_MAC, eth_type=0x0806, arp_op=1,
                                           arp_spa="10.9.0.1", arp_sha=GW_PHYS_MAC,
                                           arp_tpa="10.9.0.2"))
    assert [(x.arp_op, x.arp_sha) for x in t.at("router")] == [(2, router_mac("h3"))]
    # its reply to the controller's request is handed to the controller, on h3
    t = sim.send_physical("router", Packet(eth_src=GW_PHYS_MAC, eth_dst=router_mac("h3"),
                                           eth_type=0x0806, arp_op=2, arp_spa="10.9.0.1",
                                           arp_sha=GW_PHYS_MAC, arp_tpa="10.9.0.2"))
    assert [h for h, _ in t.to_controller] == ["h3"]


def test_external_route_waits_for_the_gateway_mac_and_inside_addresses_never_leave():
    intent = world(external=True, second_tenant=False)
    sim, ports = sim_of(intent, physical={"router": 300})
    at = endpoint_ports(ports)
    for eid in ("oranget1-a", "purplet1-d"):
        a = endpoint(intent, eid)
        h, p = at[a.id]
        assert sim.send(h, routed_packet(a, p, "192.0.2.7")).deliveries == []
    sim, ports = sim_of(intent, physical={"router": 300},
                        gateway_macs={("t1", "r1"): GW_PHYS_MAC})
    # an address of a routed subnet that no endpoint holds is dropped, not sent out
    assert sim.send(h, routed_packet(a, p, "10.2.0.99")).deliveries == []
    out = sim.send(h, routed_packet(a, p, "192.0.2.7")).at("router")
    assert [x.eth_dst for x in out if x.eth_dst == GW_PHYS_MAC] == [GW_PHYS_MAC]


# --------------------------------------------------------------------------- random layouts

layouts = st.lists(  # per tenant: per network (type, router index or None, endpoint hosts)
    st.lists(st.tuples(st.sampled_from([VLAN, VXLAN]), st.one_of(st.none(), st.integers(0, 1)),
                       st.lists(st.sampled_from(["h1", "h2", "h3"]), min_size=1, max_size=3)),
             min_size=1, max_size=3),
    min_size=1, max_size=2)


def layout_intent(layout):
    nets, eps, routers = [], [], {}
    tag = 0
    for ti, tnets in enumerate(layout):
        t = f"t{ti}"
        for ni, (kind, ridx, hosts) in enumerate(tnets):
            tag += 1
            name = f"n{ti}x{ni}"
            nets.append(net(name, t, kind, 100 + tag if kind == VLAN else 5000 + tag,
                            f"10.{ni}.0.0/24"))  # every tenant uses the same subnets
            for k, h in enumerate(hosts):
                eps.append(ep(name, f"c{k}", h, f"10.{ni}.0.{k + 2}"))
            if ridx is not None:
                routers.setdefault((t, ridx), []).append(name)
    specs = tuple(RouterSpec(t, f"r{i}", len(nets) + 10 * ti + i + 1, tuple(ns))
                  for (t, i), ns in sorted(routers.items()) for ti in [int(t[1:])])
    return replace(resolved(HOSTS, nets, eps), routers=specs)


@settings(max_examples=40, deadline=None)
@given(layouts)
def test_random_layouts_match_the_reachability_model(layout):
    intent = layout_intent(layout)
    sim, ports = sim_of(intent)
    at = endpoint_ports(ports)
    router = {n: r.id for r in intent.routers for n in r.networks}
    for s in intent.endpoints:
        h, p = at[s.id]
        for d in intent.endpoints:
            if s.id == d.id:
                continue
            got = sim.send(h, ipv4(s, p, d.mac, d.ip))
            assert [x.endpoint for x in got.deliveries] == (
                [d.id] if s.network == d.network else []), (s.id, d.id, got.deliveries)
            # to the gateway: whoever holds the address in the sender's routing domain
            domain = {n for n, r in router.items() if r == router.get(s.network, -1)}
            want = [e.id for e in intent.endpoints if e.network in domain and e.ip == d.ip
                    and e.id != s.id]
            got = sim.send(h, routed_packet(s, p, d.ip))
            assert [x.endpoint for x in got.deliveries] == want, (s.id, d.id, got.deliveries)
            assert all(x.packet.nw_ttl == 63 for x in got.deliveries)
