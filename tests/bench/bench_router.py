"""Entries per host for N networks on one router: ``python -m tests.bench.bench_router``.

N networks (half VXLAN, half VLAN) of E endpoints each, spread over H hosts, all on one router
(and once without it, for comparison): prints the flows and groups per host, the full compute
time of one host's tables, and what one endpoint add changes on a host of the domain (entries,
time).
"""

from __future__ import annotations

import argparse
import statistics
import time

from intent.model import VLAN, VXLAN, EndpointSpec, HostSpec, NetworkSpec, RouterSpec
from ofctl.engine import Engine


def build(networks: int, endpoints: int, hosts: int, routed: bool) -> Engine:
    e = Engine(check=False)
    for h in range(hosts):
        e.set_host(f"h{h}", HostSpec(f"h{h}", vtep_ip=f"192.168.0.{h + 1}"))
        e.set_host_ports(f"h{h}", 100, 200)
    names = []
    for n in range(networks):
        kind = VXLAN if n % 2 else VLAN
        name = f"n{n}"
        names.append(name)
        e.set_network(name, NetworkSpec(name, "t", kind, 5000 + n if kind == VXLAN else 100 + n,
                                        f"10.{n}.0.0/24", f"10.{n}.0.1", zone=n + 1))
        for i in range(endpoints):
            eid = f"{name}-c{i}"
            host = f"h{(n + i) % hosts}"
            ip = f"10.{n}.0.{i + 2}"
            e.set_endpoint(eid, EndpointSpec(eid, name, f"c{i}", host, ip,
                                             f"02:00:0a:{n:02x}:00:{i + 2:02x}"))
            e.set_port(host, eid, 1000 + n * endpoints + i)
    if routed:
        e.set_router("t", "r1", RouterSpec("t", "r1", 1, tuple(names)))
    return e


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    args = ap.parse_args(argv)
    sizes = [(10, 8, 4)] if args.quick else [(10, 20, 4), (10, 50, 10)]
    for networks, endpoints, hosts in sizes:
        for routed in (False, True):
            e = build(networks, endpoints, hosts, routed)
            t0 = time.perf_counter()
            counts = []
            for h in range(hosts):
                t = e.table(f"h{h}")
                counts.append((len(t.flows), len(t.groups)))
                t.take()
            full = (time.perf_counter() - t0) / hosts
            costs, changed = [], []
            for k in range(20):
                eid = f"n0-new{k}"
                t1 = time.perf_counter()
                e.set_endpoint(eid, EndpointSpec(eid, "n0", f"new{k}", "h1", f"10.0.0.{200 + k}",
                                                 f"02:00:0a:00:01:{k:02x}"))
                delta = e.refresh("h0").take()
                costs.append((time.perf_counter() - t1) * 1e3)
                changed.append(len(delta))
            flows = sorted(c[0] for c in counts)
            print(f"router networks={networks} endpoints/network={endpoints} hosts={hosts} "
                  f"routed={'yes' if routed else 'no'}: flows/host {flows[0]}-{flows[-1]} "
                  f"groups/host {counts[0][1]} full {full * 1e3:.1f} ms/host; "
                  f"one endpoint add: {statistics.median(changed):.0f} entries on a domain host, "
                  f"p50 {statistics.median(costs):.2f} ms", flush=True)


if __name__ == "__main__":
    main()
