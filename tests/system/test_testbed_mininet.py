"""The Mininet demo's non-interactive run (``--smoke``), inside its own namespaces."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "mininet" / "netplugin_demo.py"
EXAMPLE = ROOT / "examples" / "two_hosts_multiple_vxlan_nets.json"


def _mininet_importable() -> bool:
    return subprocess.run([sys.executable, "-c", "import mininet.net"],
                          capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root"),
    pytest.mark.skipif(not _mininet_importable(), reason="Mininet not importable"),
]


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
