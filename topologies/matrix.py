"""The tour's isolation matrix as data (pure): what each ping is expected to show, and the static
neighbour entries that make a leak between networks visible.

A ping between two networks with no router fails whatever the switch does if the sender cannot
address the frame: ARP is answered only within a network.  So, for every pair of endpoints in
different networks, each side gets a permanent neighbour entry for the other's IP with the other's
real MAC (and an on-link /32 route when the other is outside its subnet): the frames then leave
with the sender's own IP and MAC (port security passes) to the receiver's MAC, and only the
switch's isolation can stop them.  Pairs where that cannot be arranged without breaking the
container's own networks (an address the container already reaches in its own networks, a
container with several endpoints, or the same container) are not testable by ping: ``None``.

Networks attached to one router reach each other through their gateways (routed: no pins; what
a container reaches that way is one of its "own" addresses for the rule above).  A physical
machine (``run-external``) takes part as an endpoint of the VLAN network it sits on: it reaches
that network's containers through the hand-off, and nothing else (a router routes only to its
endpoints).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from netaddr import IPAddress, IPNetwork

from intent.model import EndpointSpec, NetworkSpec, RouterSpec


@dataclass(frozen=True)
class Pin:
    """In ``container``'s namespace: reach ``peer_ip`` as ``peer_mac`` from ``own_ip``."""

    container: str
    own_ip: str
    peer_ip: str
    peer_mac: str
    route: bool  # the peer is outside own_ip's subnet: add an on-link /32 route too


@dataclass(frozen=True)
class MatrixPlan:
    """``expect[(src id, dst id)]``: reply expected (True/False) or not testable (None)."""

    endpoints: tuple[EndpointSpec, ...]
    expect: dict[tuple[str, str], bool | None]
    pins: tuple[Pin, ...]


def plan_matrix(endpoints: Iterable[EndpointSpec], networks: Mapping[str, NetworkSpec],
                routers: Iterable[RouterSpec] = (),
                physical: Iterable[str] = ()) -> MatrixPlan:
    """The matrix of ``endpoints`` (bound, running; ``physical``: the ids among them that are
    physical machines): expectations and neighbour pins."""
    eps = tuple(sorted(endpoints, key=lambda e: (networks[e.network].tenant, e.network, e.id)))
    machines = set(physical)
    domain = {n: (r.tenant, r.name) for r in routers for n in r.networks}
    per_container = Counter(e.netns_owner for e in eps)

    def routed(a: EndpointSpec, b: EndpointSpec) -> bool:
        return (a.network in domain and domain[a.network] == domain.get(b.network)
                and a.id not in machines and b.id not in machines)

    reached: dict[str, set[str]] = {e.netns_owner: set() for e in eps}
    for a in eps:
        reached[a.netns_owner] |= {b.ip for b in eps if b.network == a.network or routed(a, b)}
    expect: dict[tuple[str, str], bool | None] = {}
    candidates: list[tuple[EndpointSpec, EndpointSpec]] = []
    for a in eps:
        for b in eps:
            if a.id == b.id:
                continue
            ca, cb = a.netns_owner, b.netns_owner
            if ca == cb:
                expect[(a.id, b.id)] = None
            elif a.network == b.network or routed(a, b):
                expect[(a.id, b.id)] = True
            elif (per_container[ca] > 1 or per_container[cb] > 1 or b.ip in reached[ca]
                  or a.ip in reached[cb]):
                expect[(a.id, b.id)] = None
            else:
                expect[(a.id, b.id)] = False
                if a.id < b.id:
                    candidates.append((a, b))
    # one neighbour entry per (container, peer address): two peers with one address clash
    uses = Counter((x.netns_owner, y.ip) for a, b in candidates for x, y in ((a, b), (b, a)))
    pins: list[Pin] = []
    for a, b in candidates:
        if uses[(a.netns_owner, b.ip)] > 1 or uses[(b.netns_owner, a.ip)] > 1:
            expect[(a.id, b.id)] = expect[(b.id, a.id)] = None
            continue
        for x, y in ((a, b), (b, a)):
            outside = IPAddress(y.ip) not in IPNetwork(networks[x.network].subnet)
            pins.append(Pin(x.netns_owner, x.ip, y.ip, y.mac, outside))
    return MatrixPlan(eps, expect, tuple(pins))
