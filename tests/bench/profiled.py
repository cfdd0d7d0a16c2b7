"""Run the controller under cProfile; SIGTERM writes the profile and a text summary, then exits.

    python -m tests.bench.profiled OUT.prof -- [python -m ryu_apps flags]

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
    prof = cProfile.Profile()

    def stop(_sig: int, _frame: object) -> None:
        _write(prof, out)
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    sys.argv = ["ryu_apps", *argv[2:]]
    prof.enable()
    runpy.run_module("ryu_apps", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main(sys.argv[1:])
