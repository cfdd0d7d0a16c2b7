"""OpenFlow roles of one controller's switch sessions, driven by the etcd election.

Runs in each switch's worker greenthread, before any sync, so that a role change and a table
change never overlap.  A new connection is EQUAL (it could write): nothing that changes a table
goes out until a ROLE_REQUEST MASTER carrying our generation id has been answered.  A slave
sends ROLE_REQUEST SLAVE (with the master's generation id, which the switch accepts) and keeps
the host's desired table current, sending nothing.  A takeover reads the switch back as a
connect does (the marker entry, then a sliced audit of everything): with unchanged intent it
sends no change at all.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from intent.logfmt import logline
from ryu_apps.framework import hub
from ryu_apps.switch import MASTER, SLAVE, NotMaster, Session

if TYPE_CHECKING:
    from ryu_apps.core import Controller

LOG = logging.getLogger(__name__)


def settle(ctl: Controller, s: Session) -> bool:
    """Bring ``s``'s role in line with the election; True when this controller may write."""
    el = ctl.election
    m = el.masters.get(s.host)
    if el.claimable(s.host):
        schedule_claim(ctl, s)
    mine = el.is_mine(s.host)
    if mine is not None and mine.generation != s.refused:
        if s.role != MASTER or s.generation != mine.generation:
            try:
                s.request_role(MASTER, mine.generation)
            except NotMaster as exc:
                refused(ctl, s, str(exc))
                return False
            LOG.info("%s", logline("role-master", host=s.host, generation=mine.generation,
                                   next="read back"))
            ctl.realizer.forget(s.host)
            # as on connect: the marker says whether the switch holds our desired state (then
            # nothing is sent, and a sliced audit reads everything back and repairs)
            s.need_check, s.pending, s.checked = True, True, None
            s.takeover = True
        return True
    if s.role == MASTER:
        LOG.info("%s", logline("role-step-down", host=s.host,
                               master=m.controller if m else None))
        s.role = SLAVE  # writes nothing from here on, whatever the switch still thinks
        ctl.realizer.forget(s.host)
    if m is not None and (not s.role_known or s.role != SLAVE or
                          s.generation != m.generation):
        try:
            s.request_role(SLAVE, m.generation)
        except NotMaster:  # a generation we have not seen yet: stay silent, retry later
            s.role, s.generation = SLAVE, m.generation
        ctl.realizer.forget(s.host)
    follow(ctl, s)  # no master yet: silent (EQUAL) until the claim is decided
    return False


def refused(ctl: Controller, s: Session, why: str) -> None:
    """The switch refused us as master (a later master exists): never write with this
    generation again."""
    LOG.warning("%s", logline("role-refused", host=s.host, error=why, next="step down"))
    s.refused, s.role, s.in_sync = s.generation, SLAVE, False
    mine = ctl.election.is_mine(s.host)
    if mine is not None:
        s.refused = mine.generation
    ctl.realizer.forget(s.host)
    s.wake.set()


def follow(ctl: Controller, s: Session) -> None:
    """A slave keeps the host's desired table current (and sends nothing)."""
    s.audit_due, s.audit_slices = False, []
    if s.pending:
        s.pending = False
        ctl.table_of(s.host).take()


def took_over(s: Session) -> None:
    """After a new master's first sync: a barrier proves the switch took it all."""
    if s.takeover:
        s.barrier()
        s.takeover, s.master_since = False, time.time()
        LOG.info("%s", logline("master-in-charge", host=s.host, generation=s.generation,
                               changes=s.changes_sent))


def schedule_claim(ctl: Controller, s: Session) -> None:
    """Claim ``s``'s switch (no master): at once if we are its preferred controller, else after
    the election's claim delay (in case the preferred one does not reach it)."""
    if s.claiming or not s.host:
        return
    s.claiming = True
    el = ctl.election
    delay = 0.0 if el.preferred(s.host) == el.name else el.claim_delay
    hub.spawn_after(delay, _claim, ctl, s)


def _claim(ctl: Controller, s: Session) -> None:
    s.claiming = False
    if not (s.alive and s.host and ctl.sessions.get(s.dpid) is s):
        return
    if ctl.election.claimable(s.host):
        try:
            ctl.election.claim(s.host)
        except Exception as exc:  # noqa: BLE001 - the store: the next event retries
            LOG.warning("%s", logline("claim-error", host=s.host, error=str(exc), retry="1s"))
            hub.spawn_after(1.0, schedule_claim, ctl, s)
    s.wake.set()


def realized_elsewhere(ctl: Controller, host: str, live: bool) -> int:
    """The revision ``host`` realized, its switch being another controller's: what that
    master wrote; once that covers the last change of ``host``'s tables this controller knows
    of, everything this controller has applied (or, ``live``, seen) is realized there too."""
    written = ctl.election.realized_of(host)
    if written and written >= max(ctl.changed_floor, ctl.changed_at.get(host, 0)):
        position = ctl.realizer.applied
        if live:
            position = max(position, ctl.realizer.seen)
        return max(written, position)
    return written


def on_change(ctl: Controller, hosts: set[str] | None) -> None:
    """Masterships (or the live controllers) changed: wake those switches' workers."""
    for s in list(ctl.sessions.values()):
        if s.host and (hosts is None or s.host in hosts):
            s.wake.set()
    ctl.realizer.notify()
