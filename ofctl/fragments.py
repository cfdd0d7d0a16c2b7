"""Fragment producers: the entries each intent object owns on one host, as pure functions.

A host's desired state is the union of fragments: the static pipeline entries, one fragment per
network present on the host (tunnel/uplink ingress, BUM flows and the flood group, the gateway's
answers, the VLAN hand-off) and one per endpoint *visible* on the host (port security and local
delivery when it is plugged here, the remote L2 entry when it is bound elsewhere, its ARP
answer, its route), one per router whose domain is visible there.  A network is *present* on a
host when one of its endpoints is bound to the host and plugged there; an endpoint is visible
where its network is present or, on a router, where its router's domain is visible (a network
of the router present, or the router's gateway host).

Producers read the world through :class:`World` (lookups only), so the same functions serve the
full recompute (:func:`ofctl.compute.compute_host`, the oracle) and the incremental engine
(:mod:`ofctl.engine`).  Every entry's cookie names its owner.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol

from intent.model import VLAN, VXLAN, EndpointSpec, HostSpec, NetworkSpec, RouterSpec
from ofctl import cookies
from ofctl.model import (
    ETH_ARP,
    ETH_IPV4,
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Action,
    ApplyActions,
    Bucket,
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
    DOMAIN_MASK,
    L2,
    L3,
    META_MASK,
    NET_MASK,
    QOS,
    REMOTE,
    SRC_GROUP,
    miss_flows,
)
from ofctl.policy import local_delivery, member_flows, network_ct_flows, policy_pipeline
from ofctl.router import (
    GW_MAC,
    domain_meta,
    gateway_flows,
    handoff_flows,
    return_route_flow,
    route_flow,
    router_flows,
    uplink_answer,
)
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

    def tunnel_peers(self, network: str, host: str) -> Iterable[str]:
        """Hosts other than ``host`` that may send ``network``'s VNI to it: those with an
        endpoint of ``network`` (or of another network of its router) bound to them, and its
        router's gateway host."""

    def ports(self, host: str) -> HostPorts:
        """``host``'s port numbers."""

    def policy_network(self, network: str) -> bool:
        """Whether ``network``'s tenant has policies (its IPv4 goes through conntrack)."""

    def group_id(self, tenant: str, group: str) -> int | None:
        """The id of an endpoint group (None: unknown)."""

    def router_of(self, network: str) -> RouterSpec | None:
        """The router ``network`` is on."""

    def external_router(self, network: str) -> RouterSpec | None:
        """The router whose external network ``network`` is."""

    def domain_present(self, rid: int, host: str) -> bool:
        """Whether a network of router ``rid`` is present on ``host``."""

    def domain_visible(self, rid: int, host: str) -> bool:
        """``domain_present``, or ``host`` is the gateway host of router ``rid``."""

    def gateway_mac(self, tenant: str, router: str) -> str | None:
        """The physical gateway's MAC of a router with an external network (once learnt)."""

    # issue 13 (QoS, multicast): see ofctl.qos.QosWorld and ofctl.mcast.McastWorld
    def qos_of(self, ep: EndpointSpec):
        """The QoS profile in force for ``ep`` (None: none)."""


def static_fragment() -> Fragment:
    """Entries every br-int holds: explicit misses, multicast -> BUM, and frames to the
    gateway that nothing in L3 answers or routes are dropped (never switched on)."""
    c = cookies.cookie_for(cookies.PIPELINE, STATIC_COOKIE_NAME)
    return Fragment(tuple(miss_flows(c)) + (
        Flow(L2, 1, match(eth_dst=(MCAST, MCAST)), (GotoTable(BUM),), c),
        Flow(L3, 1, match(eth_dst=GW_MAC), (), c)))


POLICY_OWNER: Owner = ("pipeline", "policy")


def policy_pipeline_fragment() -> Fragment:
    """The policy tables' own entries (on hosts where a policy network is present)."""
    return Fragment(policy_pipeline(cookies.cookie_for(cookies.PIPELINE, "policy")))


