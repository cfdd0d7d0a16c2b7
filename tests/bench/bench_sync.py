"""Benchmark of the pure code of a full sync and a restart: ``python -m tests.bench.bench_sync
[--quick] [--flows N,..]``.

One host holding about N flows (4 per plugged endpoint, networks of 500 endpoints, as
``bench_controller``'s resync and restart scenarios lay them out), with the controller's
garbage-collector settings, and per step the median CPU seconds over a few runs (CPU time, not
wall-clock: the machine is shared; medians are indicative):

* ``load``: an engine from the resolved intent (what a starting controller does first);
* ``digest``: the host's input digest (checked against the marker on connect, and per send);
* ``build``: the full build of the host's table (``engine.table(host)``);
* ``encode``: every flow-mod and group-mod of an empty switch's resync, packed;
* ``parse``: a flow-stats reply holding every flow, parsed back into entries;
* ``diff``: the read-back entries against the table (nothing to change: a restart).

Then the input digest of every host of a wide cluster (H hosts with 50 endpoints each in
networks spanning 10 hosts, and one network over all H): what a revision that touches every host
costs in digests alone (one per send).
"""

from __future__ import annotations

import argparse
import gc
import statistics
import struct
import time
from collections.abc import Callable
from dataclasses import replace

from intent.model import VXLAN
from ofctl import wire
from ofctl.engine import Engine, engine_from
from ofctl.model import Flow
from ryu_apps.manager import tune_gc
from tests.unit.ofctl_fixtures import ep, generated_intent, host, net, ports_for, resolved

PER_NETWORK = 500
STEPS = ("load", "digest", "build", "encode", "parse", "diff")


def one_host_intent(n_flows: int):
    """Host h1 with ``n_flows // 4`` endpoints in VXLAN networks of 500 (plus an idle h2)."""
    n_eps = n_flows // 4
    nets, eps = [], []
    for k in range((n_eps + PER_NETWORK - 1) // PER_NETWORK):
        nets.append(net(f"r{k}", "t", VXLAN, 10001 + k, "10.0.0.0/16"))
        for j in range(min(PER_NETWORK, n_eps - k * PER_NETWORK)):
            eps.append(ep(f"r{k}", f"c{j}", "h1", f"10.0.{j // 250}.{j % 250 + 1}"))
    return resolved([host("h1", 1), host("h2", 2)], nets, eps)


def stats_reply(flows: list[Flow]) -> bytes:
    """A flow-stats reply body holding ``flows`` (as a switch sends it back, modulo OVS's own
    field order)."""
    out = []
    for f in flows:
        body = wire.flow_add(f)[48:]
        out.append(struct.pack("!HBxIIHHHH4xQQQ", 48 + len(body), f.table, 1, 2, f.priority,
                               0, 0, 0, f.cookie, 3, 4) + body)
    return b"".join(out)


def wire_caches_clear() -> None:
    """Forget what the packer and the parser have seen (a fresh process)."""
    for name in ("_FIELDS_SEEN", "_ACTIONS_SEEN", "_PACKED_FIELDS", "_PACKED_ACTIONS"):
        cache = getattr(wire, name, None)
        if cache is not None:  # (a build of ofctl without these caches: nothing to do)
            cache.clear()


def _median_s(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        gc.collect()
        t0 = time.process_time()
        fn()
        times.append(time.process_time() - t0)
    return statistics.median(times)


def bench(n_flows: int, repeat: int = 3) -> dict:
    intent = one_host_intent(n_flows)
    ports = ports_for(intent)
    ports = {h: p for h, p in ports.items() if h == "h1"}
    engine = engine_from(intent, ports)
    out: dict = {"flows_wanted": n_flows}
    out["load"] = _median_s(lambda: engine_from(intent, ports), repeat)
    out["digest"] = _median_s(lambda: engine.digest("h1"), repeat)

    def build() -> Engine:
        engine.drop_table("h1")
        return engine.table("h1")

    out["build"] = _median_s(build, repeat)
    table = engine.table("h1")
    out["flows"], out["groups"] = len(table.flows), len(table.groups)

    def encode() -> float:
        fresh = build()  # new entries: nothing cached on them
        wire_caches_clear()
        gc.collect()
        t0 = time.process_time()
        for g in fresh.groups.values():
            wire.group_mod(g, wire.OFPGC_ADD)
        for f in fresh.flows.values():
            wire.flow_add(f)
        return time.process_time() - t0

    out["encode"] = statistics.median(encode() for _ in range(repeat))
    reply = stats_reply(list(engine.table("h1").flows.values()))

    def parse() -> list:
        wire_caches_clear()  # as a restarted controller parses: nothing seen yet
        return wire.parse_flow_stats(reply)

    out["parse"] = _median_s(parse, repeat)
    have = {f.key: f for f in wire.parse_flow_stats(reply)}
    want = engine.table("h1").flows

    def diff() -> int:
        changed = [k for k, f in want.items() if have.get(k) != f]
        return len(changed) + sum(1 for k in have if k not in want)

    out["diff"] = _median_s(diff, repeat)
    if diff():
        raise AssertionError("the read-back flows differ from the table")
    return out


def bench_digest(n_hosts: int, repeat: int = 3) -> float:
    """CPU ms for the digest of every host of an ``n_hosts`` cluster (see the docstring)."""
    intent = generated_intent(n_hosts, n_hosts * 49, eps_per_net=49, hosts_per_net=10)
    wide = net("wide", "t0", VXLAN, 9999, "10.9.0.0/16")
    extra = [ep("wide", f"w{i}", f"h{i}", f"10.9.{i // 250}.{i % 250 + 1}")
             for i in range(n_hosts)]
    intent = replace(intent, networks=intent.networks + (wide,),
                     endpoints=intent.endpoints + tuple(extra))
    engine = engine_from(intent, ports_for(intent))
    return 1e3 * _median_s(lambda: [engine.digest(h.name) for h in intent.hosts], repeat)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        prog="python -m tests.bench.bench_sync",
        description="pure-CPU cost of a full sync and a restart of one host (no switch)",
        epilog="examples:\n  python -m tests.bench.bench_sync --quick\n"
               "  python -m tests.bench.bench_sync --flows 65000 --repeat 5",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="10k flows only (a smoke run)")
    ap.add_argument("--flows", default="10000,50000,100000",
                    help="comma-separated host table sizes (default: %(default)s)")
    ap.add_argument("--repeat", type=int, default=3, help="runs per step (median)")
    args = ap.parse_args(argv)
    tune_gc()
    sizes = [10000] if args.quick else [int(x) for x in args.flows.split(",")]
    print(f"{'flows':>8} {'groups':>7} " + " ".join(f"{s + '_s':>9}" for s in STEPS)
          + "  (median CPU s)")
    for n in sizes:
        r = bench(n, 1 if args.quick else args.repeat)
        print(f"{r['flows']:>8} {r['groups']:>7} " + " ".join(f"{r[s]:>9.3f}" for s in STEPS),
              flush=True)
    for n in (20,) if args.quick else (20, 100):
        print(f"digest of every host, {n} hosts x 50 endpoints: "
              f"{bench_digest(n, 1 if args.quick else args.repeat):.1f} ms CPU (median)")


if __name__ == "__main__":
    main()
