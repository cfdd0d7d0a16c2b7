"""Strict parsing of untrusted JSON text (files given to netdcli, REST request bodies).

Whatever the bytes are, the answer is a value or a :class:`intent.errors.ValidationError` whose
one message names the source (``where``) and the problem: not UTF-8, invalid JSON (line, column),
nested deeper than ``max_depth``, a number too long or out of range, ``NaN``/``Infinity``, an
unpaired UTF-16 surrogate.  Never a ``RecursionError`` or another exception.
"""

from __future__ import annotations

import json
import math
import re
from itertools import accumulate
from typing import Any

from intent.errors import ValidationError

MAX_DEPTH = 32  # an intent document needs 7 levels (Tenants[].Networks[].Endpoints[].key)
MAX_NUMBER_DIGITS = 64
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_DEPTH_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}


class _Refused(ValueError):
    """A value the JSON hooks refuse (raised from inside ``json.loads``)."""


def nesting_depth(text: str) -> int:
    """How deeply arrays/objects nest in ``text`` (brackets inside strings do not count)."""
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", text))
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _int(literal: str) -> int:
    digits = len(literal.lstrip("-"))
    if digits > MAX_NUMBER_DIGITS:
        raise _Refused(f"number {literal[:12]}… has {digits} digits "
                       f"(at most {MAX_NUMBER_DIGITS})")
    return int(literal)


def _float(literal: str) -> float:
    if len(literal) > MAX_NUMBER_DIGITS * 2:
        raise _Refused(f"number {literal[:12]}… is {len(literal)} characters long")
    value = float(literal)
    if not math.isfinite(value):
        raise _Refused(f"number {literal} is out of range")
    return value


def _constant(literal: str) -> Any:
    raise _Refused(f"{literal} is not valid JSON")


def decode_text(data: bytes | str, where: str) -> str:
    """``data`` as text: bytes must be UTF-8 (a leading BOM is dropped)."""
    if isinstance(data, str):
        return data
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(f"{where}: not UTF-8 text (byte {data[exc.start]:#04x} at offset "
                              f"{exc.start})") from None


def parse_json(data: bytes | str, where: str, max_depth: int = MAX_DEPTH) -> Any:
    """Parse ``data`` (UTF-8 bytes or text) strictly; every problem is one ValidationError."""
    text = decode_text(data, where)
    depth = nesting_depth(text)
    if depth > max_depth:
        raise ValidationError(f"{where}: JSON nested {depth} levels deep "
                              f"(at most {max_depth})")
    try:
        value = json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                              f"{exc.msg}") from None
    except _Refused as exc:
        raise ValidationError(f"{where}: {exc}") from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise ValidationError(f"{where}: JSON nested too deeply (at most {max_depth})") from None
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValidationError(f"{where}: a string holds an unpaired UTF-16 surrogate "
                              f"({exc.object[exc.start]!r})") from None
    return value
