"""Benchmark of ofctl.compute: ``python -m tests.bench.bench_ofctl [--quick]`` prints times and
counts (pure compute: the full recompute of one host, and the incremental engine's cost of one
endpoint add per touched host)."""

from __future__ import annotations

import argparse
import gc
import statistics
import time

from ofctl.compute import IntentIndex, compute_host
from ofctl.engine import engine_from
from tests.unit.ofctl_fixtures import ep, generated_intent, ports_for


def _ms(fn, repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def bench(n_hosts: int, eps_per_host: int = 50) -> dict:
    intent = generated_intent(n_hosts, n_hosts * eps_per_host)
    ports = ports_for(intent)
    t0 = time.perf_counter()
    idx = IntentIndex(intent)
    index_ms = (time.perf_counter() - t0) * 1000
    host = "h1"
    full_ms = _ms(lambda: compute_host(intent, ports[host], idx))
    full_unchecked_ms = _ms(lambda: compute_host(intent, ports[host], idx, check=False))
    state = compute_host(intent, ports[host], idx)
    counts = [len(compute_host(intent, p, idx).flows) for p in list(ports.values())[:50]]
    # incremental: one endpoint added to network n0 on a host of that network
    target = next(e for e in intent.endpoints if e.network == "n0").host
    touched = sorted({e.host for e in intent.endpoints if e.network == "n0"})
    t0 = time.perf_counter()
    engine = engine_from(intent, {h: ports[h] for h in touched})
    index_inc_ms = (time.perf_counter() - t0) * 1000
    for h in touched:
        engine.table(h).take()
    new = ep("n0", "bench-new", target, "10.0.200.1")
    per_host = []
    for _ in range(7):  # add, then remove: median of the adds, max over the touched hosts
        t0 = time.perf_counter()
        engine.set_endpoint(new.id, new)
        engine.set_port(target, new.id, 9999)
        for h in touched:
            engine.refresh(h).take()
        per_host.append((time.perf_counter() - t0) * 1000 / len(touched))
        engine.set_endpoint(new.id, None)
        engine.set_port(target, new.id, None)
        for h in touched:
            engine.refresh(h).take()
    return {"hosts": n_hosts, "endpoints": len(intent.endpoints),
            "networks": len(intent.networks), "index_ms": index_ms,
            "full_host_ms": full_ms, "full_host_unchecked_ms": full_unchecked_ms,
            "flows_h1": len(state.flows), "groups_h1": len(state.groups),
            "flows_max": max(counts), "flows_mean": statistics.mean(counts),
            "engine_load_ms": index_inc_ms, "inc_hosts": len(touched),
            "inc_per_host_ms": statistics.median(per_host)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m tests.bench.bench_ofctl",
                                 description="ofctl compute benchmark (no switch, no store)")
    ap.add_argument("--quick", action="store_true", help="10 hosts only (a smoke run)")
    args = ap.parse_args(argv)
    cols = ("hosts", "endpoints", "networks", "index_ms", "full_host_ms",
            "full_host_unchecked_ms", "flows_h1", "groups_h1", "flows_max", "flows_mean",
            "engine_load_ms", "inc_hosts", "inc_per_host_ms")
    print(" ".join(f"{c:>10}" for c in cols))
    for n in (10,) if args.quick else (10, 100, 500):
        r = bench(n)
        gc.collect()
        print(" ".join(f"{r[c]:>10.2f}" if isinstance(r[c], float) else f"{r[c]:>10}"
                       for c in cols))


if __name__ == "__main__":
    main()
