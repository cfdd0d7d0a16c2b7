"""Controller benchmarks on the real test bed (real OVS, real etcd, the controller as a process).

    python -m tests.bench.bench_controller [--quick] [--workdir DIR] [--only latency,resync,...]
                                           [--profile DIR]

Prints (the lines of issue 10, item 7):

* ``latency hosts=H endpoints=E: p50 X ms p99 Y ms cpu Z ms/change`` -- one endpoint added with
  ``POST /api/v1/networks/<net>/endpoints?wait=30`` (the answer comes once every affected host
  realized it), its port plugged beforehand, so every add changes flows; E pre-existing
  endpoints, plugged, split over the hosts; cpu = the controller's CPU time per add;
* ``resync N flows: controller X s, ovs-ofctl --bundle Y s, ratio R`` -- an empty switch
  connects to a controller whose store gives it N flows: connect to barrier-acked (read-back,
  compute, diff, send), against ``ovs-ofctl bundle`` of the same flows and groups from one file;
* ``restart N flows: changes C, realized after T s`` -- SIGKILL and start again over N installed
  flows; T from the new process's start to the host's realized key being written;
* ``bulk E endpoints: X s`` -- one ``netdcli -add-cfg`` of E endpoints on a stock etcd.

Hosts run no agent (an agent deletes oper keys of ports it did not plug): the bench creates
br-int and registers each host itself (see :mod:`tests.bench.testbed`).  Run as root.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import time
from datetime import datetime
from pathlib import Path

from intent import keys
from intent.store_etcd import EtcdStore
from tests.bench import workload as W
from tests.bench.bench_agents import agents
from tests.bench.report import Result, percentile, say
from tests.bench.testbed import Bed, BenchError, Host, cpu_seconds, etcd_requests, port_pair
from tests.etcd_server import EtcdServer
from topologies import proc

FULL = {"endpoints": "0,1000,5000", "hosts": "20,100", "span": 10, "per_host": 50, "adds": 100,
        "resync": "10000,50000", "restart": 100000, "bulk": 5000}
QUICK = {"endpoints": "0,200", "hosts": "4", "span": 2, "per_host": 6, "adds": 10,
         "resync": "2000", "restart": 4000, "bulk": 500}
SCENARIOS = ("bulk", "resync", "restart", "latency", "spread", "agents")
WARM_UP = 3
LOG_TIME = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3})"


def _log_time(stamp: str) -> float:
    return datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()


# ---------------------------------------------------------------------------------- latency


def measure_adds(bed: Bed, ports: W.Ports, network: str, hosts: list[str], n: int) -> dict:
    """``n`` single-endpoint adds to ``network`` through REST (hosts in turn), each plugged
    beforehand; latency samples and CPU per add."""
    store = bed.store
    adds = [(f"add{i}", hosts[i % len(hosts)]) for i in range(WARM_UP + n)]
    bed.wait_applied(W.plug(store, [(f"{network}-{c}", h, ports.take(h)) for c, h in adds]))
    vswitchd = bed.ovs_pids(bed.attached)
    samples, missed = [], 0
    cpu0 = ovs0 = 0.0
    calls0: dict[str, int] = {}
    for i, (c, h) in enumerate(adds):
        if i == WARM_UP:
            bed.controller.profile_part(f"the set-up before {n} adds to {network}")
            cpu0, ovs0 = bed.controller.cpu(), sum(cpu_seconds(p) for p in vswitchd)
            calls0 = etcd_requests(bed.etcd_url)
        t0 = time.perf_counter()
        out = bed.rest.post(f"/networks/{network}/endpoints?wait=30", {"Container": c, "Host": h})
        took = time.perf_counter() - t0
        if i >= WARM_UP:
            samples.append(took)
            missed += not out.get("realized")
    cpu = bed.controller.cpu() - cpu0
    ovs_cpu = sum(cpu_seconds(p) for p in vswitchd) - ovs0
    bed.controller.profile_part(f"{n} adds to {network} on {len(bed.attached)} switches")
    calls = {k: (v - calls0.get(k, 0)) / n for k, v in etcd_requests(bed.etcd_url).items()
             if v > calls0.get(k, 0)}
    return {"etcd": calls, "p50": statistics.median(samples) * 1e3,
            "p99": percentile(samples, 0.99) * 1e3, "max": max(samples) * 1e3,
            "cpu": cpu * 1e3 / n, "ovs_cpu": ovs_cpu * 1e3 / n,
            "missed": missed, "n": n}


def measure_quiet(bed: Bed, hosts: list[str], n: int) -> dict:
    """``n`` adds (no ``?wait``) to network ``quiet``, which is on no switch: what the write
    path and the controller's intake cost when no table changes."""
    samples = []
    cpu0 = bed.controller.cpu()
    for i in range(n):
        t0 = time.perf_counter()
        bed.rest.post("/networks/quiet/endpoints", {"Container": f"q{i}",
                                                    "Host": hosts[i % len(hosts)]})
        samples.append(time.perf_counter() - t0)
    bed.wait_applied(W.tick(bed.store))
    return {"p50": statistics.median(samples) * 1e3, "cpu": (bed.controller.cpu() - cpu0)
            * 1e3 / n, "n": n}


