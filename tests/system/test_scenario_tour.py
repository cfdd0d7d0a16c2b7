"""``make demo``'s tour end to end, non-interactively: the isolation matrix it prints is the one
the intent implies (two tenants in one subnet, each side knowing the other's MAC, so a leak would
answer; a router between a VLAN and a VXLAN network of one tenant; a physical machine on the VLAN
network's VLAN), the routed pair's TTL is one less than inside a network, it shows flows with
their intent objects, and it leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from netaddr import IPNetwork

from tests.system.conftest import free_port
from tests.system.scenario_bed import ROOT, needs_bed
from tests.system.test_testbed import namespaces
from topologies.plan import prefix_for

pytestmark = needs_bed
WORKDIR = Path(os.environ.get("NP_TOUR_BED", "/tmp/np-tour"))
ROW = re.compile(r"^\s*(\d+) (\S+)/(\S+)/(\S+) \([\d.]+\)\s+((?:\S+\s*)+)$")
RED = {"r1", "r2", "phys1"}  # red (VLAN) and the physical machine on its VLAN
ROUTED = {"r1", "r2", "b1"}  # red and blue share router rt (phys1 is no endpoint: not routed)


def intended(src: str, dst: str) -> str:
    if src == dst:
        return "·"
    same = {src, dst} <= RED or {src, dst} <= {"g1", "g2"}
    routed = "b1" in (src, dst) and {src, dst} <= ROUTED
    return "✓" if same or routed else "✗"


def test_tour_prints_the_intended_isolation_matrix() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "topologies.tour", "--workdir", str(WORKDIR), "--etcd-port",
         str(free_port()), "--ofp-port", str(free_port()), "--rest-port", str(free_port())],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    out = res.stdout
    assert res.returncode == 0, f"tour failed (exit {res.returncode}):\n{out}\n{res.stderr}"
    rows = [m.groups() for m in map(ROW.match, out.splitlines()) if m]
    names = [r[3] for r in rows]
    assert sorted(names) == ["b1", "g1", "g2", "phys1", "r1", "r2"], f"matrix rows: {names}\n{out}"
    # two tenants (VLAN red, VXLAN green) in one subnet: an isolation leak would get replies
    subnets = {IPNetwork(f"{ip}/24").cidr for ip in re.findall(r"\((10\.[\d.]+)\)", out)}
    assert subnets == {IPNetwork("10.1.1.0/24"), IPNetwork("10.1.2.0/24")}, out
    assert re.search(r"network red\s+vlan\s+\d+\s+10\.1\.1\.0/24", out), out
    assert re.search(r"network green\s+vxlan\s+\d+\s+10\.1\.1\.0/24", out), out
    assert re.search(r"network blue\s+vxlan\s+\d+\s+10\.1\.2\.0/24", out), out
    assert "18 static ARP entries" in out, out
    assert "phys1: a physical machine on the VLAN of red" in out, out
    got = {(a[3], names[j]): cell for a in rows for j, cell in enumerate(a[4].split())}
    assert len(got) == 36
    for (src, dst), cell in got.items():
        want = intended(src, dst)
        assert cell == want, f"{src} -> {dst}: printed {cell}, intended {want}\n{out}"
    routed = re.search(r"router tenant-vlan/rt: (\S+) \((\S+)\) -> (\S+) \((\S+)\) ttl=(\d+), "
                       r"inside \S+ ttl=(\d+) ✓", out)
    assert routed, f"no routed pair with its TTL:\n{out}"
    assert {routed[2], routed[4]} == {"red", "blue"}
    assert int(routed[5]) == int(routed[6]) - 1, routed[0]
    assert "tenant-vlan/red/r1" in out and "tenant-vxlan/green/g2" in out
    assert re.search(r"tunnel_id=\d+\s+network green", out), f"no VXLAN flow shown:\n{out}"
    assert "endpoint red-r1" in out, f"flows do not name their endpoints:\n{out}"
    assert namespaces(prefix_for(WORKDIR)) == [], "the tour left namespaces behind"
    assert not (WORKDIR / "bed.json").exists(), "the tour left its test bed up"
