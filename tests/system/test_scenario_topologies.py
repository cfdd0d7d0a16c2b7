"""The original's topology scenarios on the real test bed (etcd, controller, one agent per host).

One bed (two hosts) serves the whole module; each test loads its example as desired state
(``netdcli -cfg … -wait``), starts the containers and checks who reaches whom.  Every isolation
claim is one a leak would break: the sender addresses the other endpoint's own MAC through a
static ARP entry (``ScenarioBed.assert_isolated``), or both share a subnet in two tenants.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.system.scenario_bed import ScenarioBed, bed_fixtures, example, needs_bed

pytestmark = needs_bed


bed, fresh = bed_fixtures(Path("/tmp/np-scen1"), 27790, 27800, 27810)


def start(bed: ScenarioBed, config: str, containers: dict[str, str]) -> None:
    bed.apply(config)
    for name, host in containers.items():
        bed.run(host, name)


def test_same_network_on_one_host(bed: ScenarioBed) -> None:
    start(bed, "one_host_vlan.json", {"myContainer1": "host1", "myContainer2": "host1"})
    bed.assert_reach("myContainer1", "myContainer2")
    bed.assert_reach("myContainer2", "myContainer1")


def test_two_networks_on_one_host_are_isolated(bed: ScenarioBed) -> None:
    start(bed, "one_host_multiple_nets.json", {f"myContainer{i}": "host1" for i in range(1, 5)})
    bed.assert_reach("myContainer1", "myContainer2")  # orange
    bed.assert_reach("myContainer3", "myContainer4")  # purple
    bed.assert_isolated("myContainer1", "myContainer3")
    bed.assert_isolated("myContainer4", "myContainer2")


def test_vlan_network_across_two_hosts(bed: ScenarioBed) -> None:
    start(bed, "two_hosts_vlan.json", {"myContainer1": "host1", "myContainer2": "host2"})
    bed.assert_reach("myContainer1", "myContainer2")
    bed.assert_reach("myContainer2", "myContainer1")


def test_two_vlan_networks_across_hosts_are_isolated(bed: ScenarioBed) -> None:
    start(bed, "two_hosts_vlan.json", {"myContainer1": "host1", "myContainer2": "host2",
                                       "myContainer3": "host1", "myContainer4": "host2"})
    bed.assert_reach("myContainer1", "myContainer2")  # orange, VLAN across hosts
    bed.assert_reach("myContainer3", "myContainer4")  # purple, VLAN across hosts
    bed.assert_isolated("myContainer1", "myContainer4")
    bed.assert_isolated("myContainer3", "myContainer2")


def test_vxlan_two_vnis_across_hosts_are_isolated(bed: ScenarioBed) -> None:
    start(bed, "two_hosts_multiple_vxlan_nets.json",
          {"myContainer1": "host1", "myContainer2": "host1",
           "myContainer3": "host2", "myContainer4": "host2"})
    bed.assert_reach("myContainer1", "myContainer3")  # orange VNI
    bed.assert_reach("myContainer4", "myContainer2")  # purple VNI
    bed.assert_isolated("myContainer1", "myContainer4")
    bed.assert_isolated("myContainer3", "myContainer2")
    bed.assert_isolated("myContainer1", "myContainer2")  # same host, other VNI


def test_one_container_in_two_networks(bed: ScenarioBed) -> None:
    start(bed, "one_container_multiple_nets.json",
          {"router": "host1", "myContainer1": "host1", "myContainer2": "host2"})
    addrs = bed.addrs("router")
    assert len(addrs) == 2, f"router should have one interface per network, has {addrs}"
    bed.assert_reach("router", "myContainer1")  # orange, same host
    bed.assert_reach("router", "myContainer2")  # purple, across hosts
    bed.assert_reach("myContainer2", "router", bed.endpoint("purple-router")["IpAddress"])
    bed.assert_isolated("myContainer1", "myContainer2")


def test_two_tenants_with_overlapping_subnets(bed: ScenarioBed) -> None:
    start(bed, "two_tenants_overlapping_subnets.json",
          {"c1": "host1", "c2": "host2", "c3": "host1", "c4": "host2"})
    assert bed.ip("c1") == bed.ip("c3") == "10.1.1.10"
    bed.assert_reach("c1", "c2", "10.1.1.11")  # tenant-one
    bed.assert_reach("c3", "c4", "10.1.1.11")  # tenant-two, same addresses
    # Same IPs, so same MACs (02:00 + IP): with c2 and c3 stopped, the 10.1.1.11 and its MAC
    # that c1 can still find are c4's only (other tenant), and the other way round
    bed.stop("c2")
    bed.stop("c3")
    assert bed.blocked("c1", "10.1.1.11"), "c1 (tenant-one) reaches tenant-two's 10.1.1.11"
    assert bed.blocked("c4", "10.1.1.10"), "c4 (tenant-two) reaches tenant-one's 10.1.1.10"
    bed.assert_isolated("c1", "c4")  # even addressed to c4's MAC
    bed.assert_isolated("c4", "c1")
    bed.run("host2", "c2")
    bed.assert_reach("c1", "c2", "10.1.1.11")  # its own tenant's 10.1.1.11 is back


def test_mixed_vlan_and_vxlan_tenants(bed: ScenarioBed) -> None:
    start(bed, "mixed_vlan_vxlan_tenants.json",
          {"r1": "host1", "r2": "host2", "g1": "host1", "g2": "host2"})
    bed.assert_reach("r1", "r2")  # VLAN tenant across hosts
    bed.assert_reach("g1", "g2")  # VXLAN tenant across hosts
    bed.assert_isolated("r1", "g2")
    bed.assert_isolated("g1", "r2")
    bed.assert_isolated("r1", "g1")


def test_pod_infra_container_named_by_its_container_id(bed: ScenarioBed) -> None:
    """AttachUUID is the infra container's id, as in the original and in Kubernetes."""
    bed.run("host1", "infra-a", wait=0)  # a random 64-hex id, as Docker gives
    bed.run("host2", "infra-b", cid="b0d1" + "5e" * 30, wait=0)
    web_id, db_id = bed.container_id("infra-a"), bed.container_id("infra-b")
    assert re.fullmatch(r"[0-9a-f]{64}", web_id), web_id
    cfg = example("pod_infra_container.json")
    web, db = cfg["Tenants"][0]["Networks"][0]["Endpoints"]
    web["AttachUUID"], db["AttachUUID"] = web_id[:12], db_id  # short id and full id
    bed.apply(cfg)
    ep = bed.endpoint("orange-web")
    assert bed.wait_ip("infra-a") == ep["IpAddress"], f"orange-web not in infra-a: {ep}"
    assert bed.wait_ip("infra-b") == bed.endpoint("orange-db")["IpAddress"]
    assert bed.endpoint("orange-web")["Oper"]["netns"].endswith("-c-infra-a")
    bed.assert_reach("infra-a", "db (in infra-b)", bed.endpoint("orange-db")["IpAddress"])