def _latency_result(hosts: int, endpoints: int, m: dict, span: int | None = None,
                    quiet: dict | None = None) -> Result:
    line = (f"latency hosts={hosts} endpoints={endpoints}: p50 {m['p50']:.1f} ms "
            f"p99 {m['p99']:.1f} ms cpu {m['cpu']:.2f} ms/change")
    if span is not None:
        line += f" (network spanning {span} hosts)"
    say(line)
    say(f"  {m['n']} adds, max {m['max']:.1f} ms, answered before realized: {m['missed']}; "
        f"ovs-vswitchd cpu {m['ovs_cpu']:.2f} ms/change (all hosts); agents: none")
    say("  etcd per change (all from the controller: REST write path, realized and applied "
        "revisions): " + ", ".join(f"{k} {v:.1f}" for k, v in sorted(m["etcd"].items())))
    if quiet:
        say(f"  an add no switch needs (its network is on none), {quiet['n']} without ?wait: "
            f"p50 {quiet['p50']:.1f} ms, controller cpu {quiet['cpu']:.2f} ms/change")
    return Result("latency", line, dict(m, hosts=hosts, endpoints=endpoints, span=span))


def fresh(bed: Bed) -> None:
    """No switch attached, no intent, no plugs; the controller has seen it."""
    bed.detach()
    bed.wait_applied(W.wipe(bed.store))


