"""``docker run`` with netplugin-docker on a two-host test bed: a real dockerd per host (Debian's
20.10), the controller, the agents, real OVS.

Intent (netdcli): tenant-one's network orange (11.1.1.0/24) with test-bed containers tb1 on
host1 and tb2 on host2 (and tb3 on host1, started by one test); tenant-two's network iso with the
same subnet and containers iso1 on host1 and iso2 on host2 at 11.1.1.200 (an address orange never
hands out: a reply to an orange container would be a leak between tenants).
Docker's network ``orange`` on both hosts stands for netplugin's orange.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.docker_state import DOCKER
from intent import keys
from tests.system.conftest import free_port
from tests.system.docker_fixtures import PLUGIN, DockerHost, busybox_tar, require_docker, wait_for
from tests.system.scenario_bed import ScenarioBed, needs_bed
from topologies import ovs
from topologies.plan import prefix_for

pytestmark = needs_bed
WORKDIR = Path("/tmp/np-docker-bed")
SUBNET = "11.1.1.0/24"
INTENT = {
    "Hosts": [{"Name": "host1", "Intf": "eth2", "VtepIp": "192.168.2.10"},
              {"Name": "host2", "Intf": "eth2", "VtepIp": "192.168.2.11"}],
    "Tenants": [
        {"Name": "tenant-one", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
         "AllocSubnetLen": 24, "Vxlans": "10001-14000",
         "Networks": [{"Name": "orange", "SubnetCIDR": SUBNET, "Endpoints": [
             {"Container": "tb1", "Host": "host1"}, {"Container": "tb2", "Host": "host2"},
             {"Container": "tb3", "Host": "host1"}]}]},
        {"Name": "tenant-two", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
         "AllocSubnetLen": 24, "Vxlans": "20001-24000",
         "Networks": [{"Name": "iso", "SubnetCIDR": SUBNET, "Endpoints": [
             {"Container": "iso1", "Host": "host1", "IpAddress": "11.1.1.201"},
             {"Container": "iso2", "Host": "host2", "IpAddress": "11.1.1.200"}]}]},
    ],
}


def network_create(d: DockerHost, name: str, network: str, tenant: str = "tenant-one",
                   *extra: str) -> subprocess.CompletedProcess[str]:
    return d.docker("network", "create", "-d", PLUGIN, "--ipam-driver", PLUGIN,
                    "--ipam-opt", f"netplugin.tenant={tenant}",
                    "--ipam-opt", f"netplugin.network={network}",
                    "-o", f"netplugin.tenant={tenant}", "-o", f"netplugin.network={network}",
                    *extra, name, check=False)


class DockerBed:
    def __init__(self) -> None:
        self.bed = ScenarioBed(WORKDIR, free_port(), free_port(), free_port())
        self.hosts: dict[str, DockerHost] = {}

    def up(self) -> None:
        self.bed.up()
        tar = busybox_tar(WORKDIR)
        wd = WORKDIR.resolve()
        for h in ("host1", "host2"):
            self.hosts[h] = DockerHost(wd, h, f"{prefix_for(wd)}-{h}", self.bed.etcd,
                                       f"unix:{ovs.host_paths(wd, h).db_sock}")
            self.hosts[h].start(tar)
            self.hosts[h].start_driver()
        self.bed.apply(INTENT)
        for h in ("host1", "host2"):
            self.bed.run(h, f"tb{h[-1]}")
        self.bed.run("host1", "iso1")
        self.bed.run("host2", "iso2")
        for d in self.hosts.values():
            res = network_create(d, "orange", "orange", "tenant-one", "--subnet", SUBNET)
            assert res.returncode == 0, res.stderr

    def down(self) -> None:
        for d in self.hosts.values():
            d.stop()
        self.bed.down()

    def endpoint(self, ep_id: str) -> dict | None:
        return self.bed.endpoint(ep_id)

    def named(self, network: str, container: str) -> dict:
        """The endpoint once the driver learnt the container's name from Docker."""
        return wait_for(lambda: self.endpoint(f"{network}-{container}"), 10,
                        f"endpoint {network}-{container}")

    def store_view(self) -> dict[str, str]:
        """Intent, allocations, oper endpoints and the Docker driver's records."""
        return {k: v for k, v in self.bed.etcd_keys().items()
                if k.startswith((keys.CONFIG, keys.ALLOC, keys.STATE, keys.OPER_ENDPOINTS,
                                 DOCKER)) and k != keys.CONFIG_REV}


@pytest.fixture(scope="module")
def dbed() -> Iterator[DockerBed]:
    require_docker()
    b = DockerBed()
    try:
        b.up()
        yield b
    finally:
        b.down()


