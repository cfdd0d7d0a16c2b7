"""``diff(installed, desired)``: the ordered changes that turn one switch state into another.

Order: groups and meters added or modified first (flows may use them), then flows added or
replaced, then flows deleted, then groups and meters deleted (no flow uses them any more).
A flow whose key (table, priority, match) stays but whose instructions or cookie change is
re-added: in OpenFlow 1.3 an ADD with an identical key replaces the entry, cookie included.
"""

from __future__ import annotations

from dataclasses import dataclass

from ofctl.model import Flow, Group, Meter, SwitchState

ADD = "add"
MODIFY = "modify"
DELETE = "delete"


@dataclass(frozen=True)
class Change:
    op: str  # ADD | MODIFY | DELETE
    entry: Flow | Group | Meter


def _by(entries, key) -> dict:
    return {key(e): e for e in entries}


def _entry_changes(installed, desired, key) -> tuple[list[Change], list[Change]]:
    """(adds/modifies, deletes) for one kind of entry, in a stable order."""
    have, want = _by(installed, key), _by(desired, key)
    upserts, deletes = [], []
    for k in sorted(want, key=repr):
        e = want[k]
        if k not in have:
            upserts.append(Change(ADD, e))
        elif have[k] != e:
            upserts.append(Change(MODIFY, e))
    for k in sorted(have.keys() - want.keys(), key=repr):
        deletes.append(Change(DELETE, have[k]))
    return upserts, deletes


def diff(installed: SwitchState, desired: SwitchState) -> list[Change]:
    """The changes that make ``installed`` equal to ``desired``, safe to send in order."""
    g_up, g_del = _entry_changes(installed.groups, desired.groups, lambda g: g.group_id)
    m_up, m_del = _entry_changes(installed.meters, desired.meters, lambda m: m.meter_id)
    f_up, f_del = _entry_changes(installed.flows, desired.flows, lambda f: f.key)
    return g_up + m_up + f_up + f_del + g_del + m_del


def apply_changes(state: SwitchState, changes: list[Change]) -> SwitchState:
    """What a switch holds after ``changes`` (the model of a switch; used by tests)."""
    flows = {f.key: f for f in state.flows}
    groups = {g.group_id: g for g in state.groups}
    meters = {m.meter_id: m for m in state.meters}
    for c in changes:
        e = c.entry
        table, k = ((flows, e.key) if isinstance(e, Flow)
                    else (groups, e.group_id) if isinstance(e, Group) else (meters, e.meter_id))
        if c.op == DELETE:
            table.pop(k, None)
        else:
            table[k] = e
    return SwitchState(frozenset(flows.values()), frozenset(groups.values()),
                       frozenset(meters.values()))
