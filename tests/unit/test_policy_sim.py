"""Policies in the simulator: allow/deny per rule kind, priorities and ties, stateful replies,
in vs out, two tenants with the same names on overlapping subnets, and random rule sets
checked against a plain reference evaluator of the semantics."""

from __future__ import annotations

import ipaddress
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from intent.model import (
    ALLOW,
    DENY,
    IN,
    OUT,
    PEER_GROUP,
    PEER_IP,
    PEER_NETWORK,
    VLAN,
    VXLAN,
    EndpointGroupSpec,
    PolicyConfig,
    RuleConfig,
)
from ofctl.compute import compute_host
from ofctl.engine import engine_from
from ofctl.sim import Packet
from ofctl.simnet import NetworkSim
from tests.unit.ofctl_fixtures import ep, host, net, ports_for, resolved

HOSTS = [host("h1", 1), host("h2", 2)]


def world(rules: dict[str, list[RuleConfig]], groups: dict[str, list[str]],
          members: dict[str, str], tenant: str = "t1", subnet: str = "10.1.0.0/24",
          vlan: bool = False):
    """Networks orange (VXLAN) and purple (VLAN) of ``tenant``; endpoints a, b (orange, h1 and
    h2), c (orange, h1), d (purple, h2); ``members`` maps container -> group."""
    nets = [replace(net(f"orange{tenant}", tenant, VLAN if vlan else VXLAN, 11 if vlan else 5001,
                        subnet), zone=7),
            replace(net(f"purple{tenant}", tenant, VLAN, 100 + len(tenant) * (tenant != "t1"),
                        "10.2.0.0/24"), zone=8)]
    o, p = nets[0].name, nets[1].name
    base = subnet.rsplit(".", 1)[0]
    eps = [ep(o, "a", "h1", f"{base}.2"), ep(o, "b", "h2", f"{base}.3"),
           ep(o, "c", "h1", f"{base}.4"), ep(p, "d", "h2", "10.2.0.5")]
    eps = [replace(e, group=members.get(e.container)) for e in eps]
    gspecs = tuple(EndpointGroupSpec(tenant, g, i + 1, tuple(pols))
                   for i, (g, pols) in enumerate(sorted(groups.items())))
    policies = tuple(PolicyConfig(name, tenant, tuple(rs)) for name, rs in rules.items())
    return replace(resolved(HOSTS, nets, eps), groups=gspecs, policies=policies)


def sim(intent) -> tuple[NetworkSim, dict]:
    ports = ports_for(intent)
    states = {h: compute_host(intent, ports[h]) for h in ports}
    # the incremental engine agrees with the full recompute on every host
    engine = engine_from(intent, ports)
    for h in ports:
        assert engine.table(h).state() == states[h]
    return NetworkSim(states, ports, {h.name: h for h in intent.hosts}), ports


def endpoint(intent, container: str):
    return next(e for e in intent.endpoints if e.container == container)


def send(ns: NetworkSim, ports, intent, src: str, dst: str, proto: int = 6, sport: int = 40000,
         dport: int = 80) -> bool:
    """One packet from container ``src`` to ``dst``; True when ``dst`` gets it (once)."""
    s, d = endpoint(intent, src), endpoint(intent, dst)
    in_port = dict(ports[s.host].endpoint_ports)[s.id]
    fields = {6: {"tcp_src": sport, "tcp_dst": dport}, 17: {"udp_src": sport, "udp_dst": dport},
              1: {"icmpv4_type": 8}}[proto]
    pkt = Packet(in_port=in_port, eth_src=s.mac, eth_dst=d.mac, eth_type=0x0800,
                 ipv4_src=s.ip, ipv4_dst=d.ip, ip_proto=proto, **fields)
    got = [x for x in ns.send(s.host, pkt).deliveries if x.endpoint is not None]
    assert all(x.endpoint == d.id for x in got), got
    assert len(got) <= 1
    return bool(got)


def reply(ns, ports, intent, src: str, dst: str, proto: int = 6, sport: int = 40000,
          dport: int = 80) -> bool:
    """The reply to ``send(src, dst, sport, dport)``."""
    return send(ns, ports, intent, dst, src, proto, dport, sport)


