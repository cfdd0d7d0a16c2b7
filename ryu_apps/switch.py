"""One connected switch: read back what it holds, send a difference as one bundle, wait for it.

Framework-light: a session needs a datapath object with ``send(bytes)``, ``ofproto`` and
``ofproto_parser`` (a real os-ken ``Datapath`` or the unit tests' fake), and is fed the switch's
replies through :meth:`Session.on_message`.  Messages are serialised once and cached as bytes
(os-ken's per-message encoding is the expensive part of a resync); bundle wrappers and xids are
packed by hand.
"""

from __future__ import annotations

import itertools
import logging
import struct
from collections.abc import Callable, Hashable, Sequence
from typing import Any

from ryu_apps.framework import hub, ofproto_common, ofproto_v1_3, ofproto_v1_3_parser

LOG = logging.getLogger(__name__)

OFP = ofproto_v1_3
PARSER = ofproto_v1_3_parser
_HDR = struct.Struct("!BBHI")
_BUNDLE_ADD = struct.Struct("!BBHIIII2xH")  # header, experimenter, exp_type, bundle_id, flags
BUNDLE_FLAGS = OFP.ONF_BF_ATOMIC | OFP.ONF_BF_ORDERED
CHUNK = 256 * 1024


class SwitchError(Exception):
    """The switch rejected a change, did not answer in time, or went away."""


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
    return serialize(PARSER.ONFBundleCtrlMsg(PROTO, bundle_id, type_, flags, []), xid)


ENCODE_SLICE = 1000  # changes encoded between two yields to the hub


class MessageCache:
    """Encoded inner messages per change, so a change is serialised by os-ken only once."""

    def __init__(self, encode: Callable[[Sequence[Hashable]], list[Any]], limit: int = 200_000):
        self._encode = encode
        self._cache: dict[Hashable, bytes] = {}
        self._limit = limit
        self.hits = 0
        self.misses = 0

    def messages(self, changes: Sequence[Hashable]) -> list[bytes]:
        """Wire bytes (xid 0) for ``changes``, in order."""
        missing = [c for c in changes if c not in self._cache]
        self.misses += len(missing)
        self.hits += len(changes) - len(missing)
        if len(self._cache) + len(missing) > self._limit:
            self._cache.clear()
        for start in range(0, len(missing), ENCODE_SLICE):
            part = missing[start:start + ENCODE_SLICE]
            msgs = self._encode(part)
            if len(msgs) != len(part):  # encoder merged or split: no per-change caching
                return [serialize(m) for m in self._encode(list(changes))]
            for c, m in zip(part, msgs, strict=True):
                self._cache[c] = serialize(m)
            hub.sleep(0)  # let the hub answer echo requests during a large resync
        return [self._cache[c] for c in changes]


class _Waiter:
    def __init__(self) -> None:
        self.parts: list[Any] = []
        self.error: Any = None
        self.done = hub.Event()


