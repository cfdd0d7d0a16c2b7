"""``python -m tests.bench``: every benchmark in turn, then the measured lines beside the targets
of issue 10.  Needs root (the controller benchmarks bring up a test bed of real OVS hosts).

    python -m tests.bench                      # full sizes (``make bench``)
    python -m tests.bench --quick              # small sizes, a smoke run of every benchmark
    python -m tests.bench --only resync --resync 10000 --profile /tmp/prof

Flags other than ``--quick`` go to :mod:`tests.bench.bench_controller` (``--help`` there).
Exit status 0 when every benchmark ran (whatever the numbers), 1 when one could not run.
"""

from __future__ import annotations

import sys
import time

from tests.bench import (
    bench_controller,
    bench_ofctl,
    bench_policy,
    bench_router,
    bench_sync,
    targets,
)


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if {"-h", "--help"} & set(args):
        print(__doc__)
        bench_controller.parser().print_help()
        return 0
    quick = "--quick" in args
    t0 = time.perf_counter()
    print("== bench_ofctl: pure compute (no switch, no store)", flush=True)
    bench_ofctl.main(["--quick"] if quick else [])
    print("== bench_policy: policy entries and per-change cost (pure compute)", flush=True)
    bench_policy.main(["--quick"] if quick else [])
    print("== bench_router: entries per host for networks on one router (pure compute)",
          flush=True)
    bench_router.main(["--quick"] if quick else [])
    print("== bench_sync: a full sync's and a restart's pure code, one host (no switch)",
          flush=True)
    bench_sync.main(["--quick"] if quick else [])
    print("== bench_controller: real OVS hosts, stock etcd, the controller as a process",
          flush=True)
    results, failures = bench_controller.run(args)
    print(f"== summary: measured vs issue 10's targets ({time.perf_counter() - t0:.0f} s in all;"
          " a shared machine: numbers are indicative)", flush=True)
    for line in targets.summary(results, quick):
        print(line)
    if failures:
        print(f"!! benchmarks that could not run: {', '.join(failures)}")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
