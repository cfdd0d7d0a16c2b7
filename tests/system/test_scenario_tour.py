"""``make demo``'s tour end to end, non-interactively: the isolation matrix it prints is the one
the intent implies (two tenants in one subnet, each side knowing the other's MAC, so a leak would
answer), it shows flows with their intent objects, and it leaves nothing behind."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from netaddr import IPNetwork

from tests.system.scenario_bed import ROOT, needs_bed
from tests.system.test_testbed import namespaces
from topologies.plan import prefix_for

pytestmark = needs_bed
WORKDIR = Path("/tmp/np-tour")
ROW = re.compile(r"^\s*(\d+) (\S+)/(\S+)/(\S+) \([\d.]+\)\s+((?:\S+\s*)+)$")


def test_tour_prints_the_intended_isolation_matrix() -> None:
    res = subprocess.run(
        [sys.executable, "-m", "topologies.tour", "--workdir", str(WORKDIR), "--etcd-port",
         "27794", "--ofp-port", "27802", "--rest-port", "27812"],
        capture_output=True, text=True, cwd=ROOT, timeout=240)
    out = res.stdout
    assert res.returncode == 0, f"tour failed (exit {res.returncode}):\n{out}\n{res.stderr}"
    rows = [m.groups() for m in map(ROW.match, out.splitlines()) if m]
    names = [r[3] for r in rows]
    assert sorted(names) == ["g1", "g2", "r1", "r2"], f"matrix rows: {names}\n{out}"
    # two tenants (VLAN red, VXLAN green) in one subnet: an isolation leak would get replies
    subnets = {IPNetwork(f"{ip}/24").cidr for ip in re.findall(r"\((10\.[\d.]+)\)", out)}
    assert subnets == {IPNetwork("10.1.1.0/24")}, out
    assert re.search(r"network red\s+vlan\s+\d+\s+10\.1\.1\.0/24", out), out
    assert re.search(r"network green\s+vxlan\s+\d+\s+10\.1\.1\.0/24", out), out
    assert "8 static ARP entries" in out, out
    got = {(a[3], names[j]): cell for a in rows for j, cell in enumerate(a[4].split())}
    assert len(got) == 16
    for (src, dst), cell in got.items():
        want = "·" if src == dst else "✓" if src[0] == dst[0] else "✗"
        assert cell == want, f"{src} -> {dst}: printed {cell}, intended {want}\n{out}"
    assert "tenant-vlan/red/r1" in out and "tenant-vxlan/green/g2" in out
    assert re.search(r"tunnel_id=\d+\s+network green", out), f"no VXLAN flow shown:\n{out}"
    assert "endpoint red-r1" in out, f"flows do not name their endpoints:\n{out}"
    assert namespaces(prefix_for(WORKDIR)) == [], "the tour left namespaces behind"
    assert not (WORKDIR / "bed.json").exists(), "the tour left its test bed up"
