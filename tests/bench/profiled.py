"""Run the controller under cProfile; SIGTERM writes the profile and a text summary, then exits.

    python -m tests.bench.profiled OUT.prof -- [python -m ryu_apps flags]

SIGUSR2 writes what was profiled since the start (or the previous SIGUSR2) to
``OUT.part<k>.prof`` and starts afresh: the bench marks each measured window that way.

(``python -m cProfile -m ryu_apps`` writes nothing: the controller never returns from its hub,
and dies on SIGTERM without running ``atexit``.)  ``OUT.txt`` gets the top functions by own
and by cumulative time.  Eventlet switches greenthreads under one profiler, so cumulative times
of hub functions are mixed; own times (``tottime``) are exact.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import runpy
import signal
import sys
from pathlib import Path


def _write(prof: cProfile.Profile, out: Path) -> None:
    prof.disable()
    out.parent.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(str(out))
    text = io.StringIO()
    stats = pstats.Stats(str(out), stream=text)
    for order in ("tottime", "cumulative"):
        text.write(f"==== by {order}\n")
        stats.sort_stats(order).print_stats(40)
    out.with_suffix(".txt").write_text(text.getvalue())


def main(argv: list[str]) -> None:
    if len(argv) < 2 or argv[1] != "--":
        sys.exit("usage: python -m tests.bench.profiled OUT.prof -- [ryu_apps flags]")
    out = Path(argv[0])
    current = [cProfile.Profile()]
    parts = [0]

    def stop(_sig: int, _frame: object) -> None:
        _write(current[0], out)
        os._exit(0)

    def part(_sig: int, _frame: object) -> None:
        parts[0] += 1
        _write(current[0], out.with_suffix(f".part{parts[0]}.prof"))
        current[0] = cProfile.Profile()
        current[0].enable()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGUSR2, part)
    sys.argv = ["ryu_apps", *argv[2:]]
    current[0].enable()
    runpy.run_module("ryu_apps", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
