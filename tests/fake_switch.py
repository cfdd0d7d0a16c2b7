"""A fake datapath for unit tests: a small OpenFlow 1.3 switch that speaks raw bytes.

It takes what the controller sends (bundles included), keeps flows, groups and meters as the
raw mod messages it received, and answers stats requests (filtered by table and cookie as a
switch does), barriers and bundle controls with real messages parsed by os-ken, so the
controller sees exactly what it sees from OVS.  It can be told to refuse the next bundle, to
refuse inner messages that match a predicate (an error naming their xid, as OVS does), or to
stay silent (a hung switch).
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from typing import Any

from os_ken.ofproto import ofproto_parser

from ofctl import wire
from ofctl.model import SwitchState
from ryu_apps.framework import install_raw_stats, ofproto_common
from ryu_apps.framework import ofproto_v1_3 as OFP
from ryu_apps.framework import ofproto_v1_3_parser as PARSER

install_raw_stats()
_BUNDLE_ADD_HDR = 24
BUNDLE_FLAGS = OFP.ONF_BF_ATOMIC | OFP.ONF_BF_ORDERED


class FakeDatapath:
    """Records messages and keeps a switch's tables."""

    def __init__(self, dpid: int, deliver: Callable[[Any, Any], None] | None = None):
        self.id = dpid
        self.ofproto = OFP
        self.ofproto_parser = PARSER
        self.deliver = deliver
        self.sent: list[tuple[str, bytes]] = []  # (kind, message), bundle-adds unwrapped
        self.flows: dict[tuple[int, int, bytes], bytes] = {}  # key -> flow_mod
        self.groups: dict[int, bytes] = {}
        self.meters: dict[int, bytes] = {}
        self.bundles: dict[int, list[bytes]] = {}
        self.fail_next_bundle = False
        self.refuse: Callable[[bytes], bool] | None = None  # inner messages to refuse
        self.silent = False
        self.committed_bundles = 0
        self.requests: list[int] = []  # multipart types asked for

    # ------------------------------------------------------------------ what tests look at
    def changes(self) -> list[bytes]:
        """Every flow/group/meter mod received (inside bundles or not)."""
        return [m for kind, m in self.sent
                if kind.removeprefix("bundled ") in ("flow_mod", "group_mod", "meter_mod")]

    def state(self) -> SwitchState:
        """What the switch holds, as model entries (the marker entry left out)."""
        flows = wire.parse_flow_stats(b"".join(_stats_entry(m) for m in self.flows.values()))
        return SwitchState(frozenset(f for f in flows if f.table != 250),
                           frozenset(wire.parse_group_desc(b"".join(
                               _group_entry(g) for g in self.groups.values()))),
                           frozenset(wire.parse_meter_config(b"".join(
                               _meter_entry(m) for m in self.meters.values()))))

    def add_flow(self, flow_mod: bytes) -> None:
        """Put an entry on the switch behind the controller's back."""
        self._apply(flow_mod)

    # ------------------------------------------------------------------ switch behaviour
    def send(self, buf: bytes) -> None:
        buf = bytes(buf)
        while buf:
            length = struct.unpack_from("!H", buf, 2)[0]
            one, buf = buf[:length], buf[length:]
            if self.silent:
                self.sent.append(("ignored", one))
                continue
            self._handle(one)

    def _handle(self, m: bytes) -> None:
        msg_type, xid = m[1], struct.unpack_from("!I", m, 4)[0]
        if msg_type == OFP.OFPT_EXPERIMENTER:
            exp_type = struct.unpack_from("!I", m, 12)[0]
            bundle_id = struct.unpack_from("!I", m, 16)[0]
            if exp_type == OFP.ONF_ET_BUNDLE_ADD_MESSAGE:
                inner = m[_BUNDLE_ADD_HDR:]
                self.sent.append(("bundled " + _kind(inner), inner))
                if self.refuse is not None and self.refuse(inner):
                    self._error(xid)
                    self.bundles.setdefault(bundle_id, []).append(b"")  # poisons the bundle
                else:
                    self.bundles.setdefault(bundle_id, []).append(inner)
                return
            ctrl = struct.unpack_from("!H", m, 20)[0]
            self.sent.append(("bundle_ctrl", m))
            if ctrl == OFP.ONF_BCT_OPEN_REQUEST:
                self.bundles[bundle_id] = []
                self._bundle_reply(xid, bundle_id, OFP.ONF_BCT_OPEN_REPLY)
            elif ctrl == OFP.ONF_BCT_COMMIT_REQUEST:
                msgs = self.bundles.pop(bundle_id, None)  # an add opened it, or an open did
                if self.fail_next_bundle or msgs is None or b"" in msgs:
                    self.fail_next_bundle = False
                    self._error(xid)
                    return
                for inner in msgs:
                    self._apply(inner)
                self.committed_bundles += 1
                self._bundle_reply(xid, bundle_id, OFP.ONF_BCT_COMMIT_REPLY)
            return
        self.sent.append((_kind(m), m))
        if msg_type == OFP.OFPT_BARRIER_REQUEST:
            self._reply(OFP.OFPT_BARRIER_REPLY, xid, b"")
        elif msg_type == OFP.OFPT_MULTIPART_REQUEST:
            self._multipart(m, xid)
        elif self.refuse is not None and self.refuse(m):
            self._error(xid)
        else:
            self._apply(m)

    def _multipart(self, m: bytes, xid: int) -> None:
        mp_type = struct.unpack_from("!H", m, 8)[0]
        self.requests.append(mp_type)
        if mp_type == OFP.OFPMP_FLOW:
            table, cookie, mask = m[16], *struct.unpack_from("!QQ", m, 32)
            entries = [_stats_entry(f) for (t, _p, _m), f in self.flows.items()
                       if (table == 0xFF or t == table)
                       and (struct.unpack_from("!Q", f, 8)[0] & mask) == (cookie & mask)]
        elif mp_type == OFP.OFPMP_GROUP_DESC:
            entries = [_group_entry(g) for g in self.groups.values()]
        elif mp_type == OFP.OFPMP_METER_CONFIG:
            entries = [_meter_entry(mm) for mm in self.meters.values()]
        else:
            entries = []
        half = len(entries) // 2  # two parts, like a real switch splitting a long reply
        for part, flags in ((entries[:half], OFP.OFPMPF_REPLY_MORE), (entries[half:], 0)):
            self._reply(OFP.OFPT_MULTIPART_REPLY, xid,
                        struct.pack("!HH4x", mp_type, flags) + b"".join(part))

    def _reply(self, msg_type: int, xid: int, body: bytes) -> None:
        if self.deliver is None:
            return
        buf = struct.pack("!BBHI", OFP.OFP_VERSION, msg_type, 8 + len(body), xid) + body
        msg = ofproto_parser.msg(self, OFP.OFP_VERSION, msg_type, len(buf), xid, bytearray(buf))
        msg.datapath = self
        self.deliver(self, msg)

    def _bundle_reply(self, xid: int, bundle_id: int, type_: int) -> None:
        self._reply(OFP.OFPT_EXPERIMENTER, xid, struct.pack(
            "!IIIHH", ofproto_common.ONF_EXPERIMENTER_ID, OFP.ONF_ET_BUNDLE_CONTROL, bundle_id,
            type_, BUNDLE_FLAGS))

    def _error(self, xid: int) -> None:
        self._reply(OFP.OFPT_ERROR, xid, struct.pack("!HH", OFP.OFPET_BAD_REQUEST, 0))

    def _apply(self, m: bytes) -> None:
        msg_type = m[1]
        if msg_type == OFP.OFPT_FLOW_MOD:
            table, command, priority = m[24], m[25], struct.unpack_from("!H", m, 30)[0]
            mlen = struct.unpack_from("!H", m, 50)[0]
            key = (table, priority, m[48:48 + (mlen + 7) // 8 * 8])
            if command == OFP.OFPFC_ADD:
                self.flows[key] = m
            elif command == OFP.OFPFC_DELETE_STRICT:
                self.flows.pop(key, None)
        elif msg_type == OFP.OFPT_GROUP_MOD:
            command, group_id = struct.unpack_from("!H", m, 8)[0], struct.unpack_from(
                "!I", m, 12)[0]
            if command == OFP.OFPGC_DELETE:
                self.groups.pop(group_id, None)
            else:
                self.groups[group_id] = m
        elif msg_type == OFP.OFPT_METER_MOD:
            command, meter_id = struct.unpack_from("!H", m, 8)[0], struct.unpack_from(
                "!I", m, 12)[0]
            if command == OFP.OFPMC_DELETE:
                self.meters.pop(meter_id, None)
            else:
                self.meters[meter_id] = m


def _kind(m: bytes) -> str:
    return {OFP.OFPT_FLOW_MOD: "flow_mod", OFP.OFPT_GROUP_MOD: "group_mod",
            OFP.OFPT_METER_MOD: "meter_mod", OFP.OFPT_BARRIER_REQUEST: "barrier",
            OFP.OFPT_MULTIPART_REQUEST: "multipart"}.get(m[1], f"type{m[1]}")


def _stats_entry(flow_mod: bytes) -> bytes:
    cookie, table, priority = struct.unpack_from("!Q", flow_mod, 8)[0], flow_mod[24], \
        struct.unpack_from("!H", flow_mod, 30)[0]
    body = flow_mod[48:]
    return struct.pack("!HBxIIHHHH4xQQQ", 48 + len(body), table, 0, 0, priority, 0, 0, 0,
                       cookie, 0, 0) + body


def _group_entry(group_mod: bytes) -> bytes:
    gtype, group_id = group_mod[10], struct.unpack_from("!I", group_mod, 12)[0]
    body = group_mod[16:]
    return struct.pack("!HBxI", 8 + len(body), gtype, group_id) + body


def _meter_entry(meter_mod: bytes) -> bytes:
    flags, meter_id = struct.unpack_from("!HI", meter_mod, 10)
    body = meter_mod[16:]
    return struct.pack("!HHI", 8 + len(body), flags, meter_id) + body
