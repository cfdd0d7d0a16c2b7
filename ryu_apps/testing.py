"""A fake datapath for unit tests: records every message and behaves like a small OF1.3 switch.

It parses what the controller sends (bundles included), keeps flows/groups/meters, answers
stats requests and barriers, and can be told to reject the next bundle.  Replies are delivered
synchronously to ``deliver(dp, msg)`` (normally ``Controller.switch_message``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from ryu_apps.framework import ofproto_v1_3 as OFP
from ryu_apps.framework import ofproto_v1_3_parser as PARSER

_ADD_HDR = 24


class _Msg:
    """A parsed controller-to-switch message (os-ken only parses switch-to-controller ones)."""

    def __init__(self, kind: str, xid: int, **fields: Any) -> None:
        self.kind, self.xid = kind, xid
        self.__dict__.update(fields)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.__dict__}>"


def _parse_one(buf: bytes) -> Any:
    version, msg_type, length, xid = struct.unpack_from("!BBHI", buf)
    b = bytearray(buf)
    if msg_type == OFP.OFPT_FLOW_MOD:
        (cookie, _cm, table_id, command, _i, _h, priority, _b, _op, _og,
         _f) = struct.unpack_from("!QQBBHHHIIIH2x", b, 8)
        match = PARSER.OFPMatch.parser(b, 48)
        off = 48 + ((match.length + 7) // 8 * 8)
        instructions = []
        while off < length:
            i = PARSER.OFPInstruction.parser(b, off)
            instructions.append(i)
            off += i.len
        return _Msg("flow_mod", xid, cookie=cookie, table_id=table_id, command=command,
                    priority=priority, match=match, instructions=instructions)
    if msg_type == OFP.OFPT_GROUP_MOD:
        command, type_, group_id = struct.unpack_from("!HBxI", b, 8)
        off, buckets = 16, []
        while off < length:
            bk = PARSER.OFPBucket.parser(b, off)
            buckets.append(bk)
            off += bk.len
        return _Msg("group_mod", xid, command=command, type=type_, group_id=group_id,
                    buckets=buckets)
    if msg_type == OFP.OFPT_METER_MOD:
        command, flags, meter_id = struct.unpack_from("!HHI", b, 8)
        off, bands = 16, []
        while off < length:
            band = PARSER.OFPMeterBandHeader.parser(b, off)
            bands.append(band)
            off += band.len
        return _Msg("meter_mod", xid, command=command, flags=flags, meter_id=meter_id,
                    bands=bands)
    if msg_type == OFP.OFPT_MULTIPART_REQUEST:
        return _Msg("multipart", xid, type=struct.unpack_from("!H", b, 8)[0])
    if msg_type == OFP.OFPT_BARRIER_REQUEST:
        return _Msg("barrier", xid)
    if msg_type == OFP.OFPT_EXPERIMENTER:
        bundle_id, type_, _flags = struct.unpack_from("!IHH", b, 16)
        return _Msg("bundle_ctrl", xid, bundle_id=bundle_id, type=type_)
    return _Msg(f"type{msg_type}", xid)


def parse(buf: bytes) -> list[Any]:
    """Split and parse a byte stream of OpenFlow messages (bundle-adds are unwrapped into
    ``("bundle_add", bundle_id, inner)`` tuples)."""
    out = []
    while buf:
        version, msg_type, length, xid = struct.unpack_from("!BBHI", buf)
        one, buf = buf[:length], buf[length:]
        if msg_type == OFP.OFPT_EXPERIMENTER and struct.unpack_from("!I", one, 12)[0] == \
                OFP.ONF_ET_BUNDLE_ADD_MESSAGE:
            bundle_id = struct.unpack_from("!I", one, 16)[0]
            inner = one[_ADD_HDR:]
            out.append(("bundle_add", bundle_id, _parse_one(inner)))
            continue
        out.append(_parse_one(one))
    return out


class FakeDatapath:
    """Records messages and keeps a switch's tables."""

    def __init__(self, dpid: int, deliver: Callable[[Any, Any], None] | None = None):
        self.id = dpid
        self.ofproto = OFP
        self.ofproto_parser = PARSER
        self.deliver = deliver
        self.sent: list[Any] = []  # every parsed message, bundle-adds as tuples
        self.flows: dict[Any, Any] = {}  # (table, priority, match bytes) -> FlowMod
        self.groups: dict[int, Any] = {}
        self.meters: dict[int, Any] = {}
        self.bundles: dict[int, list[Any]] = {}
        self.fail_next_bundle = False
        self.silent = False  # swallow everything (a hung switch)
        self.committed_bundles = 0

    # ------------------------------------------------------------------ what tests look at

    def changes(self) -> list[Any]:
        """Every flow/group/meter mod received (inside bundles or not)."""
        out = []
        for m in self.sent:
            inner = m[2] if isinstance(m, tuple) else m
            if inner.kind in ("flow_mod", "group_mod", "meter_mod"):
                out.append(inner)
        return out

    # ------------------------------------------------------------------ switch behaviour

    def send(self, buf: bytes) -> None:
        for m in parse(bytes(buf)):
            self.sent.append(m)
            if not self.silent:
                self._handle(m)

    def _reply(self, msg: Any) -> None:
        if self.deliver is not None:
            msg.datapath = self
            self.deliver(self, msg)

    def _handle(self, m: Any) -> None:
        if isinstance(m, tuple):
            self.bundles.setdefault(m[1], []).append(m[2])
            return
        if m.kind == "bundle_ctrl":
            if m.type == OFP.ONF_BCT_OPEN_REQUEST:
                self.bundles[m.bundle_id] = []
            elif m.type == OFP.ONF_BCT_COMMIT_REQUEST:
                msgs = self.bundles.pop(m.bundle_id, [])
                if self.fail_next_bundle:
                    self.fail_next_bundle = False
                    self._error(m.xid)
                    return
                for inner in msgs:
                    self._apply(inner)
                self.committed_bundles += 1
            return
        if m.kind == "barrier":
            r = PARSER.OFPBarrierReply(self)
            r.xid = m.xid
            self._reply(r)
        elif m.kind == "multipart" and m.type == OFP.OFPMP_FLOW:
            body = [PARSER.OFPFlowStats(f.table_id, 0, 0, f.priority, 0, 0, 0, f.cookie, 0, 0,
                                        f.match, f.instructions) for f in self.flows.values()]
            self._stats(PARSER.OFPFlowStatsReply, m.xid, body)
        elif m.kind == "multipart" and m.type == OFP.OFPMP_GROUP_DESC:
            body = [PARSER.OFPGroupDescStats(g.type, g.group_id, g.buckets)
                    for g in self.groups.values()]
            self._stats(PARSER.OFPGroupDescStatsReply, m.xid, body)
        elif m.kind == "multipart" and m.type == OFP.OFPMP_METER_CONFIG:
            body = [PARSER.OFPMeterConfigStats(mm.flags, mm.meter_id, mm.bands)
                    for mm in self.meters.values()]
            self._stats(PARSER.OFPMeterConfigStatsReply, m.xid, body)
        else:
            self._apply(m)

    def _stats(self, cls: Any, xid: int, body: list) -> None:
        # two parts, like a real switch splitting a long reply
        half = len(body) // 2
        for part, flags in ((body[:half], OFP.OFPMPF_REPLY_MORE), (body[half:], 0)):
            r = cls(self, flags=flags)
            r.body, r.xid = part, xid
            self._reply(r)

    def _error(self, xid: int) -> None:
        e = PARSER.OFPErrorMsg(self, type_=OFP.OFPET_BAD_REQUEST, code=0, data=b"")
        e.xid = xid
        self._reply(e)

    def _apply(self, m: Any) -> None:
        if m.kind == "flow_mod":
            key = (m.table_id, m.priority, bytes(_match_bytes(m.match)))
            if m.command == OFP.OFPFC_ADD:
                self.flows[key] = m
            elif m.command == OFP.OFPFC_DELETE_STRICT:
                self.flows.pop(key, None)
        elif m.kind == "group_mod":
            if m.command == OFP.OFPGC_DELETE:
                self.groups.pop(m.group_id, None)
            else:
                self.groups[m.group_id] = m
        elif m.kind == "meter_mod":
            if m.command == OFP.OFPMC_DELETE:
                self.meters.pop(m.meter_id, None)
            else:
                self.meters[m.meter_id] = m


def _match_bytes(match: Any) -> bytearray:
    buf = bytearray()
    match.serialize(buf, 0)
    return buf
