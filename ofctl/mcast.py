"""Multicast fragment producers (pure): snooping entries per network, one group per (network,
group address) on each host where the network is present.

With snooping on, multicast frames of the network go from L2 to table ``MCAST``: IGMP sent by a
local endpoint goes to the controller (through a meter, so a container cannot flood it),
link-local 224.0.0.0/24 floods (BUM), a group with receivers goes to its OpenFlow group - a
bucket per local receiver and one per remote host with receivers (VXLAN; on a VLAN the uplink
once) - and anything else is dropped (table miss).  A copy that arrived from a tunnel or the
uplink goes to the local receivers only.  Snooping off: nothing here, multicast floods.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Protocol

from intent.model import EndpointSpec, NetworkSpec
from ofctl import cookies
from ofctl.model import (
    ETH_IPV4,
    OFPP_CONTROLLER,
    Action,
    ApplyActions,
    ApplyMeter,
    Flow,
    GotoTable,
    GroupAction,
    Meter,
    MeterBand,
    Output,
    group,
    instructions,
    match,
)
from ofctl.pipeline import BUM, L2, MCAST, META_MASK, NET_MASK, REMOTE

IGMP = 2
IGMP_METER = 0xFFFE0001  # one per switch, shared by every snooping network
IGMP_RATE = 100  # packets per second a host's containers may send to the controller
IGMP_BURST = 20
PRIO_IGMP, PRIO_LINK_LOCAL, PRIO_GROUP, PRIO_L2 = 300, 200, 100, 2
IPV4_MCAST_MAC = ("01:00:5e:00:00:00", "ff:ff:ff:80:00:00")
LINK_LOCAL = ("224.0.0.0", "255.255.255.0")
GROUP_BASE = 0x80000000  # OpenFlow group ids: zone << 15 | slot above this; flood groups below
SLOTS = 0x7F00  # per network (keeps every id below OFPG_MAX)


class McastWorld(Protocol):
    networks: dict
    hosts: dict

    def present(self, network: str, host: str) -> bool: ...
    def port(self, host: str, endpoint_id: str) -> int | None: ...
    def ports(self, host: str): ...
    def mcast_receivers(self, network: str, address: str) -> Iterable[EndpointSpec]: ...
    def mcast_group_id(self, network: str, address: str) -> int | None: ...


def snooping(net: NetworkSpec | None) -> bool:
    return net is not None and net.multicast is not None and net.multicast.snooping


def group_ids(zone: int, addresses: Iterable[str]) -> dict[str, int]:
    """OpenFlow group id per group address of one network: ``GROUP_BASE | zone << 15 | slot``,
    the slot a hash of the address (probing on a clash), so ids stay put as groups come and
    go."""
    out: dict[str, int] = {}
    used: set[int] = set()
    for a in sorted(addresses, key=lambda a: (_home(a), a)):
        slot = _home(a)
        while slot in used:
            slot = (slot + 1) % SLOTS
        used.add(slot)
        out[a] = GROUP_BASE | (zone & 0xFFFF) << 15 | slot
    return out


def _home(address: str) -> int:
    return zlib.crc32(address.encode()) % SLOTS


def igmp_meter(cookie: int = 0) -> Meter:
    return Meter(IGMP_METER, (MeterBand(IGMP_RATE, IGMP_BURST),), ("pktps", "burst"), cookie)


def snooping_fragment(w: McastWorld, name: str, host: str):
    """The snooping entries of network ``name`` on ``host`` (owner ``("mcastnet", name)``)."""
    from ofctl.fragments import EMPTY, Fragment, network_id

    net = w.networks.get(name)
    if not snooping(net) or not w.present(name, host):
        return EMPTY
    nid = network_id(net)
    c = cookies.cookie_for(cookies.MCAST, name)
    local = (nid, META_MASK)
    flows = (
        Flow(L2, PRIO_L2, match(metadata=(nid, NET_MASK), eth_dst=IPV4_MCAST_MAC),
             (GotoTable(MCAST),), c),
        Flow(MCAST, PRIO_IGMP, match(metadata=local, eth_type=ETH_IPV4, ip_proto=IGMP),
             instructions(ApplyMeter(IGMP_METER),
                          ApplyActions((Output(OFPP_CONTROLLER),))), c),
        Flow(MCAST, PRIO_LINK_LOCAL, match(metadata=(nid, NET_MASK), eth_type=ETH_IPV4,
                                           ipv4_dst=LINK_LOCAL), (GotoTable(BUM),), c))
    return Fragment(flows, (), (igmp_meter(cookies.cookie_for(cookies.MCAST, "")),))


def group_fragment(w: McastWorld, name: str, address: str, host: str):
    """The group of ``address`` in network ``name`` on ``host`` and the entries using it
    (owner ``("mcast", "<name>/<address>")``)."""
    from ofctl.fragments import EMPTY, Fragment, network_id, remote_actions

    net = w.networks.get(name)
    if not snooping(net) or not w.present(name, host):
        return EMPTY
    gid = w.mcast_group_id(name, address)
    if gid is None:
        return EMPTY
    ports = w.ports(host)
    local: set[int] = set()
    remote_hosts: set[str] = set()
    for ep in w.mcast_receivers(name, address):
        if ep.host == host:
            p = w.port(host, ep.id)
            if p is not None:
                local.add(p)
        elif ep.host is not None:
            remote_hosts.add(ep.host)
    remote: dict[tuple[Action, ...], None] = {}
    for h in sorted(remote_hosts):
        acts = remote_actions(net, w.hosts.get(h), ports)
        if acts is not None:
            remote[acts] = None
    out = tuple(Output(p) for p in sorted(local))
    buckets = [(o,) for o in out] + list(remote)
    if not buckets:
        return EMPTY
    nid = network_id(net)
    c = cookies.cookie_for(cookies.MCAST, f"{name}/{address}")
    flows = [Flow(MCAST, PRIO_GROUP, match(metadata=(nid, META_MASK), eth_type=ETH_IPV4,
                                           ipv4_dst=address),
                  (ApplyActions((GroupAction(gid),)),), c)]
    if out:
        flows.append(Flow(MCAST, PRIO_GROUP, match(metadata=(nid | REMOTE, META_MASK),
                                                   eth_type=ETH_IPV4, ipv4_dst=address),
                          (ApplyActions(out),), c))
    return Fragment(tuple(flows), (group(gid, buckets, c),))
