"""``python -m tests.bench --quick`` (what ``make bench`` runs, at small sizes) runs every
benchmark on a real test bed and prints every line issue 10 asks for, so the harness cannot rot.

The numbers are not asserted (a shared machine; benchmarks, not timed tests); what is asserted is
that each benchmark ran and that its own cross-checks held: ``ovs-ofctl bundle`` of the dumped
file leaves the very entries the controller installed, and a restart leaves them as they were.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from topologies import proc

ROOT = Path(__file__).resolve().parents[2]
NUM = r"\d+(?:\.\d+)?"
LINES = {
    "latency at 0": rf"^latency hosts=2 endpoints=0: p50 {NUM} ms p99 {NUM} ms "
                    rf"cpu {NUM} ms/change$",
    "latency at E": rf"^latency hosts=2 endpoints=[1-9]\d*: p50 {NUM} ms p99 {NUM} ms "
                    rf"cpu {NUM} ms/change$",
    "latency spread": rf"^latency hosts=\d+ endpoints=\d+: p50 {NUM} ms p99 {NUM} ms "
                      rf"cpu {NUM} ms/change \(network spanning \d+ hosts\)$",
    "resync": rf"^resync \d+ flows: controller {NUM} s, ovs-ofctl --bundle {NUM} s, "
              rf"ratio {NUM}$",
    "restart": rf"^restart \d+ flows: changes \d+, realized after {NUM} s$",
    "bulk": rf"^bulk \d+ endpoints: {NUM} s$",
}
EXTRA = {  # not issue 10's lines: no target beside them
    "agents": rf"^agents hosts=2 endpoints=\d+: p50 {NUM} ms p99 {NUM} ms, controller cpu {NUM} "
              rf"ms/change, agent cpu {NUM} ms/change \(each\)$",
}


@pytest.fixture
def workdir():
    path = Path(tempfile.mkdtemp(prefix="np-bench-"))  # short: OVS socket paths must fit
    yield path
    subprocess.run([sys.executable, "-m", "topologies", "--workdir", str(path / "bed"), "down"],
                   capture_output=True, cwd=ROOT, timeout=120)
    shutil.rmtree(path, ignore_errors=True)


def test_quick_bench_prints_every_line(workdir):
    res = subprocess.run([sys.executable, "-m", "tests.bench", "--quick", "--workdir",
                          str(workdir)], capture_output=True, text=True, cwd=ROOT, timeout=180)
    out = res.stdout
    assert res.returncode == 0, f"exit {res.returncode}\n{out[-3000:]}\n{res.stderr[-3000:]}"
    for what, pattern in {**LINES, **EXTRA}.items():
        assert re.search(pattern, out, re.M), f"no {what} line ({pattern}) in:\n{out}"
    summary = out[out.index("== summary"):]
    for pattern in LINES.values():
        line = re.search(pattern.rstrip("$"), summary, re.M)
        assert line and "target " in summary[line.start():].splitlines()[0], \
            f"summary without a target beside {pattern}:\n{summary}"
    assert "ovs-ofctl bundle of the same file left the same entries: yes" in out, out
    assert "flows and groups after == before: yes" in out, out
    assert not [n for n in proc.netns_list() if n.startswith(_prefix(workdir))], \
        "the bench left namespaces behind"


def _prefix(workdir: Path) -> str:
    from topologies.plan import prefix_for

    return prefix_for(workdir / "bed") + "-"
