"""One connected switch: raw requests and replies, bundles, barriers, errors.

Framework-light: a session needs a datapath with ``send(bytes)`` and ``id`` (a real os-ken
``Datapath`` or the tests' fake) and is fed the switch's replies through
:meth:`Session.on_message` (os-ken objects whose stats bodies are raw, see
``framework.install_raw_stats``).  Messages are packed by :mod:`ofctl.wire`; big transfers are
streamed in chunks with a yield to the hub between chunks, so no single step holds the hub.
"""

from __future__ import annotations

import itertools
import logging
import struct
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ofctl import wire
from ryu_apps.framework import hub, ofproto_common, ofproto_v1_3, ofproto_v1_3_parser

LOG = logging.getLogger(__name__)

OFP = ofproto_v1_3
PARSER = ofproto_v1_3_parser
_BUNDLE_ADD = struct.Struct("!BBHIIII2xH")  # header, experimenter, exp_type, bundle_id, flags
_BUNDLE_CTRL = struct.Struct("!BBHIIIIHH")
BUNDLE_FLAGS = OFP.ONF_BF_ATOMIC | OFP.ONF_BF_ORDERED
CHUNK = 256 * 1024  # bytes sent between two yields to the hub
SLICE = 0.02  # seconds of CPU between two yields while packing or parsing


class SwitchError(Exception):
    """The switch did not answer in time, went away, or refused something."""


class NotMaster(SwitchError):
    """The switch refused us as master: a later generation id took over (stale ROLE_REQUEST,
    or a table change refused because this connection is a slave)."""


MASTER, SLAVE, EQUAL = "master", "slave", "equal"
ROLE_CODES = {MASTER: OFP.OFPCR_ROLE_MASTER, SLAVE: OFP.OFPCR_ROLE_SLAVE,
              EQUAL: OFP.OFPCR_ROLE_EQUAL}


def _not_master(e: Any) -> bool:
    """Whether an error message says this connection may not write (any more)."""
    return ((e.type, e.code) == (OFP.OFPET_BAD_REQUEST, OFP.OFPBRC_IS_SLAVE) or
            e.type == OFP.OFPET_ROLE_REQUEST_FAILED)


class Rejected(SwitchError):
    """The switch refused messages; ``owners`` are the intent objects of the refused entries."""

    def __init__(self, message: str, rejected: list[tuple[Any, str]]) -> None:
        super().__init__(message)
        self.rejected = rejected


class _Proto:
    """What os-ken's serialiser needs of a datapath."""

    ofproto = OFP
    ofproto_parser = PARSER


PROTO = _Proto()


def serialize(msg: Any, xid: int = 0) -> bytes:
    """Wire bytes of an os-ken message with the given xid."""
    if getattr(msg, "datapath", None) is None:
        msg.datapath = PROTO
    msg.xid = xid
    msg.serialize()
    return bytes(msg.buf)


def with_xid(buf: bytes, xid: int) -> bytes:
    """``buf`` (one OpenFlow message) with its xid replaced."""
    return buf[:4] + struct.pack("!I", xid) + buf[8:]


def bundle_add(inner: bytes, bundle_id: int, xid: int, flags: int = BUNDLE_FLAGS) -> bytes:
    """An ONF bundle-add message wrapping ``inner`` (whose xid must equal the outer one)."""
    head = _BUNDLE_ADD.pack(OFP.OFP_VERSION, OFP.OFPT_EXPERIMENTER, _BUNDLE_ADD.size + len(inner),
                            xid, ofproto_common.ONF_EXPERIMENTER_ID, OFP.ONF_ET_BUNDLE_ADD_MESSAGE,
                            bundle_id, flags)
    return head + with_xid(inner, xid)


def bundle_ctrl(bundle_id: int, type_: int, xid: int, flags: int = BUNDLE_FLAGS) -> bytes:
    return _BUNDLE_CTRL.pack(OFP.OFP_VERSION, OFP.OFPT_EXPERIMENTER, _BUNDLE_CTRL.size, xid,
                             ofproto_common.ONF_EXPERIMENTER_ID, OFP.ONF_ET_BUNDLE_CONTROL,
                             bundle_id, type_, flags)


Pack = Callable[[], bytes]  # a message packed when it is sent (xid 0; replaced on the way)


@dataclass
class Outgoing:
    """The messages of one sync, each with the intent object it concerns (for errors).

    Messages are packed lazily, while they are streamed, so a large sync never packs
    everything first (and never holds the hub for long)."""

    before: list[tuple[Pack, Any]] = field(default_factory=list)  # meter adds/modifies
    bundle: list[tuple[Pack, Any]] = field(default_factory=list)
    after: list[tuple[Pack, Any]] = field(default_factory=list)  # meter deletes

    def __len__(self) -> int:
        return len(self.before) + len(self.bundle) + len(self.after)


class _Waiter:
    def __init__(self, final: int | None = None) -> None:
        self.parts: list[bytes] = []
        self.errors: list[Any] = []
        self.done = hub.Event()
        self.final = final  # of a run of messages: the xid whose answer (or error) ends it


