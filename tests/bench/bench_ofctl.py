"""Benchmark of ofctl.compute: ``python -m tests.bench.bench_ofctl`` prints times and counts."""

from __future__ import annotations

import gc
import statistics
import time

from ofctl.compute import HostTables, IntentIndex, compute_host
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
    tables = {h: HostTables(idx, ports[h]) for h in touched}
    new = ep("n0", "bench-new", target, "10.0.200.1")
    t0 = time.perf_counter()
    idx2 = idx.with_endpoint(new)
    index_inc_ms = (time.perf_counter() - t0) * 1000
    idx_back = idx2.with_endpoint(new, remove=True)
    per_host = []
    for h in touched:
        p2 = ports[h].with_endpoint(new.id, 9999) if h == target else ports[h]
        samples = []
        for _ in range(7):  # add, then remove: median of the adds
            t0 = time.perf_counter()
            tables[h].update(idx2, ["n0"], p2)
            samples.append((time.perf_counter() - t0) * 1000)
            tables[h].update(idx_back, ["n0"], ports[h])
        per_host.append(statistics.median(samples))
    return {"hosts": n_hosts, "endpoints": len(intent.endpoints),
            "networks": len(intent.networks), "index_ms": index_ms,
            "full_host_ms": full_ms, "full_host_unchecked_ms": full_unchecked_ms,
            "flows_h1": len(state.flows), "groups_h1": len(state.groups),
            "flows_max": max(counts), "flows_mean": statistics.mean(counts),
            "inc_index_ms": index_inc_ms, "inc_hosts": len(touched),
            "inc_per_host_ms_max": max(per_host)}



def main() -> None:
    cols = ("hosts", "endpoints", "networks", "index_ms", "full_host_ms",
            "full_host_unchecked_ms", "flows_h1", "groups_h1", "flows_max", "flows_mean",
            "inc_index_ms", "inc_hosts", "inc_per_host_ms_max")
    print(" ".join(f"{c:>10}" for c in cols))
    for n in (10, 100, 500):
        r = bench(n)
        gc.collect()
        print(" ".join(f"{r[c]:>10.2f}" if isinstance(r[c], float) else f"{r[c]:>10}"
                       for c in cols))


if __name__ == "__main__":
    main()
