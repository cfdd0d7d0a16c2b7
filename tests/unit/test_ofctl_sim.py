"""Isolation and reachability proved on the packet simulator."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.write import apply_bindings, apply_config
from intent.loader import load_bindings, load_config
from intent.model import VLAN, VXLAN, HostSpec
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore
from ofctl.model import ApplyActions, Flow, Output, SwitchState, match
from ofctl.sim import AmbiguousMatch, Packet, Switch
from tests.examples import complete_examples
from tests.unit.ofctl_fixtures import (
    check_isolation,
    endpoint_ports,
    ep,
    host,
    ipv4,
    net,
    network_sim,
    resolved,
    sample_intent,
)

EXAMPLES = complete_examples()


def test_sample_intent_isolation_and_reachability():
    assert check_isolation(sample_intent()) > 0


def test_unicast_crosses_vxlan_with_vni_and_vtep():
    intent = sample_intent()
    sim, ports = network_sim(intent)
    eps = {e.id: e for e in intent.endpoints}
    a, b = eps["orange-c1"], eps["orange-c4"]
    h, p = endpoint_ports(ports)[a.id]
    t = sim.send(h, ipv4(a, p, b.mac, b.ip))
    assert [(d.host, d.endpoint) for d in t.deliveries] == [("h3", "orange-c4")]
    tunnel_hits = [f for hh, f in t.hits if hh == "h3" and f.table == 0]
    assert tunnel_hits[0].match == match(in_port=1, tunnel_id=5001, tun_ipv4_src="192.168.0.1")


def test_vlan_network_uses_uplink_never_a_tunnel():
    intent = sample_intent()
    sim, ports = network_sim(intent)
    eps = {e.id: e for e in intent.endpoints}
    a = eps["purple-c1"]
    h, p = endpoint_ports(ports)[a.id]
    out = sim.switches[h].run(ipv4(a, p, "ff:ff:ff:ff:ff:ff", "255.255.255.255")).outputs
    remote = [o for o in out if o.port not in (13,)]
    assert [(o.port, o.packet.vlan_vid, o.packet.tunnel_id) for o in remote] == [
        (2, 0x1000 | 100, None)]


def test_vxlan_network_never_goes_onto_the_uplink():
    intent = sample_intent()
    sim, ports = network_sim(intent)
    for eid, (h, p) in endpoint_ports(ports).items():
        a = next(e for e in intent.endpoints if e.id == eid)
        if a.network not in ("orange", "blue"):
            continue
        outs = sim.switches[h].run(ipv4(a, p, "ff:ff:ff:ff:ff:ff", "255.255.255.255")).outputs
        assert all(o.port != 2 for o in outs)
        assert {o.packet.tunnel_id for o in outs if o.port == 1} <= {5001, 6001}


def test_unknown_unicast_is_dropped():
    intent = sample_intent()
    sim, ports = network_sim(intent)
    a = intent.endpoints[0]
    h, p = endpoint_ports(ports)[a.id]
    assert sim.send(h, ipv4(a, p, "02:de:ad:be:ef:00", "10.1.0.77")).deliveries == []


def test_unbound_endpoint_gets_no_port_but_its_ip_is_not_answered_by_others():
    intent = sample_intent()
    sim, ports = network_sim(intent)
    a = intent.endpoints[0]
    h, p = endpoint_ports(ports)[a.id]
    from tests.unit.ofctl_fixtures import arp_request
    assert sim.send(h, arp_request(a, p, "10.1.0.9")).deliveries == []


def test_ambiguous_entries_are_an_error():
    flows = frozenset({
        Flow(0, 10, match(in_port=1), (ApplyActions((Output(2),)),)),
        Flow(0, 10, match(eth_type=0x0800), (ApplyActions((Output(3),)),)),
    })
    sw = Switch(SwitchState(flows))
    assert sw.run(Packet(in_port=1, eth_type=0x0806)).outputs[0].port == 2
    with pytest.raises(AmbiguousMatch):
        sw.run(Packet(in_port=1, eth_type=0x0800))


# --------------------------------------------------------------------------- examples/


def _load_example(path: Path):
    """Load, allocate and resolve an example through the store, as the controller would."""
    store = MemoryStore()
    apply_config(store, load_config(path))
    bindings = path.with_name(path.name.replace(".json", ".bindings.json"))
    if bindings.exists():
        apply_bindings(store, load_bindings(bindings))
    got = read_resolved(store)
    # agents register VTEP IPs and uplinks; fill in what the file leaves to them
    hosts = [HostSpec(h.name, h.vtep_ip or f"192.168.9.{i + 1}", h.uplink or "uplink")
             for i, h in enumerate(got.hosts)]
    return resolved(hosts, got.networks, got.endpoints)


def test_the_examples_are_there():
    assert len(EXAMPLES) >= 10, EXAMPLES  # an empty glob must not pass as "no example failed"


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_isolation_and_reachability(path):
    intent = _load_example(path)
    assert intent.endpoints
    check_isolation(intent)


# --------------------------------------------------------------------------- properties


@st.composite
def clusters(draw):
    n_hosts = draw(st.integers(1, 4))
    hosts = [host(f"h{i}", i + 1) for i in range(n_hosts)]
    n_nets = draw(st.integers(1, 4))
    nets = []
    for k in range(n_nets):
        kind = draw(st.sampled_from([VLAN, VXLAN]))
        nets.append(net(f"n{k}", draw(st.sampled_from(["t1", "t2", "t3"])), kind,
                        100 + k, "10.0.0.0/24"))  # every subnet overlaps
    eps = []
    for k in range(n_nets):
        n_eps = draw(st.integers(0, 3))
        ips = draw(st.lists(st.integers(1, 6), min_size=n_eps, max_size=n_eps, unique=True))
        for j, ipn in enumerate(ips):
            h = draw(st.sampled_from(hosts)).name
            eps.append(ep(f"n{k}", f"c{j}", h, f"10.0.0.{ipn}"))
    return resolved(hosts, nets, eps)


@settings(max_examples=40, deadline=None)
@given(clusters())
def test_random_clusters_keep_the_invariants(intent):
    check_isolation(intent)
