"""The tour's isolation matrix plan: which pings can show a leak, and the static ARP entries."""

from __future__ import annotations

from intent.model import EndpointSpec, NetworkSpec
from topologies.matrix import Pin, plan_matrix

NETS = {"red": NetworkSpec("red", "t-vlan", "vlan", 100, "10.1.1.0/24"),
        "green": NetworkSpec("green", "t-vxlan", "vxlan", 20000, "10.1.1.0/24"),
        "blue": NetworkSpec("blue", "t-vxlan", "vxlan", 20001, "10.2.0.0/24"),
        "gold": NetworkSpec("gold", "t-gold", "vxlan", 20002, "10.3.0.0/24")}


def ep(net: str, container: str, ip: str, owner: str | None = None) -> EndpointSpec:
    mac = "02:00:" + ":".join(f"{int(x):02x}" for x in ip.split("."))
    return EndpointSpec(f"{net}-{container}", net, container, "host1", ip, mac, owner)


def test_two_tenants_in_one_subnet_every_pair_is_testable():
    eps = [ep("red", "r1", "10.1.1.11"), ep("red", "r2", "10.1.1.12"),
           ep("green", "g1", "10.1.1.21"), ep("green", "g2", "10.1.1.22")]
    plan = plan_matrix(eps, NETS)
    assert [e.container for e in plan.endpoints] == ["r1", "r2", "g1", "g2"]  # by tenant
    assert len(plan.expect) == 12 and None not in plan.expect.values()
    assert {k for k, v in plan.expect.items() if v} == {
        ("red-r1", "red-r2"), ("red-r2", "red-r1"), ("green-g1", "green-g2"),
        ("green-g2", "green-g1")}
    assert len(plan.pins) == 8 and not any(p.route for p in plan.pins)
    assert Pin("r1", "10.1.1.11", "10.1.1.22", "02:00:0a:01:01:16", False) in plan.pins
    assert Pin("g2", "10.1.1.22", "10.1.1.11", "02:00:0a:01:01:0b", False) in plan.pins


def test_other_subnet_gets_a_route_too():
    plan = plan_matrix([ep("red", "r1", "10.1.1.11"), ep("blue", "b1", "10.2.0.5")], NETS)
    assert plan.expect == {("red-r1", "blue-b1"): False, ("blue-b1", "red-r1"): False}
    assert {(p.container, p.peer_ip, p.route) for p in plan.pins} == {
        ("r1", "10.2.0.5", True), ("b1", "10.1.1.11", True)}


def test_same_addresses_in_two_tenants_cannot_be_told_apart_by_ping():
    eps = [ep("red", "c1", "10.1.1.10"), ep("red", "c2", "10.1.1.11"),
           ep("green", "c3", "10.1.1.10"), ep("green", "c4", "10.1.1.11")]
    plan = plan_matrix(eps, NETS)
    assert plan.expect[("red-c1", "red-c2")] is True
    assert plan.expect[("red-c1", "green-c4")] is None and plan.pins == ()


def test_multi_homed_container_and_clashing_peer_addresses_are_not_testable():
    eps = [ep("red", "router", "10.1.1.1"), ep("blue", "router", "10.2.0.1"),
           ep("red", "m1", "10.1.1.5"), ep("blue", "m2", "10.2.0.5")]
    plan = plan_matrix(eps, NETS)
    assert plan.expect[("red-router", "red-m1")] is True
    assert plan.expect[("red-router", "blue-m2")] is None
    assert plan.expect[("red-router", "blue-router")] is None  # the same container
    assert plan.expect[("red-m1", "blue-m2")] is False
    # x would need one neighbour entry for 10.2.0.9 pointing at two different MACs
    eps = [ep("red", "x", "10.1.1.5"), ep("blue", "y", "10.2.0.9"), ep("gold", "z", "10.2.0.9")]
    plan = plan_matrix(eps, NETS)
    assert plan.expect[("red-x", "blue-y")] is None and plan.expect[("red-x", "gold-z")] is None
    assert plan.expect[("blue-y", "gold-z")] is None and plan.pins == ()


def test_attach_uuid_rows_ping_from_the_infra_container():
    plan = plan_matrix([ep("red", "web", "10.1.1.5", "pod1"), ep("green", "db", "10.1.1.6",
                                                                   "pod2")], NETS)
    assert {p.container for p in plan.pins} == {"pod1", "pod2"}


def test_networks_on_one_router_reach_each_other_and_are_not_pinned():
    from intent.model import RouterSpec

    nets = {**NETS, "blue": NetworkSpec("blue", "t-vlan", "vxlan", 20001, "10.2.0.0/24")}
    eps = [ep("red", "r1", "10.1.1.11"), ep("blue", "b1", "10.2.0.5"),
           ep("green", "g1", "10.1.1.21"), ep("green", "g2", "10.2.0.5")]
    router = RouterSpec("t-vlan", "rt", 1, ("red", "blue"))
    plan = plan_matrix(eps, nets, [router])
    assert plan.expect[("red-r1", "blue-b1")] is True and plan.expect[("blue-b1", "red-r1")]
    assert not any({p.container, p.peer_ip} == {"r1", "10.2.0.5"} for p in plan.pins)
    # g2 has b1's address: r1 reaches it through its router, so a pin would break that
    assert plan.expect[("red-r1", "green-g2")] is None
    assert plan.expect[("blue-b1", "green-g1")] is None  # g1's own network has b1's address
    assert plan.expect[("red-r1", "green-g1")] is False  # other tenant: pinned, isolated
    assert Pin("r1", "10.1.1.11", "10.1.1.21", "02:00:0a:01:01:15", False) in plan.pins
    # the same networks without the router: isolated, and pinned
    bare = plan_matrix(eps[:2], nets)
    assert bare.expect[("red-r1", "blue-b1")] is False and len(bare.pins) == 2
    # a router of another tenant with the same name routes nothing here
    other = plan_matrix(eps[:2], nets, [RouterSpec("t-vxlan", "rt", 2, ("green",))])
    assert other.expect[("red-r1", "blue-b1")] is False


def test_a_physical_machine_reaches_its_vlan_network_only_never_routed():
    from intent.model import RouterSpec

    nets = {**NETS, "blue": NetworkSpec("blue", "t-vlan", "vxlan", 20001, "10.2.0.0/24")}
    phys = ep("red", "phys1", "10.1.1.200")
    eps = [ep("red", "r1", "10.1.1.11"), ep("blue", "b1", "10.2.0.5"),
           ep("green", "g1", "10.1.1.21"), phys]
    plan = plan_matrix(eps, nets, [RouterSpec("t-vlan", "rt", 1, ("red", "blue"))],
                       physical=[phys.id])
    assert plan.expect[(phys.id, "red-r1")] is True and plan.expect[("red-r1", phys.id)]
    assert plan.expect[(phys.id, "blue-b1")] is False  # a router routes to endpoints only
    assert plan.expect[("blue-b1", phys.id)] is False
    assert plan.expect[(phys.id, "green-g1")] is False
    assert Pin("phys1", "10.1.1.200", "10.2.0.5", "02:00:0a:02:00:05", True) in plan.pins
    assert Pin("g1", "10.1.1.21", "10.1.1.200", phys.mac, False) in plan.pins