R = RuleConfig
WEB_IN = [R(1, 1, IN, DENY), R(2, 10, IN, ALLOW, PEER_GROUP, "app", "tcp", 80, 80),
          R(3, 10, IN, ALLOW, PEER_IP, "10.1.0.0/24", "icmp")]


def test_allow_and_deny_per_rule_kind_and_the_replies_pass() -> None:
    intent = world({"web-in": WEB_IN}, {"web": ["web-in"], "app": []}, {"a": "web", "b": "app"})
    ns, ports = sim(intent)
    assert send(ns, ports, intent, "b", "a", dport=80)  # app -> web tcp 80: rule 2
    assert reply(ns, ports, intent, "b", "a", dport=80)  # and its reply
    assert not send(ns, ports, intent, "b", "a", dport=81)  # any other port: rule 1 denies
    assert not send(ns, ports, intent, "c", "a", dport=80)  # c is not in app
    assert send(ns, ports, intent, "c", "a", proto=1)  # icmp from the subnet: rule 3
    assert send(ns, ports, intent, "a", "c", dport=22)  # web's policy has no out rule here
    assert send(ns, ports, intent, "a", "b", dport=22)


def test_a_connection_allowed_one_way_does_not_open_the_other_way() -> None:
    deny_all = [R(1, 1, IN, DENY)]
    intent = world({"lock": deny_all, "web-in": WEB_IN},
                   {"app": ["lock"], "web": ["web-in"]}, {"a": "web", "b": "app"})
    ns, ports = sim(intent)
    assert send(ns, ports, intent, "b", "a", sport=41000, dport=80)
    assert reply(ns, ports, intent, "b", "a", sport=41000, dport=80)  # the reply passes b's lock
    assert not send(ns, ports, intent, "a", "b", sport=80, dport=41001)  # a new one does not


def test_priorities_and_ties_deny_wins_at_equal_priority() -> None:
    rules = [R(1, 50, IN, ALLOW, None, None, "tcp", 80, 80), R(2, 50, IN, DENY, None, None,
                                                                "tcp", 80, 80),
             R(3, 60, IN, ALLOW, None, None, "tcp", 443, 443),
             R(4, 20, IN, DENY, None, None, "tcp", 443, 443)]
    intent = world({"p": rules}, {"web": ["p"]}, {"a": "web"})
    ns, ports = sim(intent)
    assert not send(ns, ports, intent, "b", "a", dport=80)
    assert send(ns, ports, intent, "b", "a", dport=443)


def test_out_rules_judge_on_the_source_and_in_rules_on_the_destination() -> None:
    rules = [R(1, 5, OUT, DENY, PEER_NETWORK, "oranget1", "udp", 5000, 5010)]
    intent = world({"egress": rules}, {"app": ["egress"]}, {"b": "app"})
    ns, ports = sim(intent)
    assert not send(ns, ports, intent, "b", "a", proto=17, dport=5005)
    assert send(ns, ports, intent, "b", "a", proto=17, dport=5011)
    assert send(ns, ports, intent, "a", "b", proto=17, dport=5005)  # b's out rules only


