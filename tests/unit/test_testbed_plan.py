"""The test bed's plan (pure: no root, no daemons): names, VTEP addresses, hosts from configs."""

from __future__ import annotations

import pytest

from topologies.plan import PlanError, hosts_from_config, make_plan, prefix_for


def test_prefix_is_stable_per_workdir_and_differs_between_workdirs() -> None:
    assert prefix_for("/tmp/np-bed1") == prefix_for("/tmp/np-bed1/")
    assert prefix_for("/tmp/np-bed1") != prefix_for("/tmp/np-bed2")
    plan = make_plan("/tmp/np-bed1", [{"name": "h1"}])
    assert plan.hosts[0].netns == prefix_for("/tmp/np-bed1") + "-h1"


def test_hosts_from_config_keys_case_insensitive_else_from_endpoints() -> None:
    assert hosts_from_config({"hosts": [{"NAME": "a", "intf": "eth9", "VTEPIP": "10.0.0.5"}]}) \
        == [{"name": "a", "intf": "eth9", "vtep_ip": "10.0.0.5"}]
    cfg = {"Tenants": [{"Networks": [{"Endpoints": [{"Container": "c1", "Host": "h2"},
                                                     {"Container": "c2", "Host": "h1"},
                                                     {"Container": "c3", "Host": "h2"},
                                                     {"Container": "c4"}]}]}]}
    assert [h["name"] for h in hosts_from_config(cfg)] == ["h2", "h1"]


def test_vtep_ips_kept_or_allocated_on_one_segment() -> None:
    plan = make_plan("/tmp/x", [{"name": "a", "vtep_ip": "192.168.2.10"}, {"name": "b"},
                                {"name": "c", "vtep_ip": "192.168.2.11"}])
    assert [h.vtep_ip for h in plan.hosts] == ["192.168.2.10", "192.168.2.12", "192.168.2.11"]
    wide = make_plan("/tmp/x", [{"name": "a", "vtep_ip": "10.0.1.1"},
                                {"name": "b", "vtep_ip": "10.0.2.1"}])
    assert {h.vtep_prefixlen for h in wide.hosts} == {22}
    assert [h.vtep_ip for h in make_plan("/tmp/x", [{"name": "a"}, {"name": "b"}]).hosts] == [
        "172.30.0.10", "172.30.0.11"]


@pytest.mark.parametrize("hosts, message", [
    ([], "no hosts"),
    ([{"name": "a b"}], "bad host name"),
    ([{"name": "a", "intf": "ul0"}], "bad uplink"),
    ([{"name": "a", "vtep_ip": "1.2.3.4"}, {"name": "b", "vtep_ip": "1.2.3.4"}], "same VtepIp"),
    ([{"name": "a", "vtep_ip": "nope"}], "bad VtepIp"),
])
def test_bad_input_is_rejected_with_a_reason(hosts, message) -> None:
    with pytest.raises(PlanError, match=message):
        make_plan("/tmp/x", hosts)


def test_cluster_and_tls_plans_survive_the_record_and_refuse_port_clashes() -> None:
    from topologies.plan import Ports, plan_from_dict, plan_to_dict

    ports = Ports(etcd=30000, etcd_peer=30001, ofp=30002, rest=30003,
                  etcd_members=((30010, 30011), (30012, 30013)))
    plan = make_plan("/tmp/x", [{"name": "a"}], ports, tls=True)
    assert plan.etcd_members == 3 and plan.ports.etcd_clients == [30000, 30010, 30012]
    assert plan.scheme == "https"
    assert plan_from_dict(plan_to_dict(plan)) == plan
    old = plan_to_dict(make_plan("/tmp/x", [{"name": "a"}]))  # a record from before clusters
    del old["tls"], old["ports"]["etcd_members"]
    assert plan_from_dict(old).etcd_members == 1 and not plan_from_dict(old).tls
    with pytest.raises(PlanError, match="ports collide"):
        make_plan("/tmp/x", [{"name": "a"}], Ports(30000, 30001, 30002, 30003, ((30002, 30004),)))