def test_pod_infra_container_binding(bed: ScenarioBed) -> None:
    bed.apply("pod_infra_container.json")
    bed.run("host1", "pod1-infra")
    bed.run("host2", "pod2-infra")
    web = bed.endpoint("orange-web")
    assert web and web["Oper"]["netns"].endswith("-c-pod1-infra"), \
        f"endpoint orange-web is not in pod1-infra's netns: {web}"
    assert bed.ip("pod1-infra") == web["IpAddress"]
    bed.assert_reach("pod1-infra", "db (in pod2-infra)", bed.endpoint("orange-db")["IpAddress"])


# ---------------------------------------------------------------- datapath behaviour (one VNI)

def quad(bed: ScenarioBed) -> None:
    """One VXLAN network ``blue``: x1, x3 on host1; x2, x4 on host2."""
    eps = [{"Container": f"x{i}", "Host": "host1" if i % 2 else "host2"} for i in range(1, 5)]
    cfg = {**example("two_hosts_vxlan.json")}
    cfg["Tenants"] = [{"Name": "t-dp", "DefaultNetType": "vxlan", "SubnetPool": "11.9.0.0/16",
                       "AllocSubnetLen": 24, "Vxlans": "30000-30100",
                       "Networks": [{"Name": "blue", "Endpoints": eps}]}]
    bed.apply(cfg)
    for ep in eps:
        bed.run(ep["Host"], ep["Container"])