def test_two_tenants_with_the_same_names_and_subnet_are_separate() -> None:
    one = world({"web-in": WEB_IN}, {"web": ["web-in"], "app": []}, {"a": "web", "b": "app"},
                tenant="t1")
    two = world({"web-in": [R(1, 1, IN, DENY)]}, {"web": ["web-in"], "app": []},
                {"a": "web", "b": "app"}, tenant="t2", vlan=True)
    both = replace(one, networks=one.networks + two.networks,
                   endpoints=one.endpoints + tuple(replace(e, mac=e.mac[:-2] + "ee")
                                                   for e in two.endpoints),
                   groups=one.groups + tuple(replace(g, id=g.id + 10) for g in two.groups),
                   policies=one.policies + two.policies)
    ns, ports = sim(both)
    t1 = [e for e in both.endpoints if e.network == "oranget1"]
    t2 = [e for e in both.endpoints if e.network == "oranget2"]
    assert send(ns, ports, both, "b", "a") is True  # t1: allowed by its rule 2
    # t2's web denies everything in; its a and b carry the same names and addresses
    a2, b2 = t2[0], t2[1]
    s_port = dict(ports[b2.host].endpoint_ports)[b2.id]
    pkt = Packet(in_port=s_port, eth_src=b2.mac, eth_dst=a2.mac, ipv4_src=b2.ip,
                 ipv4_dst=a2.ip, ip_proto=6, tcp_src=40000, tcp_dst=80)
    assert not [x for x in ns.send(b2.host, pkt).deliveries if x.endpoint]
    # and nothing crosses between the tenants (same subnet, other tenant's MAC)
    pkt = replace(pkt, eth_dst=t1[0].mac, ipv4_dst=t1[0].ip)
    assert not [x for x in ns.send(b2.host, pkt).deliveries if x.endpoint]


# --------------------------------------------------------------------------- random rule sets


def reference(intent, src, dst, proto: int, dport: int) -> bool:
    """The semantics, evaluated plainly: out rules of the source's group, in rules of the
    destination's; no matching rule allows; highest priority wins; deny wins a tie."""
    groups = {g.name: g for g in intent.groups}
    policies = {p.name: p for p in intent.policies}
    names = {6: "tcp", 17: "udp", 1: "icmp"}

    def judge(member, peer, direction) -> bool:
        g = groups.get(member.group or "")
        found = []
        for pname in (g.policies if g else ()):
            for r in policies[pname].rules:
                if r.direction != direction or (r.protocol and r.protocol != names[proto]):
                    continue
                if r.port_lo is not None and not r.port_lo <= dport <= r.port_hi:
                    continue
                if r.peer_kind == PEER_GROUP and peer.group != r.peer:
                    continue
                if r.peer_kind == PEER_NETWORK and peer.network != r.peer:
                    continue
                if r.peer_kind == PEER_IP and ipaddress.ip_address(peer.ip) not in \
                        ipaddress.ip_network(r.peer):
                    continue
                found.append(r)
        if not found:
            return True
        top = max(r.priority for r in found)
        return not any(r.action == DENY for r in found if r.priority == top)

    return judge(src, dst, OUT) and judge(dst, src, IN)


rules_st = st.lists(st.builds(
    lambda i, prio, direction, action, peer, proto, port: R(
        i, prio, direction, action, *peer(direction), proto,
        port if proto in ("tcp", "udp") and port else None,
        port + 3 if proto in ("tcp", "udp") and port else None),
    st.integers(1, 1000), st.integers(1, 4), st.sampled_from([IN, OUT]),
    st.sampled_from([ALLOW, DENY]),
    st.sampled_from([lambda d: (None, None), lambda d: (PEER_GROUP, "g1"),
                     lambda d: (PEER_GROUP, "g2"), lambda d: (PEER_NETWORK, "oranget1"),
                     lambda d: (PEER_IP, "10.1.0.0/30"), lambda d: (PEER_IP, "10.1.0.4/32")]),
    st.sampled_from([None, "tcp", "udp", "icmp"]), st.sampled_from([None, 80, 5000])),
    max_size=6, unique_by=lambda r: r.id)


@settings(max_examples=120, deadline=None)
@given(rules_st, rules_st, st.dictionaries(st.sampled_from("abc"), st.sampled_from(["g1", "g2"])))
def test_random_rule_sets_match_the_reference(r1, r2, members) -> None:
    intent = world({"p1": r1, "p2": r2}, {"g1": ["p1"], "g2": ["p2", "p1"]}, members)
    ns, ports = sim(intent)
    sport = 30000
    for src in "abc":
        for dst in "abc":
            if src == dst:
                continue
            for proto, dport in ((6, 80), (6, 82), (17, 5001), (17, 81), (1, 0)):
                sport += 1
                want = reference(intent, endpoint(intent, src), endpoint(intent, dst), proto,
                                 dport)
                assert send(ns, ports, intent, src, dst, proto, sport, dport) == want, \
                    (src, dst, proto, dport)