def test_several_controllers_each_get_ports_a_name_and_a_relay_every_agent_uses() -> None:
    from pathlib import Path

    from topologies.bed import agent_command, controller_command, rest_url
    from topologies.plan import Ports, plan_from_dict, plan_to_dict

    ports = Ports(etcd=30000, etcd_peer=30001, ofp=30002, rest=30003,
                  controllers=((30010, 30011), (30020, 30021)))
    plan = make_plan("/tmp/x", [{"name": "a"}, {"name": "b"}], ports)
    assert plan_from_dict(plan_to_dict(plan)) == plan
    assert plan.controllers == ["controller", "controller2", "controller3"]
    assert [rest_url(plan, i) for i in range(3)] == [
        "http://127.0.0.1:30003", "http://127.0.0.1:30011", "http://127.0.0.1:30021"]
    cmd = controller_command(plan, index=2)
    assert cmd[cmd.index("--ofp-tcp-listen-port") + 1] == "30020"
    assert cmd[cmd.index("--rest-port") + 1] == "30021"
    assert cmd[cmd.index("--controller-name") + 1] == "controller3"
    assert cmd[cmd.index("--master-lease-ttl") + 1] == "3"  # several: a short lease
    assert "--master-lease-ttl" not in controller_command(
        make_plan("/tmp/x", [{"name": "a"}]))  # one: the controller's own default
    agent = agent_command(Path("/tmp/x"), plan, plan.hosts[0], controller=True)
    targets = agent[agent.index("--controller") + 1].split(",")
    assert [t.rsplit("/", 1)[1] for t in targets] == [
        "controller.sock", "controller2.sock", "controller3.sock"]
    with pytest.raises(PlanError, match="collide"):
        make_plan("/tmp/x", [{"name": "a"}], Ports(etcd=1, etcd_peer=2, ofp=3, rest=4,
                                                   controllers=((5, 3),)))


def test_external_machine_legs_are_named_in_order_and_forward_with_two() -> None:
    from topologies.plan import ExternalLeg, plan_external

    one = plan_external("nbab12", "phys1", [100], ["10.1.0.100/24"], "10.1.0.1")
    assert one.netns == "nbab12-x-phys1" and one.gateway == "10.1.0.1"
    assert one.legs == (ExternalLeg("eth0", 100, "10.1.0.100/24", one.legs[0].mac),)
    assert not one.forwarding
    router = plan_external("nbab12", "r", [300, 400], ["10.9.0.1/24", "10.20.0.1/24"])
    assert [(leg.ifname, leg.vlan) for leg in router.legs] == [("eth0", 300), ("eth1", 400)]
    macs = [leg.mac for leg in router.legs]
    assert len(set(macs)) == 2 and all(m.startswith("02:") and len(m) == 17 for m in macs)
    # started again, the machine keeps its MACs; another bed's machine of that name does not
    assert [leg.mac for leg in plan_external("nbab12", "r", [300, 400], ["10.9.0.1/24",
            "10.20.0.1/24"]).legs] == macs
    assert plan_external("nbcd34", "r", [300], ["10.9.0.1/24"]).legs[0].mac != macs[0]
    assert router.forwarding and router.gateway is None


@pytest.mark.parametrize("vlans, cidrs, gateway, message", [
    ([], [], None, "in pairs"),
    ([100, 200], ["10.1.0.5/24"], None, r"got 2 --vlan, 1 --ip"),
    ([0], ["10.1.0.5/24"], None, "--vlan 0: a VLAN id is 1-4094"),
    ([4095], ["10.1.0.5/24"], None, "--vlan 4095"),
    ([100, 100], ["10.1.0.5/24", "10.2.0.5/24"], None, "--vlan 100 given twice"),
    ([100], ["10.1.0.5"], None, "prefix length"),
    ([100], ["10.1.0.300/24"], None, "not an IPv4 address"),
    ([100], ["10.1.0.0/24"], None, "network or broadcast"),
    ([100], ["10.1.0.255/24"], None, "network or broadcast"),
    ([100, 200], ["10.1.0.5/24", "10.1.0.6/16"], None, "overlaps --ip 10.1.0.5/24"),
    ([100], ["10.1.0.5/24"], "10.2.0.1", "--gateway 10.2.0.1: outside every --ip subnet"),
    ([100], ["10.1.0.5/24"], "10.1.0.5", "the machine's own address"),
    ([100], ["10.1.0.5/24"], "gw", "not an IPv4 address"),
])
def test_external_machine_bad_arguments_name_the_flag(vlans, cidrs, gateway, message) -> None:
    from topologies.plan import plan_external

    with pytest.raises(PlanError, match=message):
        plan_external("nbab12", "phys1", vlans, cidrs, gateway)


def test_external_machine_name_is_checked() -> None:
    from topologies.plan import plan_external

    with pytest.raises(PlanError, match="bad machine name"):
        plan_external("nbab12", "a b", [100], ["10.1.0.5/24"])
