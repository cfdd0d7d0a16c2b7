"""Name rules for intent objects and runtime ids (a name becomes an etcd key segment)."""

from __future__ import annotations

import re

NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
RUNTIME_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
NAME_RULE = "letters, digits, '_', '.', '-', starting with a letter or digit, at most 63 long"
RUNTIME_ID_RULE = ("letters, digits, '_', '.', '-', starting with a letter or digit, at most "
                   "128 long")


def name_problem(value: str) -> str | None:
    """Why ``value`` is not a valid object name (tenant, network, host, container …)."""
    if NAME_RE.fullmatch(value):
        return None
    return f"not a valid name ({NAME_RULE})"


def runtime_id_problem(value: str) -> str | None:
    """Why ``value`` is not a valid runtime id (``AttachUUID``, a container id)."""
    if RUNTIME_ID_RE.fullmatch(value):
        return None
    return f"not a valid runtime id ({RUNTIME_ID_RULE})"