class Session:
    """The controller's side of one switch connection."""

    _bundle_ids = itertools.count(1)

    def __init__(self, dp: Any, host: str | None, timeout: float = 60.0) -> None:
        self.dp = dp
        self.host = host
        self.timeout = timeout
        self.wake = hub.Event()
        self.alive = True
        self.busy = False
        # what the worker must do next
        self.pending = True  # a delta may be waiting
        self.need_check = True  # compare the marker (connect / reconnect)
        self.need_full = False  # re-read everything and repair
        self.audit_due = False
        self.audit_slices: list[int] = []
        # status
        self.in_sync = False
        self.changes_sent = 0
        self.syncs = 0
        self.reads = 0
        self.audits = 0
        self.last_error: str | None = None
        self.rejected: list[tuple[Any, str]] = []
        self.marker: int | None = None  # the digest the switch holds
        self.checked: int | None = None  # marker matched this digest; table still to build
        self.unsent: tuple[Outgoing, int, int] | None = None  # refused whole: send again
        # role (several controllers): EQUAL until a ROLE_REQUEST is answered; only EQUAL
        # (no election) and MASTER write
        self.role = EQUAL
        self.role_known = False  # a ROLE_REQUEST of ours was answered
        self.generation: int | None = None
        self.refused: int | None = None  # the generation the switch refused as stale
        self.takeover = False  # a barrier is due once the new master's first sync is done
        self.master_since: float | None = None  # wall clock of that barrier's answer
        self.claiming = False  # a claim of the mastership is scheduled
        self._xids = itertools.count(0x80000000)
        self._waiters: dict[int, _Waiter] = {}
        self._ranges: list[tuple[int, int, _Waiter]] = []

    @property
    def dpid(self) -> int:
        return self.dp.id

    @property
    def realized(self) -> int | None:
        """The realized revision last written to the store for this switch's host."""
        return self.realized_written(self.host) if self.host else None

    def realized_written(self, host: str) -> int | None:  # replaced by the controller
        return None

    def next_xid(self) -> int:
        x = next(self._xids)
        if x >= 0xFFFFFFF0:
            self._xids = itertools.count(0x80000000)
        return x

    def kick(self, reread: bool = False) -> None:
        """Ask the worker to sync (and to re-read the switch first if ``reread``)."""
        if reread:
            self.need_full = True
        self.pending = True
        self.wake.set()

    def audit(self) -> None:
        """Ask the worker to re-read and repair the switch in slices, between syncs."""
        self.audit_due = True
        self.wake.set()

    # ------------------------------------------------------------------ replies
    def on_message(self, msg: Any) -> None:
        """Route a reply (stats, barrier, error) to whoever waits for it."""
        xid = msg.xid
        w = self._waiters.get(xid)
        if w is None:
            w = next((r[2] for r in self._ranges if r[0] <= xid <= r[1]), None)
        if w is None:
            if isinstance(msg, PARSER.OFPErrorMsg):
                LOG.warning("switch %s: unsolicited error type=%s code=%s", self.host,
                            msg.type, msg.code)
            return
        if isinstance(msg, PARSER.OFPErrorMsg):
            w.errors.append(msg)
            if xid in self._waiters or xid == w.final:
                w.done.set()
        elif isinstance(msg, (PARSER.OFPBarrierReply, PARSER.OFPRoleReply)):
            w.done.set()
        elif isinstance(msg, PARSER.ONFBundleCtrlMsg):
            if xid == w.final and msg.type == OFP.ONF_BCT_COMMIT_REPLY:
                w.done.set()
        elif isinstance(msg, PARSER.OFPMultipartReply):
            w.parts.extend(b.raw for b in msg.body)
            if not msg.flags & OFP.OFPMPF_REPLY_MORE:
                w.done.set()

    def _wait(self, w: _Waiter, what: str) -> None:
        if not w.done.wait(timeout=self.timeout):
            raise SwitchError(f"{self.host}: no answer to {what} within {self.timeout}s")
        if not self.alive:
            raise SwitchError(f"{self.host}: disconnected")

    def abort(self) -> None:
        """The connection is gone: fail every waiter."""
        self.alive = False
        for w in list(self._waiters.values()) + [r[2] for r in self._ranges]:
            w.done.set()
        self.wake.set()

    # ------------------------------------------------------------------ requests
    def request(self, make, what: str) -> bytes:
        """Send a multipart request (``make(xid)`` packs it); the concatenated reply bodies."""
        xid = self.next_xid()
        w = self._waiters[xid] = _Waiter()
        try:
            self.dp.send(make(xid))
            self._wait(w, what)
        finally:
            self._waiters.pop(xid, None)
        if w.errors:
            e = w.errors[0]
            raise SwitchError(f"{self.host}: {what} refused: error type={e.type} code={e.code}")
        return b"".join(w.parts)

    def request_role(self, role: str, generation: int) -> None:
        """Send a ROLE_REQUEST and wait for its answer; :class:`NotMaster` when the switch
        refuses it (stale generation id)."""
        xid = self.next_xid()
        w = self._waiters[xid] = _Waiter()
        try:
            self.dp.send(serialize(PARSER.OFPRoleRequest(None, ROLE_CODES[role],
                                                         generation & 0xFFFFFFFFFFFFFFFF), xid))
            self._wait(w, f"role request {role}")
        finally:
            self._waiters.pop(xid, None)
        if w.errors:
            e = w.errors[0]
            raise NotMaster(f"{self.host}: role {role} with generation {generation} refused: "
                            f"error type={e.type} code={e.code}")
        self.role, self.role_known, self.generation = role, True, generation

    def barrier(self) -> None:
        """Send a barrier and wait for its answer."""
        xid = self.next_xid()
        w = self._waiters[xid] = _Waiter()
        try:
            self.dp.send(wire.barrier(xid))
            self._wait(w, "barrier")
        finally:
            self._waiters.pop(xid, None)

    def read_flows(self, table: int = wire.OFPTT_ALL, cookie: int = 0,
                   cookie_mask: int = 0) -> list:
        """Flows (model entries or ``wire.Foreign``) of the whole switch or a slice of it."""
        body = self.request(lambda x: wire.flow_stats_request(x, table, cookie, cookie_mask),
                            "flow stats")
        return parse_yielding(body)

    def read_groups(self) -> list:
        return wire.parse_group_desc(self.request(wire.group_desc_request, "group desc"))

    def read_meters(self) -> list:
        return wire.parse_meter_config(self.request(wire.meter_config_request,
                                                    "meter config"))

    # ------------------------------------------------------------------ changes
    def send(self, out: Outgoing) -> None:
        """Meter adds, then one atomic ordered bundle, then meter deletes.  The meter parts are
        acknowledged by a barrier, the bundle by its commit reply.  Raises :class:`Rejected`
        naming the refused entries."""
        if out.before:
            self._plain(out.before, "meter changes")
        if out.bundle:
            self._bundle(out.bundle)
        if out.after:
            self._plain(out.after, "meter deletes")

    def _stream(self, parts: Iterable[bytes]) -> None:
        buf: list[bytes] = []
        size = 0
        t0 = time.monotonic()
        for p in parts:
            buf.append(p)
            size += len(p)
            if size >= CHUNK or time.monotonic() - t0 > SLICE:
                self.dp.send(b"".join(buf))
                buf, size = [], 0
                hub.sleep(0)
                t0 = time.monotonic()
        if buf:
            self.dp.send(b"".join(buf))

    def _run(self, items: list[tuple[Pack, Any]], what: str, framing) -> None:
        """Send ``items`` framed by ``framing(xids, last)``; wait for the answer to ``last``
        (every answer to the run's messages comes before it) and raise on errors."""
        xids = [self.next_xid() for _ in items]
        last = self.next_xid()
        first = xids[0] if xids else last
        owners = dict(zip(xids, (o for _, o in items), strict=True))
        w = _Waiter(final=last)
        self._ranges.append((first, last, w))
        try:
            self._stream(framing(xids, last))
            self._wait(w, what)
        finally:
            self._ranges.remove((first, last, w))
        if any(_not_master(e) for e in w.errors):
            raise NotMaster(f"{self.host}: {what} refused: this controller is not master")
        if w.errors:
            rejected = [(owners[e.xid], f"type={e.type} code={e.code}") for e in w.errors
                        if e.xid in owners]
            detail = ", ".join(f"{o} ({why})" for o, why in rejected) or \
                f"error type={w.errors[0].type} code={w.errors[0].code}"
            raise Rejected(f"{self.host}: {what} refused: {detail}", rejected)

    def _plain(self, items: list[tuple[Pack, Any]], what: str) -> None:
        def framing(xids, last):
            for (pack, _), x in zip(items, xids, strict=True):
                yield with_xid(pack(), x)
            yield wire.barrier(last)

        self._run(items, what, framing)

    def _bundle(self, items: list[tuple[Pack, Any]]) -> None:
        """One atomic, ordered bundle: its first add opens it (OVS opens a bundle on an add
        for an unknown id), the commit's reply (or error) acknowledges it.  No open request
        and no barrier: one answer per sync instead of three."""
        bundle_id = next(self._bundle_ids) & 0xFFFFFFFF

        def framing(xids, commit):
            for (pack, _), x in zip(items, xids, strict=True):
                yield bundle_add(pack(), bundle_id, x)
            yield bundle_ctrl(bundle_id, OFP.ONF_BCT_COMMIT_REQUEST, commit)

        self._run(items, f"bundle of {len(items)} messages", framing)


def parse_yielding(body: bytes) -> list:
    """``wire.parse_flow_stats`` in slices, yielding to the hub between them."""
    out: list = []
    view = memoryview(body)
    off, start = 0, 0
    t0 = time.monotonic()
    while off < len(body):
        off += struct.unpack_from("!H", body, off)[0]
        if time.monotonic() - t0 > SLICE or off >= len(body):
            out.extend(wire.parse_flow_stats(bytes(view[start:off])))
            start = off
            hub.sleep(0)
            t0 = time.monotonic()
    return out
