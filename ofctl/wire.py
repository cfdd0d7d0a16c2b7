"""OpenFlow 1.3 on the wire, packed and parsed directly with ``struct`` (no os-ken objects).

Packing produces exactly the bytes os-ken's encoder (:mod:`ofctl.encode`) produces for the same
message (a unit test checks every kind of entry the pipeline emits); it is several times faster,
and a flow's bytes are cached on the entry.  Parsing turns flow-stats, group-desc and
meter-config replies back into model entries; an entry with anything the model does not know
(an action, instruction, group type or field we never install) becomes a :class:`Foreign` that
keeps its raw match, so the controller can delete exactly it.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from ofctl.model import (
    FIELD_BITS,
    OFPCML_NO_BUFFER,
    OFPP_CONTROLLER,
    Action,
    ApplyActions,
    ApplyMeter,
    Bucket,
    ClearActions,
    Ct,
    DecTtl,
    Flow,
    GotoTable,
    Group,
    GroupAction,
    Instruction,
    MatchField,
    Meter,
    MeterBand,
    Move,
    Output,
    OutputReg,
    PopVlan,
    PushVlan,
    SetField,
    WriteActions,
    WriteMetadata,
    canonical_buckets,
    from_int,
    instructions,
    masked_field,
    to_int,
)

OFP_VERSION = 4
OFPT_FLOW_MOD, OFPT_GROUP_MOD, OFPT_METER_MOD = 14, 15, 29
OFPT_MULTIPART_REQUEST, OFPT_BARRIER_REQUEST = 18, 20
OFPFC_ADD, OFPFC_DELETE_STRICT = 0, 4
OFPGC_ADD, OFPGC_MODIFY, OFPGC_DELETE = 0, 1, 2
OFPMC_ADD, OFPMC_MODIFY, OFPMC_DELETE = 0, 1, 2
OFPMP_FLOW, OFPMP_GROUP_DESC, OFPMP_METER_CONFIG = 1, 7, 10
OFPIT_GOTO_TABLE, OFPIT_WRITE_METADATA, OFPIT_WRITE_ACTIONS = 1, 2, 3
OFPIT_APPLY_ACTIONS, OFPIT_CLEAR_ACTIONS, OFPIT_METER = 4, 5, 6
OFPAT_OUTPUT, OFPAT_PUSH_VLAN, OFPAT_POP_VLAN = 0, 17, 18
OFPAT_GROUP, OFPAT_SET_FIELD, OFPAT_EXPERIMENTER = 22, 25, 0xFFFF
OFPAT_DEC_NW_TTL = 24
NX_EXPERIMENTER, NXAST_REG_MOVE, NXAST_OUTPUT_REG, NXAST_CT = 0x00002320, 6, 15, 35
NXAST_REG_LOAD, NXAST_REG_LOAD2 = 7, 33
CT_NO_RECIRC = 255
OFPGT_ALL = 0
OFPMBT_DROP = 1
NO_BUFFER = ANY = 0xFFFFFFFF
OFPTT_ALL = 0xFF
METER_FLAGS = (("kbps", 1), ("pktps", 2), ("burst", 4), ("stats", 8))

OFB, NXM0, NXM1 = 0x8000, 0x0000, 0x0001

# model field name -> (OXM class, field, bytes) as os-ken encodes it
FIELDS: dict[str, tuple[int, int, int]] = {
    "in_port": (OFB, 0, 4), "metadata": (OFB, 2, 8), "eth_dst": (OFB, 3, 6),
    "eth_src": (OFB, 4, 6), "eth_type": (OFB, 5, 2), "vlan_vid": (OFB, 6, 2),
    "vlan_pcp": (OFB, 7, 1), "ip_dscp": (OFB, 8, 1), "ip_ecn": (OFB, 9, 1),
    "ip_proto": (OFB, 10, 1), "ipv4_src": (OFB, 11, 4), "ipv4_dst": (OFB, 12, 4),
    "tcp_src": (OFB, 13, 2), "tcp_dst": (OFB, 14, 2), "udp_src": (OFB, 15, 2),
    "udp_dst": (OFB, 16, 2), "icmpv4_type": (OFB, 19, 1), "icmpv4_code": (OFB, 20, 1),
    "arp_op": (OFB, 21, 2), "arp_spa": (OFB, 22, 4), "arp_tpa": (OFB, 23, 4),
    "arp_sha": (OFB, 24, 6), "arp_tha": (OFB, 25, 6), "tunnel_id": (OFB, 38, 8),
    "tun_ipv4_src": (NXM1, 31, 4), "tun_ipv4_dst": (NXM1, 32, 4), "pkt_mark": (NXM1, 33, 4),
    "conj_id": (NXM1, 37, 4), "ct_state": (NXM1, 105, 4), "ct_zone": (NXM1, 106, 2),
    "ct_mark": (NXM1, 107, 4), "ct_label": (NXM1, 108, 16), "nw_ttl": (NXM1, 29, 1),
    **{f"reg{i}": (NXM1, i, 4) for i in range(16)},
}
# (class, field) -> model name, including the Nicira synonyms a switch may answer with
NAMES: dict[tuple[int, int], str] = {(c, f): n for n, (c, f, _) in FIELDS.items()}
NAMES.update({(NXM0, 0): "in_port", (NXM0, 1): "eth_dst", (NXM0, 2): "eth_src",
              (NXM0, 3): "eth_type", (NXM0, 6): "ip_proto", (NXM0, 7): "ipv4_src",
              (NXM0, 8): "ipv4_dst", (NXM0, 15): "arp_op", (NXM0, 16): "arp_spa",
              (NXM0, 17): "arp_tpa", (NXM1, 16): "tunnel_id", (NXM1, 17): "arp_sha",
              (NXM1, 18): "arp_tha"})

_HDR = struct.Struct("!BBHI")
_FLOW_MOD = struct.Struct("!BBHIQQBBHHHIIIH2x")
_OXM = struct.Struct("!I")
_U8, _U16, _U32, _U64 = (struct.Struct(f) for f in ("!B", "!H", "!I", "!Q"))


class WireError(ValueError):
    """Bytes the parser cannot make sense of (truncated, or not what was asked for)."""


def _pad8(n: int) -> int:
    return (n + 7) // 8 * 8


def _value_bytes(name: str, value, size: int) -> bytes:
    return to_int(name, value).to_bytes(size, "big")


def oxm(name: str, value, mask=None) -> bytes:
    """One OXM TLV (header, value, mask)."""
    cls, field, size = FIELDS[name]
    if name == "in_port" and cls == NXM0:
        size = 2
    body = _value_bytes(name, value, size)
    if mask is not None:
        body += _value_bytes(name, mask, size)
    return _OXM.pack(cls << 16 | field << 9 | (mask is not None) << 8 | len(body)) + body


def _field_order(name: str) -> int:
    cls, field, _ = FIELDS[name]
    return field | cls << 7  # os-ken sorts fields by this


_ORDER = {name: _field_order(name) for name in FIELDS}
_PACKED_FIELDS: dict[tuple, bytes] = {}  # match field -> its OXM TLV
_PACKED_ACTIONS: dict[Action, bytes] = {}  # action -> its bytes
_PACKED_MAX = 1 << 14  # a bound: a full cache is emptied and starts again


def _field_rank(f) -> int:
    return _ORDER[f[0]]


def _oxm_of(f) -> bytes:
    """``oxm`` of one match field, cached (equal fields pack to equal bytes)."""
    out = _PACKED_FIELDS.get(f)
    if out is None:
        out = oxm(f[0], f[1], f[2])
        if len(_PACKED_FIELDS) >= _PACKED_MAX:
            _PACKED_FIELDS.clear()
        _PACKED_FIELDS[f] = out
    return out


def pack_match(m) -> bytes:
    """An ``ofp_match`` (OXM type), padded to 8 bytes, fields in os-ken's order."""
    fields = b"".join([_oxm_of(f) for f in sorted(m, key=_field_rank)])
    length = 4 + len(fields)
    return _U16.pack(1) + _U16.pack(length) + fields + bytes(_pad8(length) - length)


