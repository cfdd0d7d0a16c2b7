"""Pure allocation over pools: the next free VLAN id / VNI, subnet block and endpoint IP.

Atomicity is the store's job (see ``allocator.write``): these functions only pick the lowest
free value given what is already taken, so a retry after a lost compare-and-swap picks the next.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from functools import lru_cache

from netaddr import IPAddress, IPNetwork

from intent.errors import PoolExhausted


def next_free_id(ranges: Iterable[tuple[int, int]], used: set[int], pool: str) -> int:
    """Lowest id within the inclusive ``ranges`` that is not in ``used``."""
    for lo, hi in sorted(ranges):
        value = lo
        while value <= hi:
            if value not in used:
                return value
            value += 1
    raise PoolExhausted(pool)


@lru_cache(maxsize=65536)
def _span(cidr: str) -> tuple[int, int]:
    net = IPNetwork(cidr)
    return net.first, net.last


def next_free_subnet(pool_cidr: str, length: int, used: Iterable[str], pool: str) -> str:
    """Lowest ``/length`` block of ``pool_cidr`` that overlaps none of the ``used`` CIDRs."""
    block_size = 1 << (32 - length)
    first, last = _span(pool_cidr)
    start = first
    for lo, hi in sorted(_span(c) for c in used):  # taken spans, lowest first
        if start + block_size - 1 < lo:
            break  # the block fits below this span (and every later one)
        if hi >= start:  # it overlaps: the next aligned block above it
            start += ((hi - start) // block_size + 1) * block_size
    if start + block_size - 1 <= last:
        return f"{IPAddress(start)}/{length}"
    raise PoolExhausted(pool)


def default_gateway(subnet: str) -> str:
    """The first host address of ``subnet``."""
    return str(IPAddress(IPNetwork(subnet).first + 1))


def next_free_ip(subnet: str, gateway: str | None, used: set[str], pool: str) -> str:
    """Lowest host address of ``subnet`` that is not the gateway and not in ``used``."""
    net = ipaddress.IPv4Network(subnet)
    blocked = {int(ipaddress.IPv4Address(ip)) for ip in used}
    if gateway:
        blocked.add(int(ipaddress.IPv4Address(gateway)))
    first, last = int(net.network_address), int(net.broadcast_address)
    for value in range(first + 1, last):
        if value not in blocked:
            return str(ipaddress.IPv4Address(value))
    raise PoolExhausted(pool)


def mac_for(ip: str) -> str:
    """Deterministic locally administered MAC for an endpoint IP: ``02:00:<ip bytes>``.

    Unique within a network (IPs are), which is the scope every MAC lookup uses (flows match the
    network id in metadata first).
    """
    value = int(ipaddress.IPv4Address(ip))
    octets = [0x02, 0x00] + [(value >> s) & 0xFF for s in (24, 16, 8, 0)]
    return ":".join(f"{o:02x}" for o in octets)


def ip_int(ip: str) -> int:
    """An IPv4 address as an integer (fast: no validation beyond ``int``)."""
    a, b, c, d = ip.split(".")
    return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)


def ip_str(value: int) -> str:
    """An integer as a dotted IPv4 address."""
    return f"{value >> 24 & 255}.{value >> 16 & 255}.{value >> 8 & 255}.{value & 255}"


@lru_cache(maxsize=65536)
def subnet_bounds(subnet: str) -> tuple[int, int]:
    """(network address, broadcast address) of ``subnet`` as integers."""
    base, length = subnet.split("/")
    size = 1 << (32 - int(length))
    first = ip_int(base) & ~(size - 1) & 0xFFFFFFFF
    return first, first + size - 1


def mac_for_int(value: int) -> str:
    """:func:`mac_for` of an integer address."""
    return (f"02:00:{value >> 24 & 255:02x}:{value >> 16 & 255:02x}:{value >> 8 & 255:02x}:"
            f"{value & 255:02x}")