_SWAP_ETH = Move("eth_src", "eth_dst", 48)  # the responder's fixed actions, made once
_ARP_REPLY = set_field("arp_op", 2)
_SWAP_SHA = Move("arp_sha", "arp_tha", 48)
_SWAP_SPA = Move("arp_spa", "arp_tpa", 32)
_BACK = Output(OFPP_IN_PORT)


def arp_responder(ip: str, mac: str) -> tuple[Action, ...]:
    """Turn an ARP request for ``ip`` into the reply from ``mac``, back out of the in-port."""
    return (_SWAP_ETH, set_field("eth_src", mac), _ARP_REPLY, _SWAP_SHA, _SWAP_SPA,
            set_field("arp_sha", mac), set_field("arp_spa", ip), _BACK)


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


def _domain(w: World, network: str) -> tuple[RouterSpec | None, int, int]:
    """(router, metadata bits, metadata mask) of ``network``'s routing domain."""
    r = w.router_of(network)
    if r is None:
        return None, 0, META_MASK
    return r, domain_meta(r.id), META_MASK | DOMAIN_MASK


@lru_cache(maxsize=1 << 16)
def port_output(port: int) -> Output:
    """The one ``Output`` of ``port`` (shared: its packed bytes and hash are found at once)."""
    return Output(port)


@lru_cache(maxsize=1 << 16)
def port_bucket(port: int) -> Bucket:
    """The one flood bucket of ``port`` (shared: its wire bytes are cached on it)."""
    return Bucket((port_output(port),))


@lru_cache(maxsize=1 << 12)
def classify_instructions(meta: int, mask: int, goto: int) -> tuple:
    """Write the network's metadata, go on in ``goto`` (one shared value per network)."""
    return instructions(WriteMetadata(meta, mask), GotoTable(goto))


def endpoint_fragment(w: World, ep: EndpointSpec, host: str) -> Fragment:
    """The entries endpoint ``ep`` owns on ``host`` (none unless it is visible there)."""
    net = w.networks.get(ep.network)
    if net is None or ep.host is None:
        return EMPTY
    r, dom, dom_mask = _domain(w, ep.network)
    present = w.present(ep.network, host)
    if not present and (r is None or not w.domain_visible(r.id, host)):
        return EMPTY
    nid = network_id(net)
    ce = cookies.cookie_for(cookies.ENDPOINT, ep.id)
    policed = w.policy_network(ep.network)
    gid = w.group_id(net.tenant, ep.group) if policed and ep.group else None
    flows: list[Flow] = []
    if present:
        flows.append(Flow(ARP, PRIO, match(metadata=(nid, META_MASK), eth_type=ETH_ARP,
                                           arp_op=1, arp_tpa=ep.ip),
                          (ApplyActions(arp_responder(ep.ip, ep.mac)),), ce))
    if policed and (present or (r is not None and w.domain_present(r.id, host))):
        flows += member_flows(nid, ep.ip, gid or 0, ce, r.id if r else 0)
    ports = w.ports(host)
    if ep.host == host:
        port = w.port(host, ep.id)
        if port is not None:
            qos = w.qos_of(ep) is not None  # through the QoS table first (ofctl.qos)
            deliver = local_delivery(port, gid) if policed else (
                ApplyActions((Output(port),)),)
            flows += [
                Flow(CLASSIFY, PRIO, match(in_port=port, eth_src=ep.mac, eth_type=ETH_IPV4,
                                           ipv4_src=ep.ip),
                     classify_instructions(nid | dom, dom_mask, QOS if qos else SRC_GROUP
                                           if policed else L3), ce),
                Flow(CLASSIFY, PRIO, match(in_port=port, eth_src=ep.mac, eth_type=ETH_ARP,
                                           arp_spa=ep.ip, arp_sha=ep.mac),
                     classify_instructions(nid | dom, dom_mask, QOS if qos else ARP), ce),
                Flow(L2, PRIO, match(metadata=(nid, NET_MASK), eth_dst=ep.mac), deliver, ce)]
            if net.net_type == VLAN and ports.uplink_port is not None:
                flows.append(uplink_answer(ep, net, nid, ce))
    else:
        acts = remote_actions(net, w.hosts.get(ep.host), ports)
        if acts is not None:
            flows.append(Flow(L2, PRIO, match(metadata=(nid, META_MASK), eth_dst=ep.mac),
                              (ApplyActions(acts),), ce))
    if r is not None:
        via_uplink = net.net_type == VLAN and ep.host != host
        flows.append(route_flow(ep, net, nid, r.id, via_uplink, host, ce))
        ext = w.networks.get(r.external_network or "")
        if ext is not None and host == r.gateway_host:
            flows.append(return_route_flow(ep, net, nid, r.id, network_id(ext), host, ce))
    return Fragment(tuple(flows))


