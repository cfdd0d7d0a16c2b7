"""``ofctl.trace`` without a controller: routed packets (the gateway MAC, TTL), the gateway's
own echo answer, and routing that stops at the tenant boundary."""

from __future__ import annotations

from ofctl import cookies
from ofctl.router import GW_MAC
from ofctl.trace import report, start_packet
from tests.unit.test_router_sim import sim_of, world


def walk(intent, src: str, to: str, proto: str = "icmp", dport: int | None = None):
    sim, ports = sim_of(intent)
    plugged = {(h, e): p for h, hp in ports.items() for e, p in hp.endpoint_ports}
    start = start_packet({e.id: e for e in intent.endpoints},
                         {n.name: n for n in intent.networks},
                         lambda h, e: plugged.get((h, e)), src, to, proto, dport)
    names = {(h, p): f"endpoint {e}" for (h, e), p in plugged.items()}
    rep = report(sim.send(start.host, start.packet),
                 lambda c, t: cookies.describe(c, intent),
                 lambda h, p: names.get((h, p), f"port {p}"))
    return start, rep


def test_routed_to_another_network_goes_to_the_gateway_mac_and_loses_one_ttl():
    intent = world()
    start, rep = walk(intent, "oranget1-a", "10.2.0.3", "tcp", 80)  # purple d, on h2
    assert start.packet.eth_dst == GW_MAC and start.destination.startswith("routed")
    (got,) = [v for v in rep.verdicts if v.result == "delivered"]
    assert (got.endpoint, got.host) == ("purplet1-d", "h2")
    (there,) = [h for h in rep.hops if h.host == "h2"]  # the VLAN trunk reaches h3 too
    assert there.ended == f"sent to {got.port} (endpoint purplet1-d)"
    assert there.packet["nw_ttl"] == 63  # routed once, on h1
    routed = [(s.owner, s.actions) for s in rep.hops[0].steps if s.table_name == "l3"]
    assert len(routed) == 1 and routed[0][0] == "endpoint purplet1-d", routed
    d = next(e for e in intent.endpoints if e.id == "purplet1-d")
    assert "dec_ttl" in routed[0][1] and f"{d.mac}->eth_dst" in routed[0][1], routed


def test_the_gateway_answers_an_echo_on_the_sending_host():
    intent = world(routed=False)
    start, rep = walk(intent, "oranget1-a", "10.1.0.254")
    assert start.destination == "the gateway of network oranget1"
    assert [h.host for h in rep.hops] == ["h1"]
    (got,) = [v for v in rep.verdicts if v.result == "delivered"]
    assert (got.endpoint, got.host) == ("oranget1-a", "h1")  # the echo reply comes back


def test_without_a_router_a_routed_packet_is_dropped_where_it_was_sent():
    intent = world(routed=False)
    start, rep = walk(intent, "oranget1-a", "10.2.0.3")
    assert [v.result for v in rep.verdicts] == ["dropped"]
    assert rep.verdicts[0].host == "h1"