def test_arp_is_answered_without_flooding(bed: ScenarioBed) -> None:
    quad(bed)
    ip1, ip2 = bed.ip("x1"), bed.ip("x2")
    with bed.capture("x3", "arp") as seen3, bed.capture("x4", "arp") as seen4:
        bed.assert_reach("x1", "x2")
        bed.assert_reach("x2", "x1")
    neigh = bed.sh("x1", "ip", "neigh", "show", ip2).stdout
    assert "lladdr" in neigh, f"x1 did not resolve x2's MAC: {neigh!r}"
    leaked = [ln for ln in seen3 + seen4 if "Request" in ln and (ip1 in ln or ip2 in ln)]
    assert leaked == [], f"ARP requests between x1 and x2 reached bystanders: {leaked}"


def test_spoofed_source_is_dropped(bed: ScenarioBed) -> None:
    quad(bed)
    ip2 = bed.ip("x2")
    bed.assert_reach("x1", "x2")
    mac1 = bed.sh("x1", "cat", "/sys/class/net/eth0/address", check=True).stdout.strip()
    # a changed source IP (x2's MAC is already in x1's cache): nothing reaches x2
    bed.sh("x1", "ip", "addr", "add", "11.9.0.200/24", "dev", "eth0", check=True)
    with bed.capture("x2", "icmp") as seen:
        bed.sh("x1", "ping", "-c1", "-W1", ip2)  # the genuine source: seen by the capture
        bed.sh("x1", "ping", "-c2", "-i0.3", "-W1", "-I", "11.9.0.200", ip2)
    assert any(mac1 in ln for ln in seen), f"capture at x2 missed x1's genuine ping: {seen}"
    bed.sh("x1", "ip", "addr", "del", "11.9.0.200/24", "dev", "eth0", check=True)
    assert [ln for ln in seen if "11.9.0.200" in ln] == [], f"spoofed IP reached x2: {seen}"
    # a changed source MAC: nothing reaches x2 either
    bed.sh("x1", "ip", "link", "set", "eth0", "address", "02:00:00:00:00:99", check=True)
    with bed.capture("x2", "icmp") as seen:
        bed.sh("x1", "ping", "-c2", "-i0.3", "-W1", ip2)
    bed.sh("x1", "ip", "link", "set", "eth0", "address", mac1, check=True)
    assert [ln for ln in seen if "02:00:00:00:00:99" in ln] == [], \
        f"spoofed MAC reached x2: {seen}"
    bed.assert_reach("x1", "x2")  # back to its own addresses: works again


def test_broadcast_is_delivered_once(bed: ScenarioBed) -> None:
    quad(bed)
    bcast = bed.ip("x1").rsplit(".", 1)[0] + ".255"
    flt = f"icmp and dst host {bcast}"
    with bed.capture("x2", flt) as s2, bed.capture("x3", flt) as s3, \
            bed.capture("x4", flt) as s4:
        bed.sh("x1", "ping", "-b", "-c3", "-i0.3", "-W1", bcast)
    counts = {"x2 (host2)": len(s2), "x3 (host1)": len(s3), "x4 (host2)": len(s4)}
    assert counts == dict.fromkeys(counts, 3), \
        f"3 broadcasts from x1 should arrive exactly 3 times at each receiver: {counts}"


def test_full_size_tcp_across_vxlan(bed: ScenarioBed) -> None:
    quad(bed)
    ip1 = bed.ip("x1")
    bed.assert_reach("x2", "x1")
    res = bed.sh("x2", "ping", "-c2", "-W2", "-M", "do", "-s", "1400", ip1)
    assert res.returncode == 0, f"1400-byte ping with DF x2 -> x1 fails:\n{res.stdout}"
    server = bed.sh("x1", "iperf3", "-s", "-1", "-D", "-B", ip1)
    assert server.returncode == 0, f"iperf3 server: {server.stderr}"
    client = bed.sh("x2", "iperf3", "-c", ip1, "-t", "2", "-J", timeout=30)
    assert client.returncode == 0, f"iperf3 x2 -> x1 across VXLAN fails:\n{client.stdout[-800:]}"
    sent = json.loads(client.stdout)["end"]["sum_received"]["bytes"]
    assert sent > 1_000_000, f"iperf3 moved only {sent} bytes in 2 s"
