"""Hand-off to the physical network and the distributed router on the real test bed (two hosts,
real OVS, etcd, controller, agents; physical machines from ``run-external``).

Tenant t1: orange (VXLAN 10.1.0.0/24: a on host1, b on host2), purple (VLAN 100, 10.2.0.0/24: c on
host1, d on host2), ext (VLAN 300, its gateway 10.9.0.1 a physical router) and router r1 over
orange and purple with ExternalIp 10.9.0.2 on host2.  Tenant t2 is its twin: the same subnets,
addresses, router and external set-up (orange2 VXLAN, purple2 VLAN 101: e, f, g, h; ext2 VLAN
301, where no physical router answers).  Every isolation claim
is one a leak would show: pinned neighbour MACs in one subnet, or identical addresses whose
frames are watched at the twin.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import free_port
from tests.system.scenario_bed import ROOT, ScenarioBed, needs_bed

pytestmark = needs_bed
WORKDIR = Path(os.environ.get("NP_HANDOFF_BED", "/tmp/np-handoff"))
HOSTS = [{"Name": "host1", "Intf": "eth2", "VtepIp": "192.168.2.10"},
         {"Name": "host2", "Intf": "eth2", "VtepIp": "192.168.2.11"}]
CONTAINERS = {"a": "host1", "b": "host2", "c": "host1", "d": "host2",
              "e": "host1", "f": "host2", "g": "host1", "h": "host2"}
IP = {"a": "10.1.0.2", "b": "10.1.0.3", "c": "10.2.0.2", "d": "10.2.0.3"}
IP.update({twin: IP[x] for twin, x in zip("efgh", "abcd", strict=True)})
GATEWAY = {"orange": "10.1.0.1", "purple": "10.2.0.1"}
NET = {"a": "orange", "b": "orange", "c": "purple", "d": "purple"}


def tenant(t: str, suffix: str, vxlan: int, vlan: int, ext_vlan: int, names: str,
           routed: bool) -> dict:
    o, p = f"orange{suffix}", f"purple{suffix}"
    w, x, y, z = names
    nets = [{"Name": o, "PktTagType": "vxlan", "PktTag": vxlan, "SubnetCIDR": "10.1.0.0/24",
             "Endpoints": [{"Container": w, "Host": "host1"}, {"Container": x, "Host": "host2"}]},
            {"Name": p, "PktTagType": "vlan", "PktTag": vlan, "SubnetCIDR": "10.2.0.0/24",
             "Endpoints": [{"Container": y, "Host": "host1"}, {"Container": z, "Host": "host2"}]}]
    nets.append({"Name": f"ext{suffix}", "PktTagType": "vlan", "PktTag": ext_vlan,
                 "SubnetCIDR": "10.9.0.0/24", "DefaultGw": "10.9.0.1"})
    router = {"Name": "r1", "Networks": [o, p], "ExternalNetwork": f"ext{suffix}",
              "ExternalIp": "10.9.0.2", "GatewayHost": "host2"}
    return {"Name": t, "Vlans": f"{vlan},{ext_vlan}", "Vxlans": str(vxlan), "Networks": nets,
            "Routers": [router] if routed else []}


def intent(routed: bool = True) -> dict:
    return {"Hosts": HOSTS, "Tenants": [tenant("t1", "", 5001, 100, 300, "abcd", routed),
                                        tenant("t2", "2", 5002, 101, 301, "efgh", routed)]}


@pytest.fixture(scope="module")
def bed() -> Iterator[ScenarioBed]:
    b = ScenarioBed(WORKDIR, free_port(), free_port(), free_port())
    b.up()
    try:
        b.apply(intent())
        for name, host in CONTAINERS.items():
            b.run(host, name)
        got = {n: b.wait_ip(n) for n in CONTAINERS}
        assert got == IP, f"addresses: {got}"
        yield b
    finally:
        b.down()


@pytest.fixture
def machines(bed: ScenarioBed) -> Iterator[list[str]]:
    """Names of physical machines a test starts (``bed.cli("run-external", ...)``): stopped
    after it."""
    started: list[str] = []
    yield started
    for name in started:
        bed.cli("stop", name, check=False)


def external(bed: ScenarioBed, started: list[str], name: str, *args: str) -> None:
    bed.cli("run-external", name, *args)
    started.append(name)


def ping_ttl(bed: ScenarioBed, src: str, ip: str, timeout: float = 10) -> int:
    """The TTL of the echo reply ``src`` gets from ``ip`` (retried until one comes)."""
    deadline = time.monotonic() + timeout
    while True:
        res = bed.sh(src, "ping", "-c1", "-W1", ip)
        m = re.search(r"ttl=(\d+)", res.stdout)
        if m:
            return int(m.group(1))
        assert time.monotonic() < deadline, f"{src} gets no reply from {ip}: {res.stdout}"


class Servers:
    """TCP echo servers (tests/system/nettools.py) inside containers or machines."""

    def __init__(self, bed: ScenarioBed) -> None:
        self.bed, self.procs = bed, []

    def serve(self, name: str, port: int) -> None:
        self.procs.append(subprocess.Popen(
            [sys.executable, "-m", "topologies", "--workdir", str(self.bed.workdir), "exec", name,
             "--", sys.executable, "-m", "tests.system.nettools", "serve", "tcp", str(port)],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


def tcp_echo(bed: ScenarioBed, src: str, ip: str, port: int, timeout: float = 8) -> bool:
    """True once ``src`` connects to ``ip:port`` and its line comes back (retried)."""
    deadline = time.monotonic() + timeout
    while True:
        if bed.sh(src, sys.executable, "-m", "tests.system.nettools", "try", "tcp", ip,
                  str(port)).returncode == 0:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.3)


# ------------------------------------------------------------------ VLAN hand-off


def test_physical_host_on_the_vlan_and_containers_on_both_hosts_ping_each_other(
        bed: ScenarioBed, machines: list[str]) -> None:
    external(bed, machines, "phys1", "--vlan", "100", "--ip", "10.2.0.100/24")
    for c in ("c", "d"):  # purple: c on host1, d on host2
        bed.assert_reach("phys1", c, IP[c])
        bed.assert_reach(c, "phys1", "10.2.0.100")


def test_arp_from_the_physical_side_is_answered_once_by_the_endpoints_own_host(
        bed: ScenarioBed, machines: list[str]) -> None:
    external(bed, machines, "phys1", "--vlan", "100", "--ip", "10.2.0.100/24")
    phys_mac = bed.mac("phys1")
    for c, owner, other in (("d", "h1vl", "h0vl"), ("c", "h0vl", "h1vl")):
        bed.sh("phys1", "ip", "neigh", "flush", "dev", "eth0", check=True)
        # replies to phys1 (not the gratuitous ones a freshly plugged container sends)
        reply = f"arp and arp[6:2] = 2 and arp[14:4] = 0x{ip_hex(IP[c])} and ether dst {phys_mac}"
        with bed.capture("phys1", reply) as got, \
                bed.capture("underlay", reply, owner, inbound=True) as from_owner, \
                bed.capture("underlay", reply, other, inbound=True) as from_other:
            res = bed.sh("phys1", "ping", "-c1", "-W2", IP[c])
        assert res.returncode == 0, f"phys1 -> {c}: {res.stdout}"
        mac = bed.mac(c)
        assert len(got) == 1 and mac in got[0], f"ARP replies for {c} at phys1: {got}"
        assert len(from_owner) == 1, f"{c}'s host did not answer on the trunk: {from_owner}"
        assert from_other == [], f"the other host answered ARP for {c}: {from_other}"
        neigh = bed.sh("phys1", "ip", "neigh", "show", IP[c], check=True).stdout
        assert mac in neigh, neigh


def test_arp_between_endpoints_stays_off_the_trunk_and_broadcast_reaches_it_once(
        bed: ScenarioBed, machines: list[str]) -> None:
    external(bed, machines, "phys1", "--vlan", "100", "--ip", "10.2.0.100/24")
    c_mac = bed.mac("c")
    bed.sh("c", "ip", "neigh", "flush", "dev", "eth0", check=True)
    with bed.capture("underlay", f"arp and arp[6:2] = 1 and ether src {c_mac}", "vl") as trunk:
        assert bed.reaches("c", IP["d"])  # c asks for d: answered on host1
    assert trunk == [], f"an ARP request for an endpoint reached the trunk: {trunk}"
    bcast = f"icmp and ether dst ff:ff:ff:ff:ff:ff and ether src {c_mac}"
    with bed.capture("phys1", bcast) as seen, bed.capture("d", bcast) as at_d:
        bed.sh("c", "ping", "-b", "-c1", "-W1", "10.2.0.255")
    assert len(at_d) == 1, f"the broadcast did not reach d on host2 once: {at_d}"
    assert len(seen) == 1, f"the physical segment got the broadcast {len(seen)} times: {seen}"


def test_a_container_plugged_again_announces_itself_to_its_vlan(bed: ScenarioBed,
                                                                machines: list[str]) -> None:
    external(bed, machines, "phys1", "--vlan", "100", "--ip", "10.2.0.100/24")
    external(bed, machines, "phys2", "--vlan", "101", "--ip", "10.2.0.101/24")
    garp = f"arp and arp[6:2] = 2 and arp[14:4] = 0x{ip_hex(IP['d'])} and ether broadcast"
    bed.stop("d")
    with bed.capture("phys1", garp) as seen, bed.capture("phys2", garp) as elsewhere, \
            bed.capture("underlay", garp, "h0vl", inbound=True) as from_host1:
        bed.run("host2", "d")
        time.sleep(3.5)  # the agent announces 0.3, 1 and 3 s after the plug
    assert seen and all(bed.mac("d") in ln for ln in seen), \
        f"no gratuitous ARP from d (plugged on host2) on VLAN 100: {seen}"
    assert elsewhere == [] and from_host1 == [], (elsewhere, from_host1)
    assert bed.reaches("phys1", IP["d"])


def test_physical_host_on_another_vlan_reaches_nothing(bed: ScenarioBed,
                                                      machines: list[str]) -> None:
    # VLAN 102 is no network's; phys2 is in purple's subnet and knows c by its MAC (not VLAN
    # 101: t2's twin g has c's address and so c's MAC, and would rightly answer)
    external(bed, machines, "phys2", "--vlan", "102", "--ip", "10.2.0.101/24")
    phys_mac, c_mac = bed.mac("phys2"), bed.mac("c")
    bed.sh("phys2", "ip", "neigh", "replace", IP["c"], "lladdr", c_mac, "dev", "eth0", "nud",
           "permanent", check=True)
    bed.sh("c", "ip", "neigh", "replace", "10.2.0.101", "lladdr", phys_mac, "dev", "eth0",
           "nud", "permanent", check=True)
    try:
        with bed.capture("underlay", f"vlan 102 and ether src {phys_mac}", "vl") as trunk, \
                bed.capture("c", f"ether src {phys_mac}") as at_c:
            res = bed.sh("phys2", "ping", "-c2", "-i0.3", "-W1", IP["c"])
            back = bed.sh("c", "ping", "-c2", "-i0.3", "-W1", "10.2.0.101")
    finally:
        bed.sh("c", "ip", "neigh", "del", "10.2.0.101", "dev", "eth0")
    assert "2 packets transmitted" in res.stdout, res.stdout + res.stderr
    assert len([ln for ln in trunk if "vlan 102" in ln]) >= 2, \
        f"phys2's frames did not reach the trunk tagged 102: {trunk}"
    assert res.returncode != 0 and back.returncode != 0 and at_c == [], \
        f"VLAN 102 reaches purple (VLAN 100): {at_c}"


# ------------------------------------------------------------------ gateways and the router


def test_containers_ping_their_gateway(bed: ScenarioBed) -> None:
    for c, net in NET.items():
        assert ping_ttl(bed, c, GATEWAY[net]) == 64, f"{c} -> its gateway {GATEWAY[net]}"


def test_routed_vxlan_and_vlan_containers_on_two_hosts_ping_and_connect_ttl_minus_one(
        bed: ScenarioBed) -> None:
    same = ping_ttl(bed, "a", IP["b"])  # orange to orange, switched
    servers = Servers(bed)
    try:
        for name in ("a", "b", "c", "d"):
            servers.serve(name, 8080)
        for src, dst in (("a", "d"), ("d", "a"), ("b", "c"), ("c", "b")):
            ttl = ping_ttl(bed, src, IP[dst])
            assert ttl == same - 1, f"{src} -> {dst}: ttl={ttl}, switched ttl={same}"
            assert tcp_echo(bed, src, IP[dst], 8080), f"{src} -> {dst}: no TCP echo"
    finally:
        servers.stop()


def test_two_tenants_with_identical_subnets_and_routers_never_reach_each_other(
        bed: ScenarioBed) -> None:
    # t1's a and t2's e have one address; a routed ping from a to 10.2.0.3 must reach d (t1),
    # and not one frame from 10.1.0.2 may show at h (t2's 10.2.0.3) while only a sends
    for twin in ("f", "g", "h"):  # t2's routing works on its own
        assert bed.reaches("e", IP[twin]), f"t2: e cannot reach {twin}"
    with bed.capture("h", "icmp and src host 10.1.0.2") as at_h, \
            bed.capture("g", "icmp and src host 10.1.0.2") as at_g, \
            bed.capture("d", "icmp and src host 10.1.0.2") as at_d:
        assert bed.reaches("a", IP["d"]) and bed.reaches("a", IP["c"])
    assert at_d, "the capture at d saw none of a's pings (the check looked at nothing)"
    assert at_h == [] and at_g == [], f"t1's a reaches t2: at h {at_h}, at g {at_g}"


def test_without_a_router_the_networks_are_isolated(bed: ScenarioBed) -> None:
    bed.apply(intent(routed=False))
    try:
        assert ping_ttl(bed, "a", GATEWAY["orange"]) == 64  # the gateway still answers
        with bed.capture("d", "icmp and src host 10.1.0.2") as at_d:
            res = bed.sh("a", "ping", "-c2", "-i0.3", "-W1", IP["d"])
        assert "2 packets transmitted" in res.stdout and res.returncode != 0 and at_d == [], \
            f"a reaches d through the gateway without a router: {res.stdout} {at_d}"
        bed.assert_isolated("a", "d")  # straight to d's MAC (same host pair, pinned)
        bed.assert_isolated("c", "b")
    finally:
        bed.apply(intent())
    assert bed.reaches("a", IP["d"]), "the router is back: a -> d"


def test_container_reaches_a_physical_host_behind_the_external_gateway(
        bed: ScenarioBed, machines: list[str]) -> None:
    # the physical router: 10.9.0.1 on ext (VLAN 300), 10.20.0.1 on VLAN 400, and the return
    # route to the router's networks via its ExternalIp
    external(bed, machines, "prouter", "--vlan", "300", "--ip", "10.9.0.1/24",
             "--vlan", "400", "--ip", "10.20.0.1/24")
    external(bed, machines, "far", "--vlan", "400", "--ip", "10.20.0.5/24", "--gateway",
             "10.20.0.1")
    for subnet in ("10.1.0.0/24", "10.2.0.0/24"):
        bed.sh("prouter", "ip", "route", "add", subnet, "via", "10.9.0.2", check=True)
    servers = Servers(bed)
    try:
        servers.serve("far", 8080)
        for c in ("a", "b", "c", "d"):
            ttl = ping_ttl(bed, c, "10.20.0.5", timeout=20)
            assert ttl == 62, f"{c} -> far: ttl={ttl} (64 - the physical router - ours)"
            assert tcp_echo(bed, c, "10.20.0.5", 8080), f"{c} -> far: no TCP echo"
    finally:
        servers.stop()
    # t2's twin router hands off on VLAN 301, where nothing answers: t1's gateway is not t2's
    assert bed.blocked("e", "10.20.0.5"), "t2 reaches far through t1's physical router"


def ip_hex(ip: str) -> str:
    return "".join(f"{int(o):02x}" for o in ip.split("."))
