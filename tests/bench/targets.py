"""The targets of issue 10 beside each measured line (benchmarks, not timed tests: a missed
target is reported, it does not fail the run)."""

from __future__ import annotations

from tests.bench.report import Result

P50_MS, P99_MS, FLAT, CPU_MS, CPU_AT = 10.0, 30.0, 1.5, 2.0, 5000
RATIO = 2.0
RESTART_S = 3.0
BULK_S = 2.0
SIZES = {"resync": (10000, 50000), "restart": (100000,), "bulk": (5000,)}


def _verdict(checks: list[tuple[str, bool]]) -> str:
    text = ", ".join(name for name, _ok in checks)
    missed = [name.split(" <=")[0].split(" ==")[0] for name, ok in checks if not ok]
    return f"target {text}: " + (f"MISSED ({', '.join(missed)})" if missed else "met")


def _latency_checks(r: Result, base_p50: float | None) -> list[tuple[str, bool]]:
    v = r.values
    checks = [(f"p50 <= {P50_MS:g} ms", v["p50"] <= P50_MS),
              (f"p99 <= {P99_MS:g} ms", v["p99"] <= P99_MS)]
    if v["endpoints"] >= CPU_AT:
        checks.append((f"cpu <= {CPU_MS:g} ms/change", v["cpu"] <= CPU_MS))
    if base_p50 is not None:
        checks.append((f"p50 <= {FLAT:g} x p50 at 0 ({FLAT * base_p50:.1f} ms)",
                       v["p50"] <= FLAT * base_p50))
    return checks


def summary(results: list[Result], quick: bool = False) -> list[str]:
    """One line per result: the measured line, then the targets and whether they were met."""
    lat2 = {r.values["endpoints"]: r for r in results
            if r.kind == "latency" and r.values["hosts"] == 2 and r.values["span"] is None}
    base = lat2[0].values["p50"] if 0 in lat2 else None
    largest = max(lat2) if lat2 else None
    out = []
    if quick:
        out.append("(quick run: sizes below those the targets name; verdicts are indicative)")
    for r in results:
        v = r.values
        if r.kind == "latency":
            flat = base if (r.values["hosts"] == 2 and v["span"] is None and
                            v["endpoints"] == largest and largest) else None
            checks = _latency_checks(r, flat)
        elif r.kind == "resync":
            checks = [(f"ratio <= {RATIO:g}", v["ratio"] <= RATIO)]
        elif r.kind == "restart":
            checks = [("changes == 0", v["changes"] == 0),
                      (f"realized <= {RESTART_S:g} s", v["seconds"] <= RESTART_S)]
        elif r.kind == "bulk":
            checks = [(f"time <= {BULK_S:g} s", v["seconds"] <= BULK_S)]
        else:
            out.append(f"{r.line}  | no target")
            continue
        size = v.get("flows", v.get("endpoints"))
        note = "" if r.kind not in SIZES or size in SIZES[r.kind] else \
            f" [target set at {', '.join(map(str, SIZES[r.kind]))}]"
        out.append(f"{r.line}  | {_verdict(checks)}{note}")
    return out