def _packed_action(a: Action) -> bytes:
    """``pack_action``, cached (equal actions pack to equal bytes)."""
    out = _PACKED_ACTIONS.get(a)
    if out is None:
        out = pack_action(a)
        if len(_PACKED_ACTIONS) >= _PACKED_MAX:
            _PACKED_ACTIONS.clear()
        _PACKED_ACTIONS[a] = out
    return out


def _oxm_header(name: str) -> bytes:
    cls, field, size = FIELDS[name]
    return _OXM.pack(cls << 16 | field << 9 | size)


def pack_action(a: Action) -> bytes:
    if isinstance(a, Output):
        return struct.pack("!HHIH6x", OFPAT_OUTPUT, 16, a.port,
                           OFPCML_NO_BUFFER if a.port == OFPP_CONTROLLER else 0)
    if isinstance(a, SetField):
        tlv = oxm(a.name, a.value)
        length = _pad8(4 + len(tlv))
        return _U16.pack(OFPAT_SET_FIELD) + _U16.pack(length) + tlv + bytes(length - 4 -
                                                                             len(tlv))
    if isinstance(a, GroupAction):
        return struct.pack("!HHI", OFPAT_GROUP, 8, a.group_id)
    if isinstance(a, PushVlan):
        return struct.pack("!HHH2x", OFPAT_PUSH_VLAN, 8, a.ethertype)
    if isinstance(a, PopVlan):
        return struct.pack("!HH4x", OFPAT_POP_VLAN, 8)
    if isinstance(a, DecTtl):
        return struct.pack("!HH4x", OFPAT_DEC_NW_TTL, 8)
    if isinstance(a, Move):
        return struct.pack("!HHIHHHH", OFPAT_EXPERIMENTER, 24, NX_EXPERIMENTER, NXAST_REG_MOVE,
                           a.n_bits, 0, 0) + _oxm_header(a.src) + _oxm_header(a.dst)
    if isinstance(a, Ct):
        zone_src = _oxm_header(a.zone_src) if a.zone_src else bytes(4)
        return struct.pack("!HHIHH", OFPAT_EXPERIMENTER, 24, NX_EXPERIMENTER, NXAST_CT,
                           1 if a.commit else 0) + zone_src + struct.pack(
            "!HB3xH", 15 if a.zone_src else a.zone,
            CT_NO_RECIRC if a.table is None else a.table, 0)
    if isinstance(a, OutputReg):
        return struct.pack("!HHIHH", OFPAT_EXPERIMENTER, 24, NX_EXPERIMENTER, NXAST_OUTPUT_REG,
                           31) + _oxm_header(a.field) + struct.pack("!H6x", 0)
    raise TypeError(f"cannot pack action {a!r}")