def network_fragment(w: World, name: str, host: str) -> Fragment:
    """The entries network ``name`` owns on ``host``: ingress from tunnel or uplink, flooding,
    the gateway's answers and (VLAN) the hand-off to the physical segment."""
    net = w.networks.get(name)
    local = w.local(name, host) if net is not None else []
    if not local:
        return EMPTY
    nid = network_id(net)
    cn = cookies.cookie_for(cookies.NETWORK, name)
    ports = w.ports(host)
    policed = w.policy_network(name)
    _r, dom, dom_mask = _domain(w, name)
    after = GotoTable(SRC_GROUP if policed else L2)
    meta = WriteMetadata(nid | REMOTE | dom, dom_mask)
    flows: list[Flow] = list(network_ct_flows(nid, net.zone, cn)) if policed else []
    if net.net_type == VXLAN and ports.vxlan_port is not None:
        # underlay ingress: the VNI only from the VTEPs of hosts that send it
        for peer in sorted(w.tunnel_peers(name, host)):
            spec = w.hosts.get(peer)
            if spec is not None and spec.vtep_ip:
                flows.append(Flow(CLASSIFY, PRIO, match(in_port=ports.vxlan_port,
                                                        tunnel_id=net.tag,
                                                        tun_ipv4_src=spec.vtep_ip),
                                  instructions(meta, after), cn))
    elif net.net_type == VLAN and ports.uplink_port is not None:
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=ports.uplink_port,
                                                vlan_vid=OFPVID_PRESENT | net.tag),
                          instructions(ApplyActions((PopVlan(),)), meta, after), cn))
        flows += handoff_flows(net, nid, ports, cn)
    flows += gateway_flows(net, nid, w.external_router(name) is not None, cn)
    local_ports = sorted({p for _, p in local})
    local_out = tuple(port_output(p) for p in local_ports)
    remote: dict[tuple[Action, ...], None] = {}
    hosts = sorted(w.remote_hosts(name, host))
    if net.net_type == VLAN:
        hosts = [host]  # one copy to the trunk: it reaches every other host and machine there
    for h in hosts:
        acts = remote_actions(net, w.hosts.get(h), ports)
        if acts is not None:
            remote[acts] = None
    buckets = [port_bucket(p) for p in local_ports] + [Bucket(a) for a in remote]
    flows.append(Flow(BUM, PRIO, match(metadata=(nid, META_MASK)),
                      (ApplyActions((GroupAction(nid),)),), cn))
    flows.append(Flow(BUM, PRIO, match(metadata=(nid | REMOTE, META_MASK)),
                      (ApplyActions(local_out),), cn))
    return Fragment(tuple(flows), (group(nid, buckets, cn),))


def router_fragment(w: World, r: RouterSpec, host: str) -> Fragment:
    """The entries router ``r`` owns on ``host`` (where its domain is visible)."""
    if not w.domain_visible(r.id, host):
        return EMPTY
    subnets = sorted({w.networks[n].subnet for n in r.networks if n in w.networks and
                      w.networks[n].subnet})
    ext = w.networks.get(r.external_network or "")
    cr = cookies.cookie_for(cookies.ROUTER, f"{r.tenant}/{r.name}")
    return Fragment(tuple(router_flows(
        r, subnets, ext, network_id(ext) if ext else None, host, w.ports(host),
        w.gateway_mac(r.tenant, r.name), cr)))
