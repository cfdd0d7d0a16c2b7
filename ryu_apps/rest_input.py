"""What the REST API accepts from a request: path names, query parameters, the body.

Each check raises :class:`HttpError` with a message that names the offending parameter; the API
answers it as ``{"errors": [...]}``.  The same declarations feed the OpenAPI document
(:mod:`ryu_apps.openapi`), so what is documented is exactly what is accepted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from intent.errors import ValidationError
from intent.jsontext import MAX_DEPTH, parse_json

MAX_BODY = 4 * 1024 * 1024  # bytes; etcd's own request limit is 1.5 MiB
MAX_SECONDS = 3600
MAX_REVISION = 2**63 - 1  # etcd revisions are int64
NAME_MAX = 63
ENDPOINT_ID_MAX = 2 * NAME_MAX + 1  # <network>-<container>
NAME_PATTERN = f"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{NAME_MAX - 1}}}"
ENDPOINT_ID_PATTERN = f"[A-Za-z0-9][A-Za-z0-9_.-]{{0,{ENDPOINT_ID_MAX - 1}}}"


@dataclass(frozen=True)
class PathParam:
    """A name a route's path carries."""

    pattern: str
    max_length: int
    what: str


PATH_PARAMS: dict[str, PathParam] = {
    "tenant": PathParam(NAME_PATTERN, NAME_MAX, "a tenant name"),
    "network": PathParam(NAME_PATTERN, NAME_MAX, "a network name"),
    "host": PathParam(NAME_PATTERN, NAME_MAX, "a host name"),
    "id": PathParam(ENDPOINT_ID_PATTERN, ENDPOINT_ID_MAX, "an endpoint id <network>-<container>"),
    "policy": PathParam(NAME_PATTERN, NAME_MAX, "a policy name"),
    "router": PathParam(NAME_PATTERN, NAME_MAX, "a router name"),
    "group": PathParam(NAME_PATTERN, NAME_MAX, "an endpoint group name"),
    "rule": PathParam("[0-9]{1,9}", 9, "a rule id (a number)"),
    "qosprofile": PathParam(NAME_PATTERN, NAME_MAX, "a QoS profile name"),
}
_PATH_RE = {name: re.compile(p.pattern) for name, p in PATH_PARAMS.items()}
_SECONDS_RE = re.compile(r"[0-9]{1,10}(\.[0-9]{1,9})?")
_INT_RE = re.compile(r"[0-9]{1,19}")


class HttpError(Exception):
    """An answer other than 2xx: ``status`` and the problems to list under ``errors``."""

    def __init__(self, status: int, problems: list[str], headers: Mapping[str, str] | None = None):
        super().__init__("; ".join(problems))
        self.status = status
        self.problems = problems
        self.headers = dict(headers or {})


def show(value: str, limit: int = 70) -> str:
    """``value`` quoted and escaped for a message (long values cut)."""
    return json.dumps(value if len(value) <= limit else value[:limit] + "…", ensure_ascii=False)


@dataclass(frozen=True)
class QueryParam:
    """One query parameter: ``kind`` is ``seconds``, ``revision``, ``choice``, ``port``
    (1-65535) or ``text`` (printable, at most 253 characters)."""

    name: str
    kind: str
    description: str
    required: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None

    def parse(self, raw: str) -> Any:
        """The parameter's value from its text; HttpError 400 naming it."""
        if self.kind == "choice":
            if raw not in self.choices:
                raise HttpError(400, [f"query parameter {self.name}: {show(raw)} is not "
                                      f"{', '.join(self.choices[:-1])} or {self.choices[-1]}"])
            return raw
        if self.kind == "revision":
            if not _INT_RE.fullmatch(raw) or int(raw) > MAX_REVISION:
                raise HttpError(400, [f"query parameter {self.name}: expected an integer "
                                      f"0-{MAX_REVISION}, got {show(raw)}"])
            return int(raw)
        if self.kind == "port":
            if not _INT_RE.fullmatch(raw) or not 1 <= int(raw) <= 65535:
                raise HttpError(400, [f"query parameter {self.name}: expected a port 1-65535, "
                                      f"got {show(raw)}"])
            return int(raw)
        if self.kind == "text":
            if not raw or len(raw) > 253 or not raw.isprintable():
                raise HttpError(400, [f"query parameter {self.name}: expected 1-253 printable "
                                      f"characters, got {show(raw)}"])
            return raw
        if not _SECONDS_RE.fullmatch(raw) or float(raw) > MAX_SECONDS:
            raise HttpError(400, [f"query parameter {self.name}: expected seconds "
                                  f"0-{MAX_SECONDS}, got {show(raw)}"])
        return float(raw)

    def schema(self) -> dict[str, Any]:
        """Its OpenAPI schema."""
        if self.kind == "choice":
            out: dict[str, Any] = {"type": "string", "enum": list(self.choices)}
        elif self.kind == "revision":
            out = {"type": "integer", "minimum": 0, "maximum": MAX_REVISION}
        elif self.kind == "port":
            out = {"type": "integer", "minimum": 1, "maximum": 65535}
        elif self.kind == "text":
            out = {"type": "string", "minLength": 1, "maxLength": 253}
        else:
            out = {"type": "number", "minimum": 0, "maximum": MAX_SECONDS}
        if self.default is not None:
            out["default"] = self.default
        return out