def latency(bed: Bed, endpoints: list[int], adds: int) -> list[Result]:
    """H=2: E pre-existing endpoints (plugged, half on each host); adds to network n0."""
    out = []
    hosts = bed.names(2)
    for e in endpoints:
        fresh(bed)
        ports = W.Ports()
        layout = W.split("n", W.on_hosts(e, hosts)) or {"n0": []}
        layout["quiet"] = []
        rev = W.load(bed.store, bed.etcd_url, layout, ports, bed.workdir / "latency.json")
        bed.attach(hosts)
        bed.wait_in_sync(hosts, rev)
        m = measure_adds(bed, ports, "n0", hosts, adds)
        out.append(_latency_result(2, e, m, quiet=measure_quiet(bed, hosts, max(5, adds // 5))))
    return out


def spread(bed: Bed, span: int, per_host: int, adds: int) -> list[Result]:
    """Every host of the bed with ``per_host`` endpoints, in networks spanning ``span`` hosts
    (and one network, ``wide``, spanning all): adds to a span-wide network, then to ``wide``."""
    out = []
    n_hosts = bed.n_hosts
    fresh(bed)
    hosts = bed.names(n_hosts)
    ports = W.Ports()
    layout = W.spanning(hosts, span, per_host, max(1, per_host // 10))
    total = sum(len(v) for v in layout.values())
    rev = W.load(bed.store, bed.etcd_url, layout, ports, bed.workdir / "spread.json")
    bed.attach(hosts)
    bed.wait_in_sync(hosts, rev)
    m = measure_adds(bed, ports, "b0n0", hosts[:span], adds)
    out.append(_latency_result(n_hosts, total, m, span=min(span, n_hosts)))
    m = measure_adds(bed, ports, "wide", hosts, adds)
    out.append(_latency_result(n_hosts, total, m, span=n_hosts))
    say(f"  (measured after the {adds} adds above; networks: {len(layout)})")
    return out


# ---------------------------------------------------------------------------------- resync


def _dump(host: Host) -> tuple[list[str], list[str]]:
    """The switch's flows and groups as ``ovs-ofctl`` prints them (sorted, no statistics)."""
    flows = [ln.strip() for ln in host.ofctl("dump-flows", "--no-stats").splitlines()
             if "priority=" in ln]
    groups = [ln.strip() for ln in host.ofctl("dump-groups").splitlines() if "group_id=" in ln]
    return sorted(flows), sorted(groups)


def _fill_one(bed: Bed, n_flows: int, name: str) -> int:
    """Intent giving host h1 about ``n_flows`` flows (4 per plugged endpoint); no switch yet."""
    fresh(bed)
    layout = W.split("r", W.on_hosts(n_flows // 4, ["h1"]))
    rev = W.load(bed.store, bed.etcd_url, layout, W.Ports(), bed.workdir / f"{name}.json")
    bed.wait_applied(rev)
    return rev


def _sync_times(log: str, host: Host) -> tuple[float | None, float | None, int | None, float]:
    """From the controller's log: the switch's connect time, the barrier-acked time of the first
    sync after it, its changes and the seconds it spent sending them."""
    conn = re.search(LOG_TIME + rf" \S+ \S+: event=switch-connected dpid={host.dpid:016x}", log)
    if conn is None:
        return None, None, None, 0.0
    done = re.compile(LOG_TIME + rf" \S+ \S+: event=sync host={host.name} changes=(\d+) "
                      r"ms=([\d.]+)")
    m = done.search(log, conn.end())
    if m is None:
        return _log_time(conn[1]), None, None, 0.0
    return _log_time(conn[1]), _log_time(m[1]), int(m[2]), float(m[3]) / 1e3


def resync(bed: Bed, n_flows: int) -> Result:
    rev = _fill_one(bed, n_flows, "resync")
    host = bed.hosts["h1"]
    offset, t_attach = bed.controller.log_size(), time.time()
    bed.attach([host.name])
    t_realized = bed.realized.first_after(host.name, t_attach, 1800)
    bed.wait_in_sync([host.name], rev)
    t_conn, t_done, changes, sending = _sync_times(bed.controller.log_since(offset), host)
    if t_conn is None or t_done is None:
        say("  (no connect/changes lines in the controller log: timing from add-br to the "
            "realized key instead)")
        t_conn, t_done = t_attach, t_realized
    ctl_s = t_done - t_conn
    flows, groups = _dump(host)
    bundle = bed.workdir / f"bundle-{n_flows}.txt"
    bundle.write_text("".join(f"group add {g}\n" for g in groups)
                      + "".join(f"flow add {f}\n" for f in flows))
    host.ofctl("del-flows")
    host.ofctl("del-groups")
    t0 = time.perf_counter()
    host.ofctl("bundle", str(bundle))
    ofctl_s = time.perf_counter() - t0
    same = _dump(host) == (flows, groups)
    line = (f"resync {n_flows} flows: controller {ctl_s:.2f} s, ovs-ofctl --bundle "
            f"{ofctl_s:.2f} s, ratio {ctl_s / ofctl_s:.2f}")
    say(line)
    say(f"  {len(flows)} flows and {len(groups)} groups installed in {changes} changes: "
        f"read-back + compute + diff {ctl_s - sending:.2f} s, pack + send + barrier "
        f"{sending:.2f} s; connect to realized key written {t_realized - t_conn:.2f} s; "
        f"ovs-ofctl bundle of the same file left the same entries: {'yes' if same else 'NO'}")
    return Result("resync", line, {"flows": n_flows, "controller": ctl_s, "ofctl": ofctl_s,
                                   "ratio": ctl_s / ofctl_s, "same": same})


# ---------------------------------------------------------------------------------- restart


def restart(bed: Bed, n_flows: int) -> Result:
    rev = _fill_one(bed, n_flows, "restart")
    host = bed.hosts["h1"]
    bed.attach([host.name])
    bed.wait_in_sync([host.name], rev, timeout=3600)
    before = _dump(host)
    events = bed.workdir / "logs" / "monitor.txt"
    with open(events, "w") as out:  # flow changes from here on (groups: the dumps compare them)
        monitor = subprocess.Popen(["ovs-ofctl", "-O", "OpenFlow13", "monitor", host.mgmt,
                                    "watch:!initial"], stdout=out, stderr=subprocess.STDOUT,
                                   env=dict(os.environ, **host.paths.env()))
    try:
        proc.wait_for(lambda: "FLOW_MONITOR reply" in events.read_text(), 10,
                      "ovs-ofctl monitor's first reply")
        bed.controller.kill9()
        offset = bed.controller.log_size()
        t_start = bed.controller.start()
        t_realized = bed.realized.first_after(host.name, t_start, 600)
        took = t_realized - t_start
        bed.wait_in_sync([host.name], rev)
        changes = bed.host_rows()[host.name]["changes_sent"]
        after = _dump(host)
        watching = monitor.poll() is None
    finally:
        monitor.terminate()
        monitor.wait(10)
    seen = sum(1 for ln in events.read_text(errors="replace").splitlines() if "event=" in ln)
    log = bed.controller.log_since(offset)
    t_conn = _sync_times(log, host)[0]
    listen = re.search(LOG_TIME + r" \S+ \S+: OpenFlow on ", log)
    line = f"restart {n_flows} flows: changes {changes}, realized after {took:.2f} s"
    say(line)
    since = lambda t: f"{t - t_start:.2f} s" if t else "?"  # noqa: E731
    monitored = seen if watching else "? (the monitor died)"
    say(f"  {len(before[0])} flows and {len(before[1])} groups; after the process started: "
        f"OpenFlow listening {since(listen and _log_time(listen[1]))}, switch connected "
        f"{since(t_conn)} (OVS retries after 1, 2, 4 … s), realized key written "
        f"{since(t_realized)}; ovs-ofctl monitor saw {monitored} flow changes; flows and "
        f"groups after == before: {'yes' if after == before else 'NO'}")
    return Result("restart", line, {"flows": n_flows, "changes": changes, "seconds": took,
                                    "monitor": seen, "same": after == before})


# ---------------------------------------------------------------------------------- bulk


def bulk(workdir: Path, n: int) -> Result:
    """One ``netdcli -add-cfg`` of ``n`` endpoints on a private stock etcd (nothing watching)."""
    port = port_pair()
    etcd = EtcdServer(workdir / "bulk-etcd", port, port + 1).start()
    try:
        doc = W.tenant_doc(W.split("n", W.on_hosts(n, ["h1", "h2"])))
        took = W.netdcli(etcd.url, "-add-cfg", doc, workdir / "bulk.json")
        store = EtcdStore(etcd.url)
        stored = len(store.key_names(keys.STATE_ENDPOINTS)[1])
        store.close()
    finally:
        etcd.stop()
    t0 = time.perf_counter()
    W.netdcli_help()
    startup = time.perf_counter() - t0
    line = f"bulk {n} endpoints: {took:.2f} s"
    say(line)
    say(f"  one netdcli -add-cfg on a stock etcd (no --max-txn-ops), nothing else running on "
        f"it; {stored} endpoints stored; netdcli's own start-up (--help) {startup:.2f} s")
    return Result("bulk", line, {"endpoints": n, "seconds": took, "stored": stored})


# ---------------------------------------------------------------------------------- main


def _ints(text: str) -> list[int]:
    return [int(x) for x in str(text).split(",") if x.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_controller", description=__doc__.split("\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  python -m tests.bench.bench_controller           # everything\n"
               "  python -m tests.bench.bench_controller --quick   # small sizes (smoke run)\n"
               "  python -m tests.bench.bench_controller --only resync --resync 10000 "
               "--profile /tmp/prof")
    p.add_argument("--quick", action="store_true", help="small sizes, few adds (a smoke run)")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/netplugin-bench"),
                   help="the bench's own directory (bed, logs, files; default %(default)s)")
    p.add_argument("--only", default=",".join(SCENARIOS),
                   help=f"scenarios to run (default: all of {','.join(SCENARIOS)})")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="run the controller under cProfile; profiles go to DIR")
    for name, help_ in (("endpoints", "pre-existing endpoints of the 2-host points"),
                        ("hosts", "host counts of the spread points"),
                        ("span", "hosts each network spans (spread)"),
                        ("per_host", "endpoints per host (spread)"),
                        ("adds", "measured adds per point"), ("resync", "resync sizes (flows)"),
                        ("restart", "restart size (flows)"), ("bulk", "bulk endpoints")):
        p.add_argument("--" + name.replace("_", "-"), dest=name, help=help_ + " (full: "
                       f"{FULL[name]}, quick: {QUICK[name]})")
    return p


def run(argv: list[str] | None = None) -> tuple[list[Result], list[str]]:
    """Run the chosen scenarios; returns their results and the names of those that failed."""
    args = parser().parse_args(argv)
    sizes = QUICK if args.quick else FULL
    opt = {k: getattr(args, k) if getattr(args, k) is not None else v for k, v in sizes.items()}
    only = set(args.only.split(","))
    if only - set(SCENARIOS):
        raise SystemExit(f"--only: unknown scenario(s) {', '.join(sorted(only - set(SCENARIOS)))}")
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    results: list[Result] = []
    failures: list[str] = []

    def attempt(name: str, step) -> None:  # noqa: ANN001
        try:
            results.extend(step())
        except (BenchError, RuntimeError, OSError, TimeoutError, ValueError) as exc:
            say(f"!! {name} failed: {exc}")
            failures.append(name)

    if "bulk" in only:
        shutil.rmtree(work / "bulk-etcd", ignore_errors=True)
        attempt("bulk", lambda: [bulk(work, int(opt["bulk"]))])
    if "agents" in only:
        attempt("agents", lambda: agents(work, _ints(opt["endpoints"]), int(opt["adds"])))
    if not only & {"resync", "restart", "latency", "spread"}:
        return results, failures
    beds = []  # one bed per phase: idle hosts of a bigger bed would eat the CPU of the others
    if only & {"resync", "restart", "latency"}:
        beds.append((2, []))
        if "resync" in only:
            beds[0][1].extend((f"resync {n}", lambda bed, n=n: [resync(bed, n)])
                              for n in _ints(opt["resync"]))
        if "restart" in only:
            beds[0][1].append(("restart", lambda bed: [restart(bed, int(opt["restart"]))]))
        if "latency" in only:
            beds[0][1].append(("latency", lambda bed: latency(bed, _ints(opt["endpoints"]),
                                                              int(opt["adds"]))))
    if "spread" in only:
        beds += [(n, [(f"spread {n}", lambda bed: spread(bed, int(opt["span"]),
                                                          int(opt["per_host"]), int(opt["adds"])))])
                 for n in _ints(opt["hosts"])]
    for n_hosts, steps in beds:
        bed = Bed(work / "bed", n_hosts, say=say, profile_dir=args.profile)
        t0 = time.perf_counter()
        try:
            try:
                bed.up()
            except (BenchError, RuntimeError, OSError, TimeoutError) as exc:
                say(f"!! the test bed of {n_hosts} hosts did not come up: {exc}")
                failures.extend(name for name, _step in steps)
                continue
            say(f"  (test bed: {n_hosts} hosts up in {time.perf_counter() - t0:.0f} s, "
                f"{bed.workdir})")
            for name, step in steps:
                attempt(name, lambda step=step, bed=bed: step(bed))
        finally:
            bed.down()
    return results, failures


def main(argv: list[str] | None = None) -> int:
    _results, failures = run(argv)
    if failures:
        say(f"!! benchmarks that could not run: {', '.join(failures)}")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
