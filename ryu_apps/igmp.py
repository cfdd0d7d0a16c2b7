"""IGMP snooping and the querier (no framework imports; the app only moves packets).

Containers' IGMP reports and leaves reach the controller as packet-ins (table ``MCAST``, through
a meter).  :func:`parse_igmp` turns one into joins and leaves (v1/v2 reports, v2 leaves, v3
reports: ``EXCLUDE`` records join, ``INCLUDE`` records without sources leave).
:class:`Snooper` keeps each learned membership in the store under its own etcd lease of
``2Q + 10`` s: a repeated report is a lease keepalive (no new revision); a leave revokes it; a
receiver that stops answering expires.  Linux hosts report only when they join or when asked,
so the controller is the querier: every ``Q`` s :func:`general_query` goes out of every local
port of each snooping network.
"""

from __future__ import annotations

import json
import logging
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from intent import keys
from intent.mcast_doc import address_problem
from intent.model import EndpointSpec, NetworkSpec
from intent.store import LeaseExpired, Store, StoreError
from ofctl.mcast import snooping

LOG = logging.getLogger(__name__)

JOIN, LEAVE = "join", "leave"
QUERIER_MAC = bytes.fromhex("0200000000fe")
ALL_HOSTS = bytes([224, 0, 0, 1])
ALL_HOSTS_MAC = bytes.fromhex("01005e000001")
ROUTER_ALERT = bytes([0x94, 0x04, 0x00, 0x00])
V1_REPORT, V2_REPORT, V2_LEAVE, V3_REPORT, QUERY = 0x12, 0x16, 0x17, 0x22, 0x11
IS_INCLUDE, IS_EXCLUDE, TO_INCLUDE, TO_EXCLUDE, ALLOW, BLOCK = 1, 2, 3, 4, 5, 6


def _addr(b: bytes) -> str:
    return ".".join(str(x) for x in b)


def checksum(data: bytes) -> int:
    """The Internet checksum of ``data``."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def parse_igmp(frame: bytes) -> list[tuple[str, str]]:
    """``(join|leave, group address)`` of an Ethernet frame carrying IGMP ([] otherwise)."""
    if len(frame) < 14 + 20 + 8:
        return []
    eth_type = struct.unpack_from("!H", frame, 12)[0]
    off = 14
    if eth_type == 0x8100:
        eth_type, off = struct.unpack_from("!H", frame, 16)[0], 18
    if eth_type != 0x0800 or frame[off] >> 4 != 4 or frame[off + 9] != 2:
        return []
    igmp = frame[off + (frame[off] & 0xF) * 4:]
    if len(igmp) < 8:
        return []
    kind = igmp[0]
    if kind in (V1_REPORT, V2_REPORT):
        return [(JOIN, _addr(igmp[4:8]))]
    if kind == V2_LEAVE:
        return [(LEAVE, _addr(igmp[4:8]))]
    if kind != V3_REPORT:
        return []
    out = []
    n = struct.unpack_from("!H", igmp, 6)[0]
    pos = 8
    for _ in range(n):
        if pos + 8 > len(igmp):
            break
        rtype, aux, nsrc = igmp[pos], igmp[pos + 1], struct.unpack_from("!H", igmp, pos + 2)[0]
        group = _addr(igmp[pos + 4:pos + 8])
        if rtype in (IS_EXCLUDE, TO_EXCLUDE) or (rtype in (IS_INCLUDE, ALLOW) and nsrc):
            out.append((JOIN, group))
        elif rtype in (IS_INCLUDE, TO_INCLUDE) and not nsrc:
            out.append((LEAVE, group))
        pos += 8 + 4 * nsrc + 4 * aux
    return out


def general_query(src_ip: str, max_response: float) -> bytes:
    """An IGMPv2 general query from ``src_ip`` to 224.0.0.1 (TTL 1, router alert)."""
    igmp = struct.pack("!BBH4s", QUERY, max(1, min(255, int(max_response * 10))), 0, bytes(4))
    igmp = igmp[:2] + struct.pack("!H", checksum(igmp)) + igmp[4:]
    src = bytes(int(x) for x in src_ip.split("."))
    total = 24 + len(igmp)
    ip = struct.pack("!BBHHHBBH4s4s", 0x46, 0xC0, total, 0, 0, 1, 2, 0, src, ALL_HOSTS)
    ip += ROUTER_ALERT
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ALL_HOSTS_MAC + QUERIER_MAC + b"\x08\x00" + ip + igmp


@dataclass(frozen=True)
class Query:
    """One general query to send: out of ``ports`` of the switch of ``host``."""

    host: str
    network: str
    ports: tuple[int, ...]
    frame: bytes


class Snooper:
    """Learned memberships under leases; see the module docstring.  ``locate(host, ofport)``
    gives the endpoint on that port and its network (None: not one of ours)."""

    def __init__(self, store: Store, locate: Callable[[str, int], tuple[EndpointSpec,
                                                                        NetworkSpec] | None],
                 query_interval: float = 60.0) -> None:
        self.store = store
        self.locate = locate
        self.query_interval = query_interval
        self.leases: dict[str, object] = {}  # membership key -> Lease
        self.reports = 0

    @property
    def ttl(self) -> int:
        """Seconds a membership lives without a report: ``2Q + 10``."""
        return int(2 * self.query_interval + 10)

    def packet_in(self, host: str | None, in_port: int, frame: bytes) -> list[tuple[str, str]]:
        """Handle one packet-in; returns the (join|leave, key) store changes made."""
        reports = parse_igmp(frame)
        if host is None or not reports:
            return []
        found = self.locate(host, in_port)
        if found is None:
            return []
        ep, net = found
        if not snooping(net):
            return []
        done = []
        for what, group in reports:
            if address_problem(group):
                continue  # link-local groups flood; nothing to learn
            self.reports += 1
            key = keys.mcast_member(net.name, group, ep.id)
            try:
                (self.join if what == JOIN else self.leave)(key, host)
            except StoreError as exc:
                LOG.warning("IGMP %s of %s for %s not recorded: %s", what, ep.id, group, exc)
                continue
            done.append((what, key))
        return done

    def join(self, key: str, host: str) -> None:
        lease = self.leases.get(key)
        if lease is not None:
            try:
                lease.refresh()  # type: ignore[attr-defined]
                return
            except LeaseExpired:
                self.leases.pop(key, None)
        lease = self.store.lease(self.ttl)
        self.store.put(key, json.dumps({"host": host}), lease=lease.id)
        self.leases[key] = lease

    def leave(self, key: str, host: str) -> None:
        lease = self.leases.pop(key, None)
        if lease is not None:
            try:
                lease.revoke()  # type: ignore[attr-defined]
                return
            except LeaseExpired:
                pass
        self.store.delete(key)


def queries(hosts: Iterable[str], engine, max_response: float = 10.0) -> list[Query]:
    """The general queries of one round: per host, per snooping network present there."""
    out = []
    for host in hosts:
        for name in sorted(engine.present_networks(host)):
            net = engine.networks.get(name)
            if not snooping(net) or not net.gateway:
                continue
            ports = tuple(sorted(p for _, p in engine.local(name, host)))
            if ports:
                out.append(Query(host, name, ports, general_query(net.gateway, max_response)))
    return out
