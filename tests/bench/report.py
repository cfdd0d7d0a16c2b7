"""What the benchmarks print and hand to the summary."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class Result:
    """One printed line and the numbers the summary compares with the targets."""

    kind: str
    line: str
    values: dict = field(default_factory=dict)


def say(text: str) -> None:
    print(text, flush=True)


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    s = sorted(samples)
    return s[max(0, math.ceil(q * len(s)) - 1)]
