"""Time to realize one policy rule change on 2 hosts (a test bed benchmark).

A test bed of two hosts (real OVS, etcd, the controller, the agents) with
``examples/policy_web_app.json`` and its four containers running; then N times: a rule added to
``web-in`` with ``netdcli -add-cfg … -wait`` and removed with ``-del-cfg … -wait``.  Each
command returns once both switches realized the write, so its wall time is write + compute +
send + barrier on both hosts (netdcli's own start-up, about 0.3 s of Python imports, is measured
separately and subtracted).  Needs root.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "policy_web_app.json"
CONTAINERS = {"c1": "host1", "c2": "host2", "c3": "host2", "c4": "host1"}


def _run(*args: str, env: dict | None = None, check: bool = True) -> subprocess.CompletedProcess:
    res = subprocess.run(list(args), capture_output=True, text=True, cwd=ROOT, env=env,
                         timeout=600)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(args)}: exit {res.returncode}\n{res.stderr[-2000:]}")
    return res


def _rule_doc(rule_id: int) -> dict:
    return {"Tenants": [{"Name": "tenant-one", "Policies": [{"Name": "web-in", "Rules": [
        {"Id": rule_id, "Priority": 20, "Direction": "in", "FromEndpointGroup": "app",
         "Protocol": "tcp", "Port": 1000 + rule_id, "Action": "allow"}]}]}]}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--changes", type=int, default=20, help="rule adds (and as many removes)")
    ap.add_argument("--quick", action="store_true", help="5 changes")
    args = ap.parse_args(argv)
    n = 5 if args.quick else args.changes
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="np-bench-policy-"))
    bed = [py, "-m", "topologies"]
    try:
        _run(*bed, "up", "--config", str(EXAMPLE), "--workdir", str(work))
        env_lines = _run(*bed, "env", "--workdir", str(work)).stdout
        etcd = next(ln.split("=", 1)[1] for ln in env_lines.splitlines()
                    if ln.startswith("export NETPLUGIN_ETCD="))
        netdcli = [py, "-m", "netdcli.cli", "-etcd", etcd]
        _run(*netdcli, "-cfg", str(EXAMPLE), "-wait")
        for c, h in CONTAINERS.items():
            _run(*bed, "run", h, c, "--wait", "30", "--workdir", str(work))
        t0 = time.perf_counter()
        _run(*netdcli, "-oper", "get", "-construct", "global")
        startup = time.perf_counter() - t0
        times = []
        for k in range(n):
            doc = work / f"rule{k}.json"
            doc.write_text(json.dumps(_rule_doc(100 + k)))
            for mode in ("-add-cfg", "-del-cfg"):
                t0 = time.perf_counter()
                _run(*netdcli, mode, str(doc), "-wait", "-q")
                times.append(max(0.0, time.perf_counter() - t0 - startup) * 1e3)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(f"policy rule change realized on 2 hosts: p50 {statistics.median(times):.1f} ms "
              f"p99 {p99:.1f} ms (n={len(times)}, netdcli start-up {startup * 1e3:.0f} ms "
              f"subtracted)", flush=True)
    finally:
        _run(*bed, "down", "--workdir", str(work), check=False)


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("needs root (the test bed)")
    main()