def pack_instruction(i: Instruction) -> bytes:
    if isinstance(i, GotoTable):
        return struct.pack("!HHB3x", OFPIT_GOTO_TABLE, 8, i.table)
    if isinstance(i, ApplyMeter):
        return struct.pack("!HHI", OFPIT_METER, 8, i.meter_id)
    if isinstance(i, WriteMetadata):
        return struct.pack("!HH4xQQ", OFPIT_WRITE_METADATA, 24, i.value, i.mask)
    if isinstance(i, (ApplyActions, WriteActions, ClearActions)):
        kind = (OFPIT_APPLY_ACTIONS if isinstance(i, ApplyActions) else
                OFPIT_WRITE_ACTIONS if isinstance(i, WriteActions) else OFPIT_CLEAR_ACTIONS)
        acts = b"".join([_packed_action(a) for a in getattr(i, "actions", ())])
        return struct.pack("!HH4x", kind, 8 + len(acts)) + acts
    raise TypeError(f"cannot pack instruction {i!r}")


def _header(msg_type: int, length: int, xid: int) -> bytes:
    return _HDR.pack(OFP_VERSION, msg_type, length, xid)


def _flow_mod(f: Flow, command: int, body: bytes, xid: int) -> bytes:
    return _FLOW_MOD.pack(OFP_VERSION, OFPT_FLOW_MOD, 48 + len(body), xid, f.cookie, 0, f.table,
                          command, 0, 0, f.priority, NO_BUFFER, ANY, ANY, 0) + body