@pytest.fixture(autouse=True)
def fresh(dbed: DockerBed) -> Iterator[None]:
    yield
    for d in dbed.hosts.values():
        if d.driver is None:
            d.start_driver()
        if d.dockerd is None:
            d.start_dockerd()
        ids = d.docker("ps", "-aq").stdout.split()
        if ids:
            d.docker("rm", "-f", *ids)
    for d in dbed.hosts.values():
        wait_for(lambda d=d: not d.ports(), 10, f"{d.host}: Docker ports gone")


def running(d: DockerHost, name: str, *opts: str) -> str:
    res = d.run(name, "orange", *opts)
    assert res.returncode == 0, f"{d.host}: docker run {name}: {res.stderr}\n{d.tail('driver')}"
    return d.ip_of(name, "orange")


def tcp_echo(client: DockerHost, name: str, ip: str, port: int, size: int = 200_000) -> int:
    """Bytes echoed back through a TCP connection from container ``name`` to ``ip:port``."""
    res = client.exec(name, "sh", "-c", f"head -c {size} /dev/zero | nc -w 3 {ip} {port} | wc -c")
    return int(res.stdout.strip() or 0)


def test_run_on_two_hosts_reaches_docker_and_testbed_containers(dbed: DockerBed):
    h1, h2 = dbed.hosts["host1"], dbed.hosts["host2"]
    ip1, ip2 = running(h1, "web1"), running(h2, "web2")
    ep1, ep2 = dbed.named("orange", "web1"), dbed.named("orange", "web2")
    assert (ep1["IpAddress"], ep1["Host"], ep1["Tenant"]) == (ip1, "host1", "tenant-one")
    assert ep2["IpAddress"] == ip2 and ep1["Oper"]["port_name"] in h1.ports()
    assert ip1 != ip2 and {ip1, ip2}.isdisjoint({dbed.bed.ip("tb1"), dbed.bed.ip("tb2")})
    mac = h1.docker("inspect", "-f", "{{.NetworkSettings.Networks.orange.MacAddress}}",
                    "web1").stdout.strip()
    assert mac == ep1["MacAddress"]
    assert "default via 11.1.1.1" in h1.exec("web1", "ip", "route").stdout
    assert h1.reaches("web1", ip2), f"web1 cannot ping web2\n{h1.tail('driver')}"
    assert h2.reaches("web2", ip1)
    h2.docker("exec", "-d", "web2", "nc", "-ll", "-p", "5000", "-e", "cat")
    wait_for(lambda: ":5000" in h2.exec("web2", "netstat", "-ltn").stdout, 5, "listener")
    assert tcp_echo(h1, "web1", ip2, 5000) == 200_000
    # a test-bed container on the other host (plugged by its agent), both ways, ping and TCP
    tb2 = dbed.bed.ip("tb2")
    assert h1.reaches("web1", tb2)
    dbed.bed.assert_reach("tb2", "web1", ip1)
    server = subprocess.Popen(
        [sys.executable, "-m", "topologies", "--workdir", str(WORKDIR), "exec", "tb2", "--",
         "socat", "TCP-LISTEN:5001,fork,reuseaddr", "EXEC:cat"], cwd=Path(__file__).parents[2],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: ":5001" in dbed.bed.sh("tb2", "ss", "-ltn").stdout, 5, "socat")
        assert tcp_echo(h1, "web1", tb2, 5001) == 200_000
    finally:
        server.terminate()
        server.wait(5)
    # the host's agent reconciles (it plugs tb3 on host1) and leaves Docker's port alone
    dbed.bed.run("host1", "tb3")  # waits until tb3 has its address: the agent has acted
    try:
        assert ep1["Oper"]["port_name"] in h1.ports() and h1.reaches("web1", ip2, timeout=3)
    finally:
        dbed.bed.stop("tb3")
    # another tenant's container, same subnet, other host: its own tenant reaches it, web1 not
    dbed.bed.assert_reach("iso1", "iso2", "11.1.1.200")
    assert h1.exec("web1", "ping", "-c2", "-W1", "11.1.1.200").returncode != 0, \
        "web1 (tenant-one) reaches iso2 (tenant-two)"


def test_ip_is_honoured_and_a_clash_fails_clearly_leaving_nothing(dbed: DockerBed):
    h1, h2 = dbed.hosts["host1"], dbed.hosts["host2"]
    assert running(h1, "fix1", "--ip", "11.1.1.77") == "11.1.1.77"
    assert dbed.named("orange", "fix1")["IpAddress"] == "11.1.1.77"
    before, ports = dbed.store_view(), h2.ports()
    res = h2.run("fix2", "orange", "--ip", "11.1.1.77")
    assert res.returncode != 0
    assert "address 11.1.1.77 is in use in network orange (endpoint orange-fix1)" in res.stderr
    res = h2.run("fix3", "orange", "--ip", dbed.bed.ip("tb2"))
    assert "is in use in network orange (endpoint orange-tb2)" in res.stderr
    res = h2.run("fix4", "orange", "--ip", "11.1.1.1")
    assert 'address 11.1.1.1 is the gateway of network "orange"' in res.stderr
    assert dbed.store_view() == before and h2.ports() == ports
    assert h1.reaches("fix1", dbed.bed.ip("tb2"))  # the holder is unharmed


