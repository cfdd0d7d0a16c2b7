"""Addresses from the real ``host-local`` CNI IPAM plugin on a two-host test bed: each host has
its own range of one subnet and its own ``dataDir``; containers plugged with the addresses the
plugin gave reach each other across hosts, an address another endpoint holds is refused (and
given back to the plugin), and unplugging gives the address back."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from netaddr import IPAddress

from intent import keys
from intent.logfmt import parse
from tests.etcd_server import port_is_free
from tests.system.conftest import free_port
from tests.system.scenario_bed import ScenarioBed, example, needs_bed
from tests.system.waiting import wait_for

pytestmark = needs_bed
WORKDIR = Path("/tmp/ipam15-bed")
DATA = Path("/tmp/ipam15-ipamdata")  # the hosts' host-local dataDirs (one per host)
PLUGIN = Path("/usr/lib/cni/host-local")
RANGES = {"host1": ("11.7.0.10", "11.7.0.99"), "host2": ("11.7.0.100", "11.7.0.199")}


def _ports() -> list[int]:
    while True:
        etcd = free_port()
        if port_is_free(etcd + 1):  # the bed's etcd takes etcd+1 for its peers
            return [etcd, free_port(), free_port()]


@pytest.fixture(scope="module")
def bed() -> Iterator[ScenarioBed]:
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} is missing: apt-get install containernetworking-plugins "
                    f"(`make setup` does it)")
    shutil.rmtree(DATA, ignore_errors=True)
    b = ScenarioBed(WORKDIR, *_ports())
    b.up()
    try:
        yield b
    finally:
        b.down()
        shutil.rmtree(DATA, ignore_errors=True)


@pytest.fixture(autouse=True)
def fresh(bed: ScenarioBed) -> Iterator[None]:
    yield
    bed.stop_all()


def network(name: str, endpoints: list[dict]) -> dict:
    hosts = {h: {"dataDir": str(DATA / h), "ranges": [[{
        "subnet": "11.7.0.0/24", "rangeStart": lo, "rangeEnd": hi}]]}
        for h, (lo, hi) in RANGES.items()}
    return {"Name": name, "SubnetCIDR": "11.7.0.0/24", "Reserved": "11.7.0.200-11.7.0.254",
            "Ipam": {"Type": "cni", "Plugin": "host-local", "Hosts": hosts},
            "Endpoints": endpoints}


def intent(*networks: dict) -> dict:
    cfg = example("two_hosts_vxlan.json")
    cfg["Tenants"][0]["Networks"] = list(networks)
    return cfg


def held(host: str, net: str) -> set[str]:
    """Addresses host-local holds for ``net`` in ``host``'s dataDir."""
    d = DATA / host / net
    return {p.name for p in d.iterdir() if p.name.count(".") == 3} if d.exists() else set()


def in_range(ip: str, host: str) -> bool:
    lo, hi = RANGES[host]
    return IPAddress(lo) <= IPAddress(ip) <= IPAddress(hi)


def test_delegated_addresses_reach_across_hosts_and_unplug_gives_them_back(
        bed: ScenarioBed) -> None:
    bed.apply(intent(network("deleg", [{"Container": "d1", "Host": "host1"},
                                       {"Container": "d2", "Host": "host2"}])))
    assert bed.endpoint("deleg-d1")["IpAddress"] == ""  # not plugged: no address yet
    bed.run("host1", "d1")
    bed.run("host2", "d2")
    ip1, ip2 = bed.wait_ip("d1"), bed.wait_ip("d2")
    assert in_range(ip1, "host1") and in_range(ip2, "host2"), (ip1, ip2)
    assert held("host1", "deleg") == {ip1} and held("host2", "deleg") == {ip2}
    # the controller programs the recorded addresses: ARP answers, port security, L2 over VXLAN
    assert bed.endpoint("deleg-d1")["IpAddress"] == ip1
    assert bed.endpoint("deleg-d2")["IpAddress"] == ip2
    bed.assert_reach("d1", "d2", ip2)
    bed.assert_reach("d2", "d1", ip1)
    # unplug: the address goes back to the plugin and the endpoint waits for one again
    bed.stop("d1")
    wait_for(lambda: not held("host1", "deleg"), 20, "host-local on host1 to release " + ip1)
    wait_for(lambda: bed.endpoint("deleg-d1")["IpAddress"] == "", 20, "deleg-d1 to be pending")
    assert not [k for k in bed.etcd_keys(keys.oper_ipam_prefix("host1"))]
    assert held("host2", "deleg") == {ip2}  # the other host's lease is untouched
    # plugged again: a fresh address from host1's range, reachable again
    bed.run("host1", "d1")
    ip1b = bed.wait_ip("d1")
    assert in_range(ip1b, "host1") and held("host1", "deleg") == {ip1b}
    bed.assert_reach("d2", "d1", ip1b)


def test_an_address_another_endpoint_holds_is_refused_and_given_back(bed: ScenarioBed) -> None:
    first = RANGES["host1"][0]  # what host-local hands out first on a fresh dataDir
    bed.apply(intent(network("clash", [{"Container": "k1", "Host": "host1"},
                                       {"Container": "old", "IpAddress": first}])))
    bed.run("host1", "k1")
    ip = bed.wait_ip("k1")
    assert ip != first and in_range(ip, "host1")  # the refused address was not plugged ...
    assert held("host1", "clash") == {ip}  # ... and host-local no longer holds it
    lines = (WORKDIR / "logs" / "agent-host1.log").read_text().splitlines()
    problems = [f.get("error") for f in map(parse, lines) if f.get("event") == "problem"]
    assert (f'endpoint clash-k1: not plugged: endpoint "clash-k1": address {first} from IPAM '
            f'plugin "host-local" is used by endpoint "clash-old" in network "clash"') in problems
    assert bed.endpoint("clash-old")["IpAddress"] == first
    leases = bed.etcd_keys(keys.oper_ipam_prefix("host1"))
    assert [json.loads(v)["ip"] for v in leases.values()] == [ip]