def flow_add(f: Flow, xid: int = 0) -> bytes:
    """OFPFC_ADD of ``f`` (cached per entry when ``xid`` is 0)."""
    cached = f.__dict__.get("_wire_add") if xid == 0 else None
    if cached is not None:
        return cached
    body = _match_bytes(f) + b"".join([pack_instruction(i) for i in f.instructions])
    out = _flow_mod(f, OFPFC_ADD, body, xid)
    if xid == 0:
        object.__setattr__(f, "_wire_add", out)
    return out


def _match_bytes(f: Flow) -> bytes:
    m = f.__dict__.get("_wire_match")
    if m is None:
        m = pack_match(f.match)
        object.__setattr__(f, "_wire_match", m)
    return m


def flow_delete(f: Flow, xid: int = 0) -> bytes:
    """OFPFC_DELETE_STRICT of ``f`` (by table, priority and match)."""
    return _flow_mod(f, OFPFC_DELETE_STRICT, _match_bytes(f), xid)


def flow_delete_raw(table: int, priority: int, match: bytes, cookie: int = 0,
                    xid: int = 0) -> bytes:
    """OFPFC_DELETE_STRICT by a raw ``ofp_match`` (as a switch reported it)."""
    return _FLOW_MOD.pack(OFP_VERSION, OFPT_FLOW_MOD, 48 + len(match), xid, cookie, 0, table,
                          OFPFC_DELETE_STRICT, 0, 0, priority, NO_BUFFER, ANY, ANY, 0) + match


def _bucket_bytes(b: Bucket) -> bytes:
    """One ``ofp_bucket`` (cached on the bucket: a flood group re-sent on every member change
    keeps most of its buckets)."""
    out = b.__dict__.get("_wire")
    if out is None:
        acts = b"".join([_packed_action(a) for a in b.actions])
        out = struct.pack("!HHII4x", 16 + len(acts), 0, ANY, ANY) + acts
        object.__setattr__(b, "_wire", out)
    return out


def group_mod(g: Group, command: int, xid: int = 0) -> bytes:
    buckets = b""
    if command != OFPGC_DELETE:
        buckets = b"".join([_bucket_bytes(b) for b in g.buckets])
    body = struct.pack("!HBxI", command, OFPGT_ALL, g.group_id) + buckets
    return _header(OFPT_GROUP_MOD, 8 + len(body), xid) + body


def meter_mod(m: Meter, command: int, xid: int = 0) -> bytes:
    flags = sum(bit for name, bit in METER_FLAGS if name in m.flags)
    bands = b"" if command == OFPMC_DELETE else b"".join(
        struct.pack("!HHII4x", OFPMBT_DROP, 16, b.rate, b.burst) for b in m.bands)
    body = struct.pack("!HHI", command, flags, m.meter_id) + bands
    return _header(OFPT_METER_MOD, 8 + len(body), xid) + body


def barrier(xid: int) -> bytes:
    return _header(OFPT_BARRIER_REQUEST, 8, xid)


