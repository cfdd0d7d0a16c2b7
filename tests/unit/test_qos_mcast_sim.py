"""QoS and multicast in the simulator (all hosts' switches and the underlay) and on the wire.

Multicast with snooping: a datagram reaches exactly the receivers (declared or learned), each
once, and no host without receivers gets a VXLAN copy (hypothesis over random memberships);
IGMP from a container goes to the controller through the rate meter; unregistered groups go
nowhere; link-local floods.  QoS: the sender's meter and DSCP.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st
from os_ken.ofproto import ofproto_v1_3 as ofp
from os_ken.ofproto import ofproto_v1_3_parser as parser

from intent.model import Membership
from ofctl import wire
from ofctl.diff import ADD, MODIFY, Change
from ofctl.encode import encode_changes
from ofctl.mcast import IGMP_METER, group_ids
from ofctl.model import OFPP_CONTROLLER
from ofctl.pipeline import check_state
from ofctl.sim import Packet
from ofctl.simnet import NetworkSim
from tests.unit.ofctl_fixtures import states_for
from tests.unit.qos_mcast_fixtures import (
    GROUP,
    qos_mcast_intent,
    qos_mcast_ports,
    qos_mcast_states,
)

MCAST_MAC = "01:00:5e:01:01:01"


def world(receivers=None, learned=()):
    intent = qos_mcast_intent(receivers, learned)
    ports = qos_mcast_ports(intent)
    states = states_for(intent, ports)
    for s in states.values():
        check_state(s)
    sim = NetworkSim(states, ports, {h.name: h for h in intent.hosts})
    eps = {e.id: e for e in intent.endpoints}
    where = {eid: (h, port) for h, p in ports.items() for eid, port in p.endpoint_ports}
    return sim, eps, where


def udp_from(eps, where, eid: str, dst: str = GROUP, mac: str = MCAST_MAC,
             proto: int = 17) -> tuple[str, Packet]:
    e = eps[eid]
    host, port = where[eid]
    return host, Packet(in_port=port, eth_src=e.mac, eth_dst=mac, ipv4_src=e.ip, ipv4_dst=dst,
                        ip_proto=proto, udp_src=4000, udp_dst=5000)


def delivered(trace) -> Counter:
    return Counter(d.endpoint for d in trace.deliveries if d.endpoint is not None)


containers = st.frozensets(st.sampled_from([f"c{i}" for i in range(6)]))


@settings(max_examples=60, deadline=None)
@given(containers, containers, containers, st.integers(0, 5), st.sampled_from(["orange",
                                                                               "blue"]))
def test_a_datagram_reaches_exactly_the_receivers_once(declared_o, declared_b, learned, sender,
                                                       net) -> None:
    memberships = tuple(Membership(net, GROUP, f"{net}-{c}") for c in sorted(learned))
    sim, eps, where = world({"orange": tuple(sorted(declared_o)),
                             "blue": tuple(sorted(declared_b))}, memberships)
    src = f"{net}-c{sender}"
    host, pkt = udp_from(eps, where, src)
    trace = sim.send(host, pkt)
    declared = declared_o if net == "orange" else declared_b
    want = {f"{net}-{c}" for c in declared | learned} - {src}
    assert delivered(trace) == Counter({e: 1 for e in want})
    receiving_hosts = {eps[e].host for e in want} | {host}
    touched = {h for h, _ in trace.hits}
    if net == "orange":  # VXLAN: a host without receivers gets no copy at all
        assert touched <= receiving_hosts, (touched, receiving_hosts)


def test_unregistered_groups_go_nowhere_and_link_local_floods() -> None:
    sim, eps, where = world()
    host, pkt = udp_from(eps, where, "orange-c0", dst="239.9.9.9", mac="01:00:5e:09:09:09")
    assert delivered(sim.send(host, pkt)) == Counter()
    host, pkt = udp_from(eps, where, "orange-c0", dst="224.0.0.251", mac="01:00:5e:00:00:fb")
    assert set(delivered(sim.send(host, pkt))) == {f"orange-c{i}" for i in range(1, 6)}


def test_snooping_off_floods_as_before() -> None:
    intent = qos_mcast_intent()
    intent = replace(intent, networks=tuple(replace(n, multicast=None) for n in intent.networks))
    ports = qos_mcast_ports(intent)
    sim = NetworkSim(states_for(intent, ports), ports, {h.name: h for h in intent.hosts})
    eps = {e.id: e for e in intent.endpoints}
    where = {eid: (h, port) for h, p in ports.items() for eid, port in p.endpoint_ports}
    host, pkt = udp_from(eps, where, "orange-c0")
    assert set(delivered(sim.send(host, pkt))) == {f"orange-c{i}" for i in range(1, 6)}


def test_igmp_goes_to_the_controller_through_the_meter_and_nowhere_else() -> None:
    sim, eps, where = world()
    host, pkt = udp_from(eps, where, "orange-c3", dst="224.0.0.22", mac="01:00:5e:00:00:16",
                         proto=2)
    sw = sim.switches[host]
    trace = sw.run(pkt)
    assert [e.port for e in trace.outputs] == [OFPP_CONTROLLER]
    assert IGMP_METER in trace.meters
    host, pkt = udp_from(eps, where, "orange-c3", proto=2)  # a v2 report to the group itself
    assert [e.port for e in sim.switches[host].run(pkt).outputs] == [OFPP_CONTROLLER]


def test_the_sender_passes_its_meter_and_gets_its_dscp() -> None:
    sim, eps, where = world()
    for src, dst, meter, dscp in (("orange-c0", "orange-c1", True, 46),
                                  ("orange-c1", "orange-c2", False, 0),
                                  ("blue-c1", "blue-c2", True, 10)):
        host, port = where[src]
        s, d = eps[src], eps[dst]
        pkt = Packet(in_port=port, eth_src=s.mac, eth_dst=d.mac, ipv4_src=s.ip, ipv4_dst=d.ip,
                     ip_proto=17, udp_src=1, udp_dst=2)
        switch = sim.switches[host]
        assert (port in switch.run(pkt).meters) == meter, src
        (got,) = sim.send(host, pkt).deliveries
        assert got.endpoint == dst and got.packet.ip_dscp == dscp, src


def test_group_ids_stay_put_as_other_groups_come_and_go() -> None:
    first = group_ids(3, ["239.1.1.1", "239.2.2.2"])
    more = group_ids(3, ["239.1.1.1", "239.2.2.2", "239.3.3.3", "239.4.4.4"])
    assert {a: more[a] for a in first} == first
    assert len(set(more.values())) == 4 and all(g < 0xFFFFFF00 for g in more.values())
    assert not set(group_ids(4, first)) & set(first.values())


def os_ken_bytes(change: Change) -> bytes:
    msg = encode_changes([change], parser, ofp)[0]
    msg.xid = 0
    msg.serialize()
    return bytes(msg.buf)


def test_qos_and_multicast_entries_pack_as_os_ken_does_and_parse_back() -> None:
    kinds = set()
    for state in qos_mcast_states().values():
        for f in state.flows:
            assert wire.flow_add(f) == os_ken_bytes(Change(ADD, f)), f
            kinds.update(type(i).__name__ for i in f.instructions)
        for g in state.groups:
            assert wire.group_mod(g, wire.OFPGC_MODIFY) == os_ken_bytes(Change(MODIFY, g))
        for m in state.meters:
            assert wire.meter_mod(m, wire.OFPMC_ADD) == os_ken_bytes(Change(ADD, m))
            assert wire.meter_mod(m, wire.OFPMC_MODIFY) == os_ken_bytes(Change(MODIFY, m))
        body = b"".join(_stats_entry(f) for f in state.flows)
        assert set(wire.parse_flow_stats(body)) == set(state.flows)
    assert "ApplyMeter" in kinds


def _stats_entry(f) -> bytes:
    import struct

    body = wire.flow_add(f)[48:]
    return struct.pack("!HBxIIHHHH4xQQQ", 48 + len(body), f.table, 1, 2, f.priority, 0, 0, 0,
                       f.cookie, 3, 4) + body


def _engine():
    from ofctl.engine import engine_from

    intent = qos_mcast_intent()
    ports = qos_mcast_ports(intent)
    e = engine_from(intent, ports)
    for h in ports:
        e.table(h).take()
    return e, ports


def test_a_join_changes_one_group_and_a_profile_change_only_meters() -> None:
    from intent.model import QosProfileConfig

    engine, ports = _engine()
    engine.set_learned("orange", GROUP, "orange-c3", True)  # c3 is on host0, like c0
    deltas = {h: engine.refresh(h).take() for h in ports}
    assert deltas["host0"].groups and not deltas["host0"].meters
    for h, d in deltas.items():
        assert len(d.groups) <= 1, (h, d.groups)
        assert all(k[0] == 35 for k in d.flows), (h, d.flows)  # the group's own entries
    engine.set_qos_profile("t", "gold", QosProfileConfig("gold", "t", 20000, 1000, 46))
    d = engine.refresh("host0").take()
    assert not d.flows and not d.groups and [m for m, (b, a) in d.meters.items()
                                             if b and a and a.bands[0].rate == 20000]