def test_stop_and_rm_remove_the_port_and_release_the_address(dbed: DockerBed):
    h1 = dbed.hosts["host1"]
    before = dbed.store_view()
    ip = running(h1, "tmp1", "--ip", "11.1.1.88")
    port = dbed.named("orange", "tmp1")["Oper"]["port_name"]
    assert h1.ports() == [port]
    h1.docker("stop", "-t", "0", "tmp1")
    wait_for(lambda: h1.ports() == [] and dbed.endpoint("orange-tmp1") is None, 10, "unplugged")
    assert keys.alloc_ip("orange", ip) not in dbed.bed.etcd_keys()
    wait_for(lambda: dbed.store_view() == before, 10, "the store as before the run")
    h1.docker("start", "tmp1")
    assert dbed.named("orange", "tmp1")["IpAddress"] == ip and len(h1.ports()) == 1
    assert h1.reaches("tmp1", dbed.bed.ip("tb2"))
    h1.docker("rm", "-f", "tmp1")
    wait_for(lambda: h1.ports() == [] and dbed.store_view() == before, 10, "all gone again")
    links = [ln.split()[0] for ln in dbed.bed.sh("host1", "ip", "-br", "link").stdout.splitlines()]
    assert not [n for n in links if n.startswith(("dk", "dc"))], links


def test_driver_restart_keeps_containers_and_reconciles(dbed: DockerBed):
    h1, h2 = dbed.hosts["host1"], dbed.hosts["host2"]
    ip1, ip2 = running(h1, "r1"), running(h2, "r2")
    dbed.named("orange", "r1")
    h1.stop_driver(signal.SIGKILL)  # a crash: nothing cleaned up on the way out
    assert h1.reaches("r1", ip2), "the data path must not depend on the driver"
    # a port the driver made but forgot (its plug crashed half-way): the restart removes it
    dbed.bed.sh("host1", "ip", "link", "add", "dkdeadbeef0001", "type", "veth", "peer", "name",
                "dcdeadbeef0001", check=True)
    dbed.bed.sh("host1", "ovs-vsctl", "add-port", "br-int", "dkdeadbeef0001", "--", "set",
                "Interface", "dkdeadbeef0001", "external_ids:endpoint-id=orange-ghost",
                "external_ids:np-driver=docker", check=True)
    assert len(h1.ports()) == 2
    h1.start_driver()
    port = dbed.named("orange", "r1")["Oper"]["port_name"]
    wait_for(lambda: h1.ports() == [port], 10, "the leaked port removed")
    assert "dcdeadbeef0001" not in dbed.bed.sh("host1", "ip", "-br", "link").stdout
    assert h1.reaches("r1", ip2) and h2.reaches("r2", ip1)
    ip3 = running(h1, "r3")
    assert ip3 not in (ip1, ip2), "an address given twice"
    assert dbed.named("orange", "r3")["IpAddress"] == ip3
    assert sorted(h1.ports()) == sorted([port, dbed.named("orange", "r3")["Oper"]["port_name"]])


def test_live_restore_dockerd_restart_keeps_containers_working(dbed: DockerBed):
    h1, h2 = dbed.hosts["host1"], dbed.hosts["host2"]
    ip1, ip2 = running(h1, "lr1"), running(h2, "lr2")
    port = dbed.named("orange", "lr1")["Oper"]["port_name"]
    h1.stop_dockerd()
    assert h2.reaches("lr2", ip1), "a live-restore container lost its network"
    h1.start_dockerd()
    assert h1.docker("inspect", "-f", "{{.State.Running}}", "lr1").stdout.strip() == "true"
    assert h1.reaches("lr1", ip2) and h1.ports() == [port]
    h1.docker("stop", "-t", "0", "lr1")
    wait_for(lambda: h1.ports() == [] and dbed.endpoint("orange-lr1") is None, 10, "unplugged")


