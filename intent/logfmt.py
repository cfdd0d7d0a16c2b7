"""Structured log lines: ``event=sync host=host1 changes=3`` (logfmt style, key=value).

Every line an operator may grep or feed to a log pipeline names its event and the objects it
concerns.  Values with spaces, quotes, ``=`` or control characters are JSON-quoted, so one line
always parses back into the same pairs (:func:`parse`).
"""

from __future__ import annotations

import json
import re

_PLAIN = re.compile(r"[^\s\"=\\\x00-\x1f\x7f]+")
_PAIR = re.compile(r'(\w[\w.-]*)=("(?:[^"\\]|\\.)*"|\S*)')


def _value(v: object) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        v = f"{v:.4g}"
    text = str(v)
    return text if _PLAIN.fullmatch(text) else json.dumps(text)


def logline(event: str, **fields: object) -> str:
    """One structured line: ``event=<event>`` then the fields in the order given."""
    return " ".join([f"event={_value(event)}"] +
                    [f"{k}={_value(v)}" for k, v in fields.items()])


def parse(line: str) -> dict[str, str]:
    """The key=value pairs of a line written by :func:`kv` (anything else is ignored)."""
    out = {}
    for key, raw in _PAIR.findall(line):
        out[key] = json.loads(raw) if raw.startswith('"') else raw
    return out