def multipart_request(mp_type: int, body: bytes, xid: int) -> bytes:
    payload = struct.pack("!HH4x", mp_type, 0) + body
    return _header(OFPT_MULTIPART_REQUEST, 8 + len(payload), xid) + payload


def flow_stats_request(xid: int, table: int = OFPTT_ALL, cookie: int = 0,
                       cookie_mask: int = 0) -> bytes:
    """All flows (of one table, of cookies matching ``cookie``/``cookie_mask``)."""
    body = struct.pack("!B3xII4xQQ", table, ANY, ANY, cookie, cookie_mask) + pack_match(())
    return multipart_request(OFPMP_FLOW, body, xid)


def group_desc_request(xid: int) -> bytes:
    return multipart_request(OFPMP_GROUP_DESC, b"", xid)


def meter_config_request(xid: int) -> bytes:
    return multipart_request(OFPMP_METER_CONFIG, struct.pack("!I4x", ANY), xid)


# --------------------------------------------------------------------------- parsing


class Unknown(Exception):
    """Something the model does not know (the entry is foreign)."""


@dataclass(frozen=True)
class Foreign:
    """A flow the controller did not (or could not have) produced: delete it by ``raw_match``."""

    table: int
    priority: int
    cookie: int
    raw_match: bytes
    why: str


def _parse_oxm(buf: bytes, off: int, end: int, with_mask: bool = True):
    out = []
    while off + 4 <= end:
        hdr = _OXM.unpack_from(buf, off)[0]
        cls, field, hasmask, length = hdr >> 16, hdr >> 9 & 0x7F, hdr >> 8 & 1, hdr & 0xFF
        name = NAMES.get((cls, field))
        if name is None:
            raise Unknown(f"field class {cls:#x} number {field}")
        raw = buf[off + 4:off + 4 + length]
        if hasmask:
            half = length // 2
            value, mask = int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        else:
            value, mask = int.from_bytes(raw, "big"), None
        if mask is not None and not with_mask:
            raise Unknown("masked field in an action")
        out.append((name, value, mask))
        off += 4 + length
    return out


_MISSING = object()
_FIELDS_SEEN: dict[bytes, MatchField | None] = {}  # OXM TLV bytes -> its match field
_ACTIONS_SEEN: dict[bytes, Action] = {}  # action bytes -> the action
_SEEN_MAX = 1 << 14  # a bound: a full cache is emptied and starts again


def _remember(cache: dict, key: bytes, value: object) -> None:
    if len(cache) >= _SEEN_MAX:
        cache.clear()
    cache[key] = value


def _match_field(tlv: bytes) -> MatchField | None:
    """The canonical field of one OXM TLV (None: a zero mask, no field)."""
    ((name, value, mask),) = _parse_oxm(tlv, 0, 4)
    if mask is not None and FIELD_BITS.get(name) is None:
        raise Unknown(f"masked {name}")
    return masked_field(name, from_int(name, value), None if mask is None else
                        from_int(name, mask))


def parse_match(buf: bytes, off: int) -> tuple[tuple, bytes, int]:
    """(model match, raw padded ofp_match bytes, bytes consumed) at ``off``."""
    mtype, length = struct.unpack_from("!HH", buf, off)
    padded = _pad8(length)
    raw = bytes(buf[off:off + padded])
    if mtype != 1:
        raise Unknown(f"match type {mtype}")
    fields = []
    pos, end = off + 4, off + length
    seen = _FIELDS_SEEN
    while pos + 4 <= end:  # each TLV decodes from its own bytes alone: cached by them
        tlv = bytes(buf[pos:pos + 4 + buf[pos + 3]])
        f = seen.get(tlv, _MISSING)
        if f is _MISSING:
            f = _match_field(tlv)
            _remember(seen, tlv, f)
        if f is not None:
            fields.append(f)
        pos += 4 + buf[pos + 3]
    fields.sort()
    return tuple(fields), raw, padded


