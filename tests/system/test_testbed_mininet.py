"""The Mininet demo's non-interactive run (``--smoke``), inside its own namespaces."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mininet" / "netplugin_demo.py"
EXAMPLE = ROOT / "examples" / "two_hosts_multiple_vxlan_nets.json"
# the names the demo gives its nodes' namespaces (inside its sandbox only); other namespaces may
# come and go meanwhile on a shared machine
DEMO_NODES = {"host1", "host2", "vx", "vl", *(f"myContainer{i}" for i in range(1, 5))}


def _netns() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {ln.split()[0] for ln in out.splitlines() if ln.strip()}


def test_mininet_smoke_demo_leaves_the_machine_alone() -> None:
    before = _netns()
    res = subprocess.run([sys.executable, str(DEMO), "--config", str(EXAMPLE), "--smoke"],
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "smoke: PASS" in res.stdout
    full = all((ROOT / m / "__main__.py").exists() for m in ("agent", "ryu_apps"))
    if full:  # containers were plugged and the isolation matrix was checked: between the
        # networks each side knew the other's real MAC (only isolation can stop the frames)
        matrix = res.stdout[res.stdout.index("reachability (row pings column)"):]
        assert "static ARP entries" in matrix and "!" not in matrix.split("smoke:")[0], matrix
    # everything ran in the sandbox: no namespace or /tmp work dir left on the machine
    assert not (_netns() - before) & DEMO_NODES
    assert not Path("/tmp/np-mn").exists()


def test_mininet_cli_pingall_shows_exactly_the_intents_reachability(tmp_path: Path) -> None:
    before = _netns()
    script = tmp_path / "cmds"  # under /tmp: read before the sandbox hides the real /tmp
    script.write_text("pingall\nmyContainer1 ping -c1 -W2 myContainer3\n")
    res = subprocess.run([sys.executable, str(DEMO), "--config", str(EXAMPLE), "--cli-script",
                          str(script)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out
    # only the four containers take part: orange 1<->3 and purple 2<->4 reply, the rest is
    # isolated (no "could not parse ping output" for the simulated hosts)
    assert "*** Results: 66% dropped (4/12 received)" in out, out
    assert "myContainer1 -> X myContainer3 X" in out and "myContainer4 -> X myContainer2 X" in out
    assert "could not parse" not in out
    # node names stand for the addresses the agent gave the containers
    ip3 = re.search(r"myContainer3 plugged: eth0 ([\d.]+)", out)
    assert ip3, out
    assert f"PING {ip3[1]} " in out and "1 packets transmitted, 1 received" in out, out
    assert not (_netns() - before) & DEMO_NODES and not Path("/tmp/np-mn").exists()
