"""What agents cost per intent change: the stock test bed (``python -m topologies up``: the
controller, one agent per host), E endpoints bound to the hosts but not plugged (no container
runs, so no table changes: the setting of issue 10's first measurement), then single-endpoint
adds through REST ``?wait=30``.

The controller benchmarks run agent-less hosts (an agent deletes the oper keys of ports it did
not plug, so simulated plugs cannot live next to one); this one says what an agent would add on
each host: it reconciles on every change under ``/netplugin/state/``.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from tests.bench import workload as W
from tests.bench.report import Result, percentile, say
from tests.bench.testbed import ROOT, BenchError, Rest, cpu_seconds, free_port, port_pair
from topologies.state import BedState

HOSTS = ["host1", "host2"]


def _cli(workdir: Path, *args: str) -> None:
    res = subprocess.run([sys.executable, "-m", "topologies", "--workdir", str(workdir), *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=300)
    if res.returncode != 0:
        raise BenchError(f"topologies {args[0]}: exit {res.returncode}\n{res.stdout[-1500:]}\n"
                         f"{res.stderr[-1500:]}")


def _pids(workdir: Path) -> dict[str, int]:
    return {p["name"]: p["pid"] for p in BedState.load(workdir).pids}


def _settle(pids: list[int], quiet_s: float = 1.0, timeout: float = 120) -> None:
    """Until none of ``pids`` used CPU for ``quiet_s`` (agents finished their reconciles)."""
    deadline = time.monotonic() + timeout
    last = [cpu_seconds(p) for p in pids]
    while time.monotonic() < deadline:
        time.sleep(quiet_s)
        now = [cpu_seconds(p) for p in pids]
        if all(b - a < 0.02 for a, b in zip(last, now, strict=True)):
            return
        last = now


def agents(workdir: Path, endpoints: list[int], adds: int) -> list[Result]:
    """One bed with agents; per E: load E unplugged endpoints, then ``adds`` REST adds."""
    bed = workdir / "agents-bed"
    etcd, ofp, rest_port = port_pair(), free_port(), free_port()
    url = f"http://127.0.0.1:{etcd}"
    _cli(bed, "down")
    out = []
    try:
        _cli(bed, "up", "--hosts", ",".join(HOSTS), "--etcd-port", str(etcd), "--ofp-port",
             str(ofp), "--rest-port", str(rest_port))
        pids = _pids(bed)
        agent_pids = [pids[f"agent:{h}"] for h in HOSTS]
        ctl = pids["controller"]
        rest = Rest(rest_port)
        loaded = 0
        W.netdcli(url, "-add-cfg", W.tenant_doc({"n0": []}), bed / "agents.json")
        for e in endpoints:
            more = W.split(f"p{loaded}n", W.on_hosts(e - loaded, HOSTS, tag=f"e{loaded}-"))
            if more:
                W.load_config(url, more, bed / "agents.json")
            loaded = max(loaded, e)
            _settle(agent_pids)
            samples = []
            cpu0, agents0 = cpu_seconds(ctl), [cpu_seconds(p) for p in agent_pids]
            for i in range(adds):
                t0 = time.perf_counter()
                res = rest.post("/networks/n0/endpoints?wait=30",
                                {"Container": f"add{e}-{i}", "Host": HOSTS[i % 2]})
                samples.append(time.perf_counter() - t0)
                if not res.get("realized"):
                    raise BenchError(f"add {i}: not realized: {json.dumps(res)}")
            ctl_cpu = cpu_seconds(ctl) - cpu0
            _settle(agent_pids)
            agent_cpu = [cpu_seconds(p) - a for p, a in zip(agent_pids, agents0, strict=True)]
            line = (f"agents hosts=2 endpoints={e}: p50 {statistics.median(samples) * 1e3:.1f} ms "
                    f"p99 {percentile(samples, 0.99) * 1e3:.1f} ms, controller cpu "
                    f"{ctl_cpu * 1e3 / adds:.2f} ms/change, agent cpu "
                    f"{max(agent_cpu) * 1e3 / adds:.1f} ms/change (each)")
            say(line)
            out.append(Result("agents", line, {"endpoints": e}))
            loaded += adds
        rest.close()
        say(f"  ({adds} adds per point, endpoints unplugged so no table changes; agent cpu "
            "includes its periodic 5 s resync and the reconciles the adds caused)")
    finally:
        _cli(bed, "down")
    return out