QUERY: dict[str, QueryParam] = {q.name: q for q in (
    QueryParam("wait", "seconds", "Seconds to wait until every connected switch realized the "
                                  "written revision"),
    QueryParam("mode", "choice", "add (default: add or update the objects, keep the rest), "
                                 "desired (make the store hold exactly this document) or delete",
               choices=("add", "desired", "delete"), default="add"),
    QueryParam("revision", "revision", "Store revision to wait for", required=True),
    QueryParam("timeout", "seconds", "Seconds to wait at most", default=30),
    # GET /trace
    QueryParam("from", "text", "Source endpoint id (<network>-<container>)", required=True),
    QueryParam("to", "text", "Destination: an IPv4 address, or an endpoint id (its address "
                             "and MAC, as with a static ARP entry)", required=True),
    QueryParam("proto", "choice", "Protocol of the traced packet", choices=("icmp", "tcp", "udp"),
               default="icmp"),
    QueryParam("dport", "port", "Destination port (tcp, udp; default 80)"),
    QueryParam("sport", "port", "Source port (tcp, udp; default 40000)"),
    QueryParam("host", "text", "Host whose switch the packet enters (default: the source "
                               "endpoint's host)"),
)}


def path_params(values: Mapping[str, str]) -> None:
    """Check the names a route's path carries (tenant, network, host, endpoint id)."""
    problems = []
    for param, value in values.items():
        if not _PATH_RE[param].fullmatch(value):
            spec = PATH_PARAMS[param]
            problems.append(f"path parameter {param} {show(value)}: not {spec.what} "
                            f"(must match {spec.pattern})")
    if problems:
        raise HttpError(400, problems)


def query_params(raw: list[tuple[str, str]], allowed: tuple[str, ...]) -> dict[str, Any]:
    """Parse the query string items ``raw`` for an operation taking ``allowed`` parameters."""
    unknown = sorted({name for name, _ in raw if name not in allowed})
    if unknown:
        takes = ", ".join(allowed) if allowed else "none"
        raise HttpError(400, [f"unknown query parameter{'s' if len(unknown) > 1 else ''} "
                              f"{', '.join(show(n) for n in unknown)} (this operation takes: "
                              f"{takes})"])
    out: dict[str, Any] = {}
    problems = []
    for name in allowed:
        values = [v for n, v in raw if n == name]
        param = QUERY[name]
        if len(values) > 1:
            problems.append(f"query parameter {name}: given {len(values)} times")
        elif values:
            try:
                out[name] = param.parse(values[0])
            except HttpError as exc:
                problems += exc.problems
        elif param.required:
            problems.append(f"query parameter {name}: required")
        elif param.default is not None:
            out[name] = param.default
    if problems:
        raise HttpError(400, problems)
    return out


def read_body(body_file: Any, content_length: int | None, schema: str,
              max_bytes: int = MAX_BODY, max_depth: int = MAX_DEPTH) -> Any:
    """The JSON request body: 413 over ``max_bytes``, 400 for anything that is not JSON."""
    if content_length is not None and content_length > max_bytes:
        raise too_large(content_length, max_bytes)
    data = body_file.read(max_bytes + 1) if content_length != 0 else b""
    if len(data) > max_bytes:
        raise too_large(None, max_bytes)
    if not data.strip():
        raise ValidationError(f"request body: empty; expected a JSON {schema}")
    return parse_json(data, "request body", max_depth)


def too_large(length: int | None, max_bytes: int) -> HttpError:
    """The 413 answer."""
    size = f"{length} bytes" if length is not None else "more"
    return HttpError(413, [f"request body: {size} is over the limit of {max_bytes} bytes"])
