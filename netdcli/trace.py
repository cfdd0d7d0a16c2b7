"""``netdcli -trace``: ask the controller (REST ``GET /api/v1/trace``) to walk a packet through
the tables it computed, and print the walk: every switch, every matched entry with its owning
intent object and actions, and the verdict.  ``-json`` prints the controller's answer as is.
"""

from __future__ import annotations

import json
import sys
import urllib.error
import urllib.parse
from typing import Any, TextIO

from netdcli.audit import RestClient

EXIT_CODES = {400: 2, 404: 3, 409: 4}  # the exit codes of netdcli's other commands


def query(args: Any) -> str:
    """The query string of the trace request."""
    q = {"from": args.trace_from, "to": args.trace_to}
    for name in ("proto", "dport", "sport", "host"):
        v = getattr(args, f"trace_{name}")
        if v is not None:
            q[name] = str(v)
    return urllib.parse.urlencode(q)


def run_trace(args: Any, rest: RestClient, out: TextIO = sys.stdout,
              err: TextIO = sys.stderr) -> int:
    """Carry out ``-trace``; the exit code (0: traced, whatever the verdict)."""
    missing = [f for f, v in (("-from", args.trace_from), ("-to", args.trace_to)) if not v]
    if missing:
        print(f"netdcli: -trace needs {' and '.join(missing)} (see --help)", file=err)
        return 2
    try:
        answer = rest.get("/trace?" + query(args))
    except urllib.error.HTTPError as exc:
        for problem in _errors(exc):
            print(f"netdcli: trace: {problem}", file=err)
        return EXIT_CODES.get(exc.code, 1)
    except (OSError, ValueError) as exc:
        print(f"netdcli: cannot ask the controller at {rest.url} for a trace "
              f"({getattr(exc, 'reason', exc)})", file=err)
        return 1
    if args.json:
        print(json.dumps(answer, indent=2, sort_keys=True), file=out)
    else:
        for line in text(answer):
            print(line, file=out)
    return 0


def _errors(exc: urllib.error.HTTPError) -> list[str]:
    try:
        return list(json.loads(exc.read()).get("errors", [])) or [str(exc.reason)]
    except (ValueError, AttributeError, OSError):
        return [f"controller answered {exc.code} {exc.reason}"]


def text(answer: dict) -> list[str]:
    """The trace as lines for a person."""
    first = answer["hops"][0]["packet"] if answer.get("hops") else {}
    proto = {1: "icmp", 6: "tcp", 17: "udp"}.get(first.get("ip_proto"), "ip")
    port = first.get("tcp_dst") or first.get("udp_dst")
    lines = [f"trace {answer['from']} ({first.get('ipv4_src')} {first.get('eth_src')}) -> "
             f"{answer['to']}: {answer['destination']}",
             f"  packet: {proto}{f' dport {port}' if port else ''}, eth_dst "
             f"{first.get('eth_dst')}, enters {answer['host']}'s br-int (intent revision "
             f"{answer['revision']})"]
    for hop in answer["hops"]:
        lines.append(f"{hop['host']}: in_port {hop['in_port']} ({hop['in_port_is']})")
        for s in hop["steps"]:
            lines.append(f"  table {s['table']} ({s['table_name']}) priority {s['priority']}"
                         f" cookie {s['cookie']}: {s['owner']}")
            lines.append(f"      match   {s['match']}")
            lines.append(f"      actions {s['actions']}")
        lines.append(f"  => {hop['ended']}")
    lines += [f"verdict: {v['text']}" for v in answer["verdicts"]] or ["verdict: dropped"]
    return lines
