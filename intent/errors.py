"""Errors of the intent layer, each mapped to one REST status and one CLI exit code."""

from __future__ import annotations


class IntentError(Exception):
    """Base class: a request about intent could not be carried out."""

    http_status = 400
    exit_code = 1

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("; ".join(self.problems))


class ValidationError(IntentError):
    """The input is invalid; ``problems`` lists every issue with its path."""

    http_status = 400
    exit_code = 2


class NotFoundError(IntentError):
    """A named object does not exist."""

    http_status = 404
    exit_code = 3


class ConflictError(IntentError):
    """The request conflicts with the stored intent (duplicate, in use, lost a race)."""

    http_status = 409
    exit_code = 4


class PoolExhausted(ConflictError):
    """A pool (VLAN ids, VNIs, subnets, IPs) has no free value left.  ``pool`` names it."""

    def __init__(self, pool: str):
        self.pool = pool
        super().__init__(f"pool exhausted: {pool}")
