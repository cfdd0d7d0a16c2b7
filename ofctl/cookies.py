"""Cookies: every entry names the intent object that produced it.

A cookie is 64 bits: the top byte is a kind tag, the low 56 bits a hash (BLAKE2b) of the object's
name.  The same object always gets the same cookie, on every host and every controller run.
:func:`describe` turns a cookie back into text: exactly with the intent at hand, otherwise from
the names this process has already seen.

Network ids (metadata, group ids) are derived from what makes a network unique on the wire, not
from list order: a VXLAN network's id is its VNI, a VLAN network's id is ``1 << 24 | vlan``.  Both
are globally unique (the allocator hands out VLAN ids and VNIs once), small (25 bits), and stable
when other networks come and go.
"""

from __future__ import annotations

import hashlib

from intent.model import VXLAN, ResolvedIntent

PIPELINE = 0x01
HOST = 0x02
NETWORK = 0x03
ENDPOINT = 0x04
RULE = 0x05  # "tenant/policy/rule-id"
QOS = 0x06  # endpoint id: its meter and DSCP entries
MCAST = 0x07  # "<network>" (snooping entries) or "<network>/<group address>"
ROUTER = 0x08  # "tenant/router"
KIND_NAMES = {PIPELINE: "pipeline", HOST: "host", NETWORK: "network", ENDPOINT: "endpoint",
              RULE: "policy rule", ROUTER: "router", QOS: "QoS of endpoint",
              MCAST: "multicast"}

_seen: dict[int, str] = {}
_cache: dict[tuple[int, str], int] = {}

NET_ID_BITS = 25
VLAN_NET_FLAG = 1 << 24


def cookie_for(kind: int, name: str) -> int:
    """The cookie of intent object ``name`` of ``kind``."""
    c = _cache.get((kind, name))
    if c is None:
        digest = hashlib.blake2b(name.encode(), digest_size=7).digest()
        c = (kind << 56) | int.from_bytes(digest, "big")
        _cache[(kind, name)] = c
        _seen[c] = f"{KIND_NAMES[kind]} {name}"
    return c


def kind_of(cookie: int) -> int:
    return cookie >> 56


def describe(cookie: int, intent: ResolvedIntent | None = None) -> str:
    """The intent object behind a cookie, e.g. ``"endpoint orange-c1"``."""
    if intent is not None:
        for n in intent.networks:
            cookie_for(NETWORK, n.name)
        for e in intent.endpoints:
            cookie_for(ENDPOINT, e.id)
        for h in intent.hosts:
            cookie_for(HOST, h.name)
    if cookie in _seen:
        return _seen[cookie]
    kind = KIND_NAMES.get(kind_of(cookie), "unknown")
    return f"{kind} #{cookie & ((1 << 56) - 1):014x}"


def network_id(net_type: str, tag: int) -> int:
    """Stable small id of a network: VNI for VXLAN, ``1<<24 | vlan`` for VLAN."""
    if net_type == VXLAN:
        if not 0 < tag < (1 << 24):
            raise ValueError(f"VNI out of range: {tag}")
        return tag
    if not 0 < tag < 4095:
        raise ValueError(f"VLAN id out of range: {tag}")
    return VLAN_NET_FLAG | tag
