"""The Mininet demo's non-interactive run (``--smoke``), inside its own namespaces."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mininet" / "netplugin_demo.py"
EXAMPLE = ROOT / "examples" / "two_hosts_multiple_vxlan_nets.json"


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
    if full:  # containers were plugged and the isolation matrix was checked
        assert "myContainer1   -  .  o  ." in res.stdout
    # everything ran in the sandbox: no namespace or /tmp work dir left on the machine
    assert _netns() <= before
    assert not Path("/tmp/np-mn").exists()
