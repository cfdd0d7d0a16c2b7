"""On-demand audit of one switch: read it through its session and compare it, entry by entry,
with what it should hold now (``GET /api/v1/hosts/{host}/audit``, used by ``netdcli -audit``).

Read-only: it repairs nothing (the controller's own audits do that).  It waits, a bounded time,
until the switch's worker has nothing left to send, so a change in flight is not reported as a
difference; a difference that remains is real.
"""

from __future__ import annotations

import time
from typing import Any

from ofctl import textform, wire
from ofctl.model import Flow, Meter
from ofctl.pipeline import MARKER
from ryu_apps.framework import hub
from ryu_apps.switch import SwitchError

SETTLE = 5.0  # seconds to wait for the worker to become idle


def _idle(s: Any) -> bool:
    if getattr(s, "role", None) == "slave":  # another controller writes it: nothing to wait for
        return not (s.busy or s.pending)
    return not (s.busy or s.pending or s.need_check or s.need_full or s.checked is not None
                or s.unsent is not None)


def _meter_text(m: Meter) -> str:
    bands = ",".join(f"{b.type}:rate={b.rate},burst={b.burst}" for b in m.bands)
    return f"meter={m.meter_id},{','.join(m.flags)},bands={bands}"


def audit_host(controller: Any, host: str, settle: float = SETTLE) -> dict:
    """Every difference between ``host``'s switch and its desired state (flows, marker, groups,
    meters), one line each, with the owner of each entry.  ``{"host", "connected",
    "in_sync", "differences": [...]}``."""
    s = next((x for x in controller.sessions.values() if x.host == host), None)
    if s is None:
        return {"host": host, "connected": False, "in_sync": False,
                "differences": [f"switch of host {host} is not connected to the controller"]}
    deadline = time.monotonic() + settle
    while not _idle(s) and s.alive and time.monotonic() < deadline:
        hub.sleep(0.05)
    try:
        flows, groups, meters = s.read_flows(), s.read_groups(), s.read_meters()
    except SwitchError as exc:
        return {"host": host, "connected": s.alive, "in_sync": False,
                "differences": [f"switch of host {host} cannot be read: {exc}"]}
    want = controller.desired(host)
    want_flows = {f.key: f for f in want.flows}
    marker = controller.marker(host)
    want_flows[marker.key] = marker
    out: list[str] = []

    def owner(e: Any) -> str:
        table = e.table if isinstance(e, Flow) else None
        return controller.describe(e.cookie, table)

    have_flows: dict = {}
    for f in flows:
        if isinstance(f, wire.Foreign):
            out.append(f"foreign flow table={f.table} priority={f.priority} "
                       f"cookie={f.cookie:#x} ({f.why})")
        else:
            have_flows[f.key] = f
    for key, f in sorted(want_flows.items(), key=lambda kv: repr(kv[0])):
        got = have_flows.get(key)
        what = "marker entry" if f.table == MARKER else "flow"
        if got is None:
            out.append(f"missing {what} {textform.flow_text(f)} (owner: {owner(f)})")
        elif got != f:
            out.append(f"{what} differs: has {textform.flow_text(got)}, should have "
                       f"{textform.flow_text(f)} (owner: {owner(f)})")
    for key, f in sorted(have_flows.items(), key=lambda kv: repr(kv[0])):
        if key not in want_flows:
            out.append(f"unexpected flow {textform.flow_text(f)} (cookie says: {owner(f)})")
    _compare(out, "group", groups, {g.group_id: g for g in want.groups},
             lambda g: g.group_id, textform.group_text, owner)
    _compare(out, "meter", meters, {m.meter_id: m for m in want.meters},
             lambda m: m.meter_id, _meter_text, owner)
    return {"host": host, "connected": True, "in_sync": bool(s.in_sync),
            "differences": out}


def _compare(out: list[str], kind: str, have: list, want: dict, ident, text, owner) -> None:
    by_id: dict[int, Any] = {}
    for e in have:
        if isinstance(e, int):
            out.append(f"{kind} {e} cannot be decoded (not one the controller makes)")
        else:
            by_id[ident(e)] = e
    for i in sorted(want):
        got, w = by_id.get(i), want[i]
        if got is None:
            out.append(f"missing {kind} {text(w)} (owner: {owner(w)})")
        elif got != w:
            out.append(f"{kind} {i} differs: has {text(got)}, should have {text(w)}")
    for i in sorted(set(by_id) - set(want)):
        out.append(f"unexpected {kind} {text(by_id[i])}")