def _reach(buf: bytes, off: int, atype: int) -> int:
    """How many bytes from ``off`` decoding the action there reads."""
    if atype == OFPAT_SET_FIELD:
        return 8 + buf[off + 7]
    return 24 if atype == OFPAT_EXPERIMENTER else 8


def parse_actions(buf: bytes, off: int, end: int) -> tuple[Action, ...]:
    out: list[Action] = []
    seen = _ACTIONS_SEEN
    while off < end:
        atype, length = struct.unpack_from("!HH", buf, off)
        if length < 8 or off + length > end:
            raise WireError("truncated action")
        raw = bytes(buf[off:off + length])
        a = seen.get(raw)
        if a is None:
            a = _parse_action(buf, off, atype)
            if _reach(buf, off, atype) <= length:  # decoded from its own bytes alone
                _remember(seen, raw, a)
        out.append(a)
        off += length
    return tuple(out)


def _parse_action(buf: bytes, off: int, atype: int) -> Action:
    if atype == OFPAT_OUTPUT:
        return Output(_U32.unpack_from(buf, off + 4)[0])
    if atype == OFPAT_SET_FIELD:
        (name, value, _m), = _parse_oxm(buf, off + 4, off + 8 + _U8.unpack_from(
            buf, off + 7)[0], with_mask=False)
        return SetField(name, from_int(name, value))
    if atype == OFPAT_GROUP:
        return GroupAction(_U32.unpack_from(buf, off + 4)[0])
    if atype == OFPAT_PUSH_VLAN:
        return PushVlan(_U16.unpack_from(buf, off + 4)[0])
    if atype == OFPAT_POP_VLAN:
        return PopVlan()
    if atype == OFPAT_DEC_NW_TTL:
        return DecTtl()
    if atype == OFPAT_EXPERIMENTER:
        return _parse_nx(buf, off)
    raise Unknown(f"action type {atype}")


def _field_at(buf: bytes, off: int) -> str:
    h = _U32.unpack_from(buf, off)[0]
    name = NAMES.get((h >> 16, h >> 9 & 0x7F))
    if name is None:
        raise Unknown("an action on an unknown field")
    return name


def _parse_nx(buf: bytes, off: int) -> Action:
    exp, subtype = struct.unpack_from("!IH", buf, off + 4)
    if exp == NX_EXPERIMENTER and subtype == NXAST_CT:
        flags, zone_hdr, zone_bits, table, alg = struct.unpack_from("!HIHB3xH", buf, off + 10)
        length = _U16.unpack_from(buf, off + 2)[0]
        if alg or flags & ~1 or length != 24:
            raise Unknown("conntrack options not modelled")
        zone_src = _field_at(buf, off + 12) if zone_hdr else None
        if zone_src and zone_bits != 15:
            raise Unknown("conntrack zone from part of a field")
        return Ct(commit=bool(flags & 1), zone_src=zone_src, zone=0 if zone_src else zone_bits,
                  table=None if table == CT_NO_RECIRC else table)
    if exp == NX_EXPERIMENTER and subtype == NXAST_OUTPUT_REG:
        ofs_nbits, _hdr, max_len = struct.unpack_from("!HIH", buf, off + 10)
        if ofs_nbits != 31 or max_len:
            raise Unknown("output from part of a register")
        return OutputReg(_field_at(buf, off + 12))
    if exp != NX_EXPERIMENTER or subtype != NXAST_REG_MOVE:
        raise Unknown(f"experimenter action {exp:#x}/{subtype}")
    n_bits, src_ofs, dst_ofs, src, dst = struct.unpack_from("!HHHII", buf, off + 10)
    if src_ofs or dst_ofs:
        raise Unknown("partial-field move")
    names = [NAMES.get((h >> 16, h >> 9 & 0x7F)) for h in (src, dst)]
    if None in names:
        raise Unknown("move of an unknown field")
    return Move(names[0], names[1], n_bits)


