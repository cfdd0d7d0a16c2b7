"""Fragment producers: the entries each intent object owns on one host, as pure functions.

A host's desired state is the union of fragments: the static pipeline entries, one fragment per
network present on the host (tunnel/uplink ingress, BUM flows and the flood group) and one per
endpoint of those networks (port security and local delivery when it is plugged here, the remote
L2 entry when it is bound elsewhere, its ARP answer).  A network is *present* on a host when one
of its endpoints is bound to the host and plugged there.

Producers read the world through :class:`World` (lookups only), so the same functions serve the
full recompute (:func:`ofctl.compute.compute_host`, the oracle) and the incremental engine
(:mod:`ofctl.engine`).  Every entry's cookie names its owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from intent.model import VLAN, VXLAN, EndpointSpec, HostSpec, NetworkSpec
from ofctl import cookies
from ofctl.model import (
    ETH_ARP,
    ETH_IPV4,
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Action,
    ApplyActions,
    Flow,
    GotoTable,
    Group,
    GroupAction,
    Meter,
    Move,
    Output,
    PopVlan,
    PushVlan,
    WriteMetadata,
    group,
    instructions,
    match,
    set_field,
)
from ofctl.pipeline import (
    ARP,
    BUM,
    CLASSIFY,
    EGRESS,
    L2,
    META_MASK,
    NET_MASK,
    QOS,
    REMOTE,
    SRC_GROUP,
    miss_flows,
)
from ofctl.policy import local_delivery, member_flows, network_ct_flows, policy_pipeline
from ofctl.topology import HostPorts

PRIO = 100
MCAST = "01:00:00:00:00:00"
STATIC_COOKIE_NAME = "br-int"

Owner = tuple[str, str]  # (kind, name): ("endpoint", id), ("network", name), ("pipeline", "")
PIPELINE_OWNER: Owner = ("pipeline", "")


@dataclass(frozen=True)
class Fragment:
    """The entries one intent object contributes to one host."""

    flows: tuple[Flow, ...] = ()
    groups: tuple[Group, ...] = ()
    meters: tuple[Meter, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.flows or self.groups or self.meters)


EMPTY = Fragment()


class World(Protocol):
    """What fragment producers may look up (both the oracle's index and the engine's)."""

    networks: dict[str, NetworkSpec]
    hosts: dict[str, HostSpec]

    def members(self, network: str) -> Iterable[EndpointSpec]:
        """Endpoints of ``network`` bound to a host."""

    def local(self, network: str, host: str) -> list[tuple[EndpointSpec, int]]:
        """(endpoint, ofport) of ``network``'s endpoints bound to ``host`` and plugged there."""

    def present(self, network: str, host: str) -> bool:
        """Whether ``local(network, host)`` is not empty."""

    def port(self, host: str, endpoint_id: str) -> int | None:
        """The ofport ``endpoint_id`` is plugged into on ``host``."""

    def remote_hosts(self, network: str, host: str) -> Iterable[str]:
        """Hosts other than ``host`` with an endpoint of ``network`` bound to them."""

    def ports(self, host: str) -> HostPorts:
        """``host``'s port numbers."""

    def policy_network(self, network: str) -> bool:
        """Whether ``network``'s tenant has policies (its IPv4 goes through conntrack)."""

    def group_id(self, tenant: str, group: str) -> int | None:
        """The id of an endpoint group (None: unknown)."""

    # issue 13 (QoS, multicast): see ofctl.qos.QosWorld and ofctl.mcast.McastWorld
    def qos_of(self, ep: EndpointSpec):
        """The QoS profile in force for ``ep`` (None: none)."""


def static_fragment() -> Fragment:
    """Entries every br-int holds: explicit misses, multicast -> BUM."""
    c = cookies.cookie_for(cookies.PIPELINE, STATIC_COOKIE_NAME)
    return Fragment(tuple(miss_flows(c)) + (
        Flow(L2, 1, match(eth_dst=(MCAST, MCAST)), (GotoTable(BUM),), c),))


POLICY_OWNER: Owner = ("pipeline", "policy")


def policy_pipeline_fragment() -> Fragment:
    """The policy tables' own entries (on hosts where a policy network is present)."""
    return Fragment(policy_pipeline(cookies.cookie_for(cookies.PIPELINE, "policy")))


def arp_responder(ip: str, mac: str) -> tuple[Action, ...]:
    """Turn an ARP request for ``ip`` into the reply from ``mac``, back out of the in-port."""
    return (Move("eth_src", "eth_dst", 48), set_field("eth_src", mac), set_field("arp_op", 2),
            Move("arp_sha", "arp_tha", 48), Move("arp_spa", "arp_tpa", 32),
            set_field("arp_sha", mac), set_field("arp_spa", ip), Output(OFPP_IN_PORT))