class Session:
    """The controller's side of one switch connection."""

    _bundle_ids = itertools.count(1)

    def __init__(self, dp: Any, host: str | None, timeout: float = 60.0) -> None:
        self.dp = dp
        self.host = host
        self.timeout = timeout
        self.installed: Any = None  # SwitchState believed to be on the switch; None: unknown
        self.wake = hub.Event()
        self.pending = True
        self.audit_due = False
        self.reread = True  # read the switch before the next diff
        self.in_sync = False
        self.busy = False
        self.alive = True
        self.realized: int | None = None  # last revision written for this host
        self.changes_sent = 0
        self.syncs = 0
        self.reads = 0
        self.last_error: str | None = None
        self._xids = itertools.count(0x80000000)
        self._waiters: dict[int, _Waiter] = {}
        self._txn: tuple[int, int, _Waiter] | None = None

    @property
    def dpid(self) -> int:
        return self.dp.id

    def next_xid(self) -> int:
        x = next(self._xids)
        if x >= 0xFFFFFFFF:
            self._xids = itertools.count(0x80000000)
        return x

    def kick(self, reread: bool = False) -> None:
        """Ask the worker to sync again (and re-read the switch first if ``reread``)."""
        if reread:
            self.reread = True
        self.pending = True
        self.wake.set()

    def audit(self) -> None:
        """Ask the worker to re-read and repair the switch.  Unlike :meth:`kick` this does not
        mark the switch as behind the intent: its realized revision keeps advancing."""
        self.reread = True
        self.audit_due = True
        self.wake.set()

    # ------------------------------------------------------------------ replies

    def on_message(self, msg: Any) -> None:
        """Route a reply (stats, barrier, error) from the switch to whoever waits for it."""
        xid = msg.xid
        w = self._waiters.get(xid)
        if w is None and self._txn and self._txn[0] <= xid <= self._txn[1]:
            w = self._txn[2]
        if w is None:
            if isinstance(msg, PARSER.OFPErrorMsg):
                LOG.warning("switch %s (%s): unsolicited error %s", self.host, self.dpid, msg)
            return
        if isinstance(msg, PARSER.OFPErrorMsg):
            w.error = msg
            w.done.set()
        elif isinstance(msg, PARSER.OFPBarrierReply):
            w.done.set()
        elif isinstance(msg, PARSER.OFPMultipartReply):
            w.parts.extend(msg.body if isinstance(msg.body, list) else [msg.body])
            if not msg.flags & OFP.OFPMPF_REPLY_MORE:
                w.done.set()

    def _wait(self, w: _Waiter, what: str) -> None:
        if not w.done.wait(timeout=self.timeout):
            raise SwitchError(f"{self.host}: no answer to {what} within {self.timeout}s")
        if not self.alive:
            raise SwitchError(f"{self.host}: disconnected")
        if w.error is not None:
            e = w.error
            raise SwitchError(f"{self.host}: {what} failed: error type={e.type} code={e.code}")

    def abort(self) -> None:
        """The connection is gone: fail every waiter."""
        self.alive = False
        for w in list(self._waiters.values()) + ([self._txn[2]] if self._txn else []):
            w.done.set()
        self.wake.set()

    # ------------------------------------------------------------------ requests

    def request(self, msg: Any, what: str) -> list[Any]:
        """Send a multipart request and return the bodies of all its replies."""
        xid = self.next_xid()
        w = self._waiters[xid] = _Waiter()
        try:
            self.dp.send(serialize(msg, xid))
            self._wait(w, what)
        finally:
            self._waiters.pop(xid, None)
        return w.parts

    def read(self, decode: Callable[[list, list, list], Any]) -> Any:
        """Read flows, groups and meters from the switch and decode them into a SwitchState."""
        flows = self.request(PARSER.OFPFlowStatsRequest(
            PROTO, 0, OFP.OFPTT_ALL, OFP.OFPP_ANY, OFP.OFPG_ANY, 0, 0, PARSER.OFPMatch()),
            "flow stats")
        groups = self.request(PARSER.OFPGroupDescStatsRequest(PROTO, 0), "group desc")
        meters = self.request(PARSER.OFPMeterConfigStatsRequest(PROTO, 0, OFP.OFPM_ALL),
                              "meter config")
        self.reads += 1
        return decode(flows, groups, meters)

    def send_bundle(self, inner: list[bytes]) -> None:
        """Send ``inner`` messages as one atomic, ordered bundle; wait for the barrier."""
        if not inner:
            return
        bundle_id = next(self._bundle_ids) & 0xFFFFFFFF
        first = self.next_xid()
        w = _Waiter()
        chunks = [bundle_ctrl(bundle_id, OFP.ONF_BCT_OPEN_REQUEST, first)]
        size = 0
        out: list[bytes] = []
        for buf in inner:
            part = bundle_add(buf, bundle_id, self.next_xid())
            chunks.append(part)
            size += len(part)
            if size >= CHUNK:
                out.append(b"".join(chunks))
                chunks, size = [], 0
        chunks.append(bundle_ctrl(bundle_id, OFP.ONF_BCT_COMMIT_REQUEST, self.next_xid()))
        barrier_xid = self.next_xid()
        chunks.append(serialize(PARSER.OFPBarrierRequest(PROTO), barrier_xid))
        out.append(b"".join(chunks))
        self._txn = (first, barrier_xid, w)
        try:
            for buf in out:
                self.dp.send(buf)
            self._wait(w, f"bundle of {len(inner)} messages")
        finally:
            self._txn = None