def parse_instructions(buf: bytes, off: int, end: int) -> tuple[Instruction, ...]:
    out: list[Instruction] = []
    while off < end:
        itype, length = struct.unpack_from("!HH", buf, off)
        if length < 8 or off + length > end:
            raise WireError("truncated instruction")
        if itype == OFPIT_GOTO_TABLE:
            out.append(GotoTable(_U8.unpack_from(buf, off + 4)[0]))
        elif itype == OFPIT_WRITE_METADATA:
            value, mask = struct.unpack_from("!QQ", buf, off + 8)
            out.append(WriteMetadata(value, mask))
        elif itype == OFPIT_APPLY_ACTIONS:
            out.append(ApplyActions(parse_actions(buf, off + 8, off + length)))
        elif itype == OFPIT_WRITE_ACTIONS:
            out.append(WriteActions(parse_actions(buf, off + 8, off + length)))
        elif itype == OFPIT_CLEAR_ACTIONS:
            out.append(ClearActions())
        elif itype == OFPIT_METER:
            out.append(ApplyMeter(_U32.unpack_from(buf, off + 4)[0]))
        else:
            raise Unknown(f"instruction type {itype}")
        off += length
    return instructions(*out)


_FLOW_STATS = struct.Struct("!HBxIIHHHH4xQQQ")


def parse_flow_stats(body: bytes) -> list[Flow | Foreign]:
    """The entries of a flow-stats reply body (after the multipart header)."""
    out: list[Flow | Foreign] = []
    body = body if isinstance(body, bytes) else bytes(body)
    off = 0
    while off < len(body):
        (length, table, _ds, _dn, priority, _it, _ht, _fl, cookie, _pc,
         _bc) = _FLOW_STATS.unpack_from(body, off)
        if length < _FLOW_STATS.size or off + length > len(body):
            raise WireError("truncated flow stats entry")
        moff = off + _FLOW_STATS.size
        try:
            raw = bytes(body[moff:moff + _pad8(_U16.unpack_from(body, moff + 2)[0])])
            m, raw, used = parse_match(body, moff)
            instr = parse_instructions(body, moff + used, off + length)
            out.append(Flow(table, priority, m, instr, cookie))
        except Unknown as exc:
            out.append(Foreign(table, priority, cookie, raw, str(exc)))
        off += length
    return out


def parse_group_desc(body: bytes) -> list[Group | int]:
    """Groups of a group-desc reply body; a group the model cannot hold is its bare id."""
    out: list[Group | int] = []
    body = body if isinstance(body, bytes) else bytes(body)
    off = 0
    while off < len(body):
        length, gtype, group_id = struct.unpack_from("!HBxI", body, off)
        try:
            if gtype != OFPGT_ALL:
                raise Unknown(f"group type {gtype}")
            buckets = []
            boff = off + 8
            while boff < off + length:
                blen = _U16.unpack_from(body, boff)[0]
                buckets.append(Bucket(parse_actions(body, boff + 16, boff + blen)))
                boff += blen
            out.append(Group(group_id, canonical_buckets(buckets)))
        except Unknown:
            out.append(group_id)
        off += length
    return out


def parse_meter_config(body: bytes) -> list[Meter | int]:
    """Meters of a meter-config reply body; one the model cannot hold is its bare id."""
    out: list[Meter | int] = []
    off = 0
    while off < len(body):
        length, flags, meter_id = struct.unpack_from("!HHI", body, off)
        bands, boff, ok = [], off + 8, True
        while boff < off + length:
            btype, blen, rate, burst = struct.unpack_from("!HHII", body, boff)
            if btype != OFPMBT_DROP:
                ok = False
            bands.append(MeterBand(rate, burst))
            boff += blen
        names = tuple(n for n, bit in METER_FLAGS if flags & bit)
        out.append(Meter(meter_id, tuple(bands), names) if ok else meter_id)
        off += length
    return out