def test_network_rm_deletes_only_what_docker_created_once_no_host_uses_it(dbed: DockerBed):
    h1, h2 = dbed.hosts["host1"], dbed.hosts["host2"]
    for d in (h1, h2):
        res = network_create(d, "dnet", "dnet", "tenant-one", "-o", "netplugin.tag=10500")
        assert res.returncode == 0, res.stderr
    net = json.loads(dbed.bed.netdcli("-oper", "get", "-construct", "network", "dnet").stdout)
    assert (net["Tenant"], net["PktTagType"], net["Vni"]) == ("tenant-one", "vxlan", 10500)
    assert net["SubnetCIDR"].startswith("11.1.") and net["SubnetCIDR"] != SUBNET
    a = h1.run("d1", "dnet")
    assert a.returncode == 0, a.stderr
    b = h2.run("d2", "dnet")
    assert b.returncode == 0, b.stderr
    assert h1.reaches("d1", h2.ip_of("d2", "dnet"))
    h1.docker("rm", "-f", "d1")
    h2.docker("rm", "-f", "d2")
    h1.docker("network", "rm", "dnet")
    assert dbed.bed.netdcli("-oper", "get", "-construct", "network", "dnet",
                            check=False).returncode == 0, "host2 still uses dnet"
    h2.docker("network", "rm", "dnet")
    res = dbed.bed.netdcli("-oper", "get", "-construct", "network", "dnet", check=False)
    assert res.returncode == 3 and 'network "dnet" does not exist' in res.stderr
    # orange was made with netdcli: Docker's network rm leaves it
    tmp = network_create(h1, "orange2", "orange")
    assert tmp.returncode == 0, tmp.stderr
    h1.docker("network", "rm", "orange2")
    assert dbed.endpoint("orange-tb1") is not None


def test_parallel_runs_on_both_hosts_get_distinct_addresses(dbed: DockerBed):
    from concurrent.futures import ThreadPoolExecutor

    jobs = [(dbed.hosts[h], f"par{h[-1]}{i}") for h in ("host1", "host2") for i in range(3)]
    with ThreadPoolExecutor(len(jobs)) as pool:
        results = list(pool.map(lambda j: j[0].run(j[1], "orange"), jobs))
    assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
    ips = {name: d.ip_of(name, "orange") for d, name in jobs}
    assert len(set(ips.values())) == len(jobs), ips
    for _d, name in jobs:
        assert dbed.named("orange", name)["IpAddress"] == ips[name]
    h1 = dbed.hosts["host1"]
    assert h1.reaches("par10", ips["par22"])


def test_a_network_whose_addresses_host_local_gives_serves_docker_run(dbed: DockerBed):
    """Docker's IPAM driver uses the same backend as the agent: the real host-local plugin, a
    range and a dataDir per host; ``docker rm`` gives the address back to it."""
    import shutil

    from netaddr import IPAddress

    data = WORKDIR / "ipam-hostlocal"
    shutil.rmtree(data, ignore_errors=True)
    ranges = {"host1": ("11.1.2.10", "11.1.2.99"), "host2": ("11.1.2.100", "11.1.2.199")}
    hosts = {h: {"dataDir": str(data / h), "ranges": [[{"subnet": "11.1.2.0/24",
                                                         "rangeStart": lo, "rangeEnd": hi}]]}
             for h, (lo, hi) in ranges.items()}
    doc = {"Tenants": [{"Name": "tenant-one", "Networks": [{
        "Name": "deleg", "SubnetCIDR": "11.1.2.0/24",
        "Ipam": {"Type": "cni", "Plugin": "host-local", "Hosts": hosts}}]}]}
    dbed.bed.apply(doc, "-add-cfg")
    h1, h2 = dbed.hosts["host1"], dbed.hosts["host2"]
    try:
        for d in (h1, h2):
            res = network_create(d, "deleg", "deleg", "tenant-one", "--subnet", "11.1.2.0/24")
            assert res.returncode == 0, res.stderr
        assert h1.run("dg1", "deleg").returncode == 0, h1.tail("driver")
        assert h2.run("dg2", "deleg").returncode == 0, h2.tail("driver")
        ip1, ip2 = h1.ip_of("dg1", "deleg"), h2.ip_of("dg2", "deleg")
        for ip, h in ((ip1, "host1"), (ip2, "host2")):
            lo, hi = ranges[h]
            assert IPAddress(lo) <= IPAddress(ip) <= IPAddress(hi), (h, ip)
            assert (data / h / "deleg" / ip).exists()
        assert dbed.named("deleg", "dg1")["IpAddress"] == ip1
        assert h1.reaches("dg1", ip2), h1.tail("driver")
        h1.docker("rm", "-f", "dg1")
        wait_for(lambda: not (data / "host1" / "deleg" / ip1).exists(), 10,
                 f"host-local on host1 to release {ip1}")
        wait_for(lambda: dbed.endpoint("deleg-dg1") is None, 10, "deleg-dg1 deleted")
        assert (data / "host2" / "deleg" / ip2).exists()
        assert not dbed.bed.etcd_keys(keys.oper_ipam_prefix("host1"))
    finally:
        for d in (h1, h2):
            d.docker("rm", "-f", f"dg{d.host[-1]}", check=False)
            d.docker("network", "rm", "deleg", check=False)
        dbed.bed.netdcli("-del-cfg", dbed.bed._file(doc), check=False)
        shutil.rmtree(data, ignore_errors=True)