def remote_actions(net: NetworkSpec, host: HostSpec | None,
                   ports: HostPorts) -> tuple[Action, ...] | None:
    """How this host sends a frame of ``net`` to ``host``; None when it cannot."""
    if net.net_type == VXLAN:
        if host is None or not host.vtep_ip or ports.vxlan_port is None:
            return None
        return (set_field("tunnel_id", net.tag), set_field("tun_ipv4_dst", host.vtep_ip),
                Output(ports.vxlan_port))
    if ports.uplink_port is None:
        return None
    return (PushVlan(), set_field("vlan_vid", OFPVID_PRESENT | net.tag), Output(ports.uplink_port))


def network_id(net: NetworkSpec) -> int:
    if net.net_type not in (VLAN, VXLAN):
        raise ValueError(f"network {net.name}: unknown type {net.net_type!r}")
    return cookies.network_id(net.net_type, net.tag)


def endpoint_fragment(w: World, ep: EndpointSpec, host: str) -> Fragment:
    """The entries endpoint ``ep`` owns on ``host`` (none unless its network is present)."""
    net = w.networks.get(ep.network)
    if net is None or ep.host is None or not w.present(ep.network, host):
        return EMPTY
    nid = network_id(net)
    ce = cookies.cookie_for(cookies.ENDPOINT, ep.id)
    policed = w.policy_network(ep.network)
    gid = w.group_id(net.tenant, ep.group) if policed and ep.group else None
    flows = [Flow(ARP, PRIO, match(metadata=(nid, NET_MASK), eth_type=ETH_ARP, arp_op=1,
                                   arp_tpa=ep.ip),
                  (ApplyActions(arp_responder(ep.ip, ep.mac)),), ce)]
    if gid is not None:
        flows += member_flows(nid, ep.ip, gid, ce)
    if ep.host == host:
        port = w.port(host, ep.id)
        if port is not None:
            qos = w.qos_of(ep) is not None  # through the QoS table first (ofctl.qos)
            meta = WriteMetadata(nid, META_MASK)
            deliver = local_delivery(port, gid) if policed else (
                ApplyActions((Output(port),)),)
            flows += [
                Flow(CLASSIFY, PRIO, match(in_port=port, eth_src=ep.mac, eth_type=ETH_IPV4,
                                           ipv4_src=ep.ip),
                     instructions(meta, GotoTable(QOS if qos else SRC_GROUP if policed
                                                  else EGRESS)), ce),
                Flow(CLASSIFY, PRIO, match(in_port=port, eth_src=ep.mac, eth_type=ETH_ARP,
                                           arp_spa=ep.ip, arp_sha=ep.mac),
                     instructions(meta, GotoTable(QOS if qos else ARP)), ce),
                Flow(L2, PRIO, match(metadata=(nid, NET_MASK), eth_dst=ep.mac), deliver, ce)]
    else:
        acts = remote_actions(net, w.hosts.get(ep.host), w.ports(host))
        if acts is not None:
            flows.append(Flow(L2, PRIO, match(metadata=(nid, META_MASK), eth_dst=ep.mac),
                              (ApplyActions(acts),), ce))
    return Fragment(tuple(flows))


def network_fragment(w: World, name: str, host: str) -> Fragment:
    """The entries network ``name`` owns on ``host``: ingress from tunnel or uplink, flooding."""
    net = w.networks.get(name)
    local = w.local(name, host) if net is not None else []
    if not local:
        return EMPTY
    nid = network_id(net)
    cn = cookies.cookie_for(cookies.NETWORK, name)
    ports = w.ports(host)
    policed = w.policy_network(name)
    after = GotoTable(SRC_GROUP if policed else L2)
    flows: list[Flow] = list(network_ct_flows(nid, net.zone, cn)) if policed else []
    if net.net_type == VXLAN and ports.vxlan_port is not None:
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=ports.vxlan_port, tunnel_id=net.tag),
                          instructions(WriteMetadata(nid | REMOTE, META_MASK), after), cn))
    elif net.net_type == VLAN and ports.uplink_port is not None:
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=ports.uplink_port,
                                                vlan_vid=OFPVID_PRESENT | net.tag),
                          instructions(ApplyActions((PopVlan(),)),
                                       WriteMetadata(nid | REMOTE, META_MASK), after), cn))
    local_out = tuple(Output(p) for p in sorted({p for _, p in local}))
    remote: dict[tuple[Action, ...], None] = {}
    for h in sorted(w.remote_hosts(name, host)):
        acts = remote_actions(net, w.hosts.get(h), ports)
        if acts is not None:
            remote[acts] = None
    buckets = [(o,) for o in local_out] + list(remote)
    flows.append(Flow(BUM, PRIO, match(metadata=(nid, META_MASK)),
                      (ApplyActions((GroupAction(nid),)),), cn))
    flows.append(Flow(BUM, PRIO, match(metadata=(nid | REMOTE, META_MASK)),
                      (ApplyActions(local_out),), cn))
    return Fragment(tuple(flows), (group(nid, buckets, cn),))
