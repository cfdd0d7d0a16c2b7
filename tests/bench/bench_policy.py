"""Policy entries grow with rules + members: ``python -m tests.bench.bench_policy``.

For G groups of M members and R rules per group's policy (one policy per group, half of its
rules naming another group as peer), prints the entries on one host, the full compute time of
that host's tables, and the incremental cost of one rule change and of one member move.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import time
from dataclasses import replace

from intent.model import (
    ALLOW,
    DENY,
    IN,
    OUT,
    PEER_GROUP,
    EndpointGroupSpec,
    EndpointSpec,
    HostSpec,
    NetworkSpec,
    PolicyConfig,
    RuleConfig,
)
from ofctl.engine import Engine

HOSTS = 10


def build(groups: int, members: int, rules: int) -> tuple[Engine, float]:
    """One tenant, one network per 250 members, members spread over HOSTS hosts."""
    e = Engine(check=False)
    for h in range(HOSTS):
        e.set_host(f"h{h}", HostSpec(f"h{h}", vtep_ip=f"192.168.0.{h + 1}"))
        e.set_host_ports(f"h{h}", 100, None)
    total = groups * members
    for n in range((total + 249) // 250):
        e.set_network(f"n{n}", NetworkSpec(f"n{n}", "t", "vxlan", 5000 + n,
                                           f"10.{n // 256}.{n % 256}.0/24",
                                           f"10.{n // 256}.{n % 256}.1", zone=n + 1))
    for i in range(total):
        n, k = i // 250, i % 250
        eid = f"n{n}-c{i}"
        host = f"h{i % HOSTS}"
        e.set_endpoint(eid, EndpointSpec(eid, f"n{n}", f"c{i}", host,
                                         f"10.{n // 256}.{n % 256}.{k + 2}",
                                         f"02:00:00:{n % 256:02x}:{k // 256:02x}:{k % 256:02x}",
                                         group=f"g{i % groups}"))
        e.set_port(host, eid, 1000 + i)
    for g in range(groups):
        e.set_group("t", f"g{g}", EndpointGroupSpec("t", f"g{g}", g + 1, (f"p{g}",)))
    for g in range(groups):
        rs = tuple(RuleConfig(r + 1, r % 100 + 1, IN if r % 2 else OUT,
                              DENY if r % 3 == 0 else ALLOW,
                              PEER_GROUP if r % 2 else None,
                              f"g{(g + r) % groups}" if r % 2 else None, "tcp",
                              8000 + r, 8000 + r) for r in range(rules))
        e.set_policy("t", f"p{g}", PolicyConfig(f"p{g}", "t", rs))
    gc.collect()
    t0 = time.perf_counter()
    table = e.table("h0")
    return e, time.perf_counter() - t0 if table else 0.0


def run(groups: int, members: int, rules: int) -> dict:
    e, full = build(groups, members, rules)
    table = e.tables["h0"]
    kinds: dict[str, int] = {}
    for owner, frag in table.fragments.items():
        kinds[owner[0]] = kinds.get(owner[0], 0) + len(frag.flows)
    table.take()
    times = []
    p0 = e.policies[("t", "p0")]
    for i in range(5):  # one rule added and removed again
        extra = RuleConfig(999, 50, IN, ALLOW, PEER_GROUP, "g1", "udp", 53 + i, 53 + i)
        t0 = time.perf_counter()
        e.set_policy("t", "p0", replace(p0, rules=p0.rules + (extra,)))
        d = e.refresh("h0").take()
        times.append(time.perf_counter() - t0)
        e.set_policy("t", "p0", p0)
        e.refresh("h0").take()
    moves = []
    ep = e.endpoints["n0-c0"]
    for i in range(5):
        t0 = time.perf_counter()
        e.set_endpoint(ep.id, replace(ep, group=f"g{1 + i % max(1, groups - 1)}"))
        d2 = e.refresh("h0").take()
        moves.append(time.perf_counter() - t0)
    return {"groups": groups, "members": members, "rules": rules,
            "flows": len(table.flows), "rule_flows": kinds.get("rule", 0),
            "member_flows": kinds.get("endpoint", 0), "full_s": full,
            "rule_change_ms": statistics.median(times) * 1e3, "rule_delta": len(d),
            "move_ms": statistics.median(moves) * 1e3, "move_delta": len(d2)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="small sizes only")
    args = ap.parse_args(argv)
    sizes = [(10, 5, 4), (20, 5, 4)] if args.quick else [
        (100, 50, 20), (200, 50, 20), (100, 100, 20), (100, 50, 40)]
    print(f"policy entries on one of {HOSTS} hosts (rules + members, not rules x members):")
    for g, m, r in sizes:
        x = run(g, m, r)
        print(f"policy groups={g} members={m} rules={r}: entries {x['flows']} "
              f"(rule {x['rule_flows']}, endpoint {x['member_flows']}), full compute "
              f"{x['full_s']:.2f} s, one rule change {x['rule_change_ms']:.2f} ms "
              f"({x['rule_delta']} entries), one member move {x['move_ms']:.2f} ms "
              f"({x['move_delta']} entries)")


if __name__ == "__main__":
    main()
