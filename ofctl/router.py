"""Gateways, the distributed router and the VLAN hand-off, as fragment producers.

* Every network's gateway address answers ARP (with the virtual gateway MAC ``GW_MAC``) and
  ICMP echo, in flows, on every host, for its local containers - except an external network,
  whose gateway is a real machine.
* A router's networks share a routing domain (the router's id, metadata bits 40-55).  A frame a
  container sends to ``GW_MAC`` is routed on the sending host: table 25 (L3) matches the
  domain and the destination address of every endpoint of the domain, rewrites the MACs,
  decrements the TTL and continues in L2 of the destination's network (local port, tunnel or
  uplink) - for VLAN and VXLAN networks alike.  Frames that leave through the uplink carry the
  sending host's own router MAC (:func:`router_mac`), so no physical switch sees one MAC on
  several ports.
* A router with an external network routes what no endpoint of its domain holds to the
  physical gateway, from the gateway host; the router's own address there (``ExternalIp``)
  answers ARP on that host only.
* In a VLAN network, frames to MACs that are no endpoint and ARP requests for addresses that
  are no endpoint (nor the gateway) leave through the uplink, tagged.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from intent.model import VLAN, EndpointSpec, NetworkSpec, RouterSpec
from ofctl.model import (
    ETH_ARP,
    ETH_IPV4,
    OFPP_CONTROLLER,
    OFPP_IN_PORT,
    OFPVID_PRESENT,
    Action,
    ApplyActions,
    DecTtl,
    Flow,
    GotoTable,
    Move,
    Output,
    PopVlan,
    PushVlan,
    WriteMetadata,
    instructions,
    match,
    set_field,
)
from ofctl.pipeline import (
    ARP,
    CLASSIFY,
    DOMAIN_MASK,
    DOMAIN_SHIFT,
    L2,
    L3,
    META_MASK,
    NET_MASK,
    REMOTE,
)
from ofctl.topology import HostPorts

GW_MAC = "0a:00:00:00:00:01"  # the gateway of every network, on every host
PRIO = 100
ROUTE_PRIO = 200
SUBNET_PRIO = 50
DEFAULT_PRIO = 10
HANDOFF_PRIO = 1
UNICAST = ("00:00:00:00:00:00", "01:00:00:00:00:00")


def router_mac(host: str) -> str:
    """A locally administered unicast MAC of ``host``'s router (stable)."""
    d = hashlib.blake2b(host.encode(), digest_size=5).digest()
    return "0a:" + ":".join(f"{b:02x}" for b in d)


def domain_meta(rid: int) -> int:
    return rid << DOMAIN_SHIFT


class RouterWorld(Protocol):
    def router_of(self, network: str) -> RouterSpec | None: ...

    def external_router(self, network: str) -> RouterSpec | None:
        """The router whose external network ``network`` is."""

    def domain_present(self, rid: int, host: str) -> bool: ...

    def gateway_mac(self, tenant: str, router: str) -> str | None:
        """The physical gateway's MAC of a router with an external network (once known)."""


def arp_answer(ip: str, mac: str, retag: int | None = None) -> tuple[Action, ...]:
    """Turn an ARP request for ``ip`` into the reply from ``mac`` (re-tagged with VLAN
    ``retag`` when it came in from the uplink), back out of the in-port."""
    tag: tuple[Action, ...] = () if retag is None else (
        PushVlan(), set_field("vlan_vid", OFPVID_PRESENT | retag))
    return (Move("eth_src", "eth_dst", 48), set_field("eth_src", mac), set_field("arp_op", 2),
            Move("arp_sha", "arp_tha", 48), Move("arp_spa", "arp_tpa", 32),
            set_field("arp_sha", mac), set_field("arp_spa", ip), *tag, Output(OFPP_IN_PORT))


def echo_answer(ip: str, mac: str) -> tuple[Action, ...]:
    """Turn an ICMP echo request to ``ip`` into the reply from ``mac``, back to its sender."""
    return (Move("eth_src", "eth_dst", 48), set_field("eth_src", mac),
            Move("ipv4_src", "ipv4_dst", 32), set_field("ipv4_src", ip),
            set_field("icmpv4_type", 0), Output(OFPP_IN_PORT))


def gateway_flows(net: NetworkSpec, nid: int, external: bool, cookie: int) -> list[Flow]:
    """The gateway's ARP and ICMP echo answers of a network (none for an external one)."""
    if not net.gateway or external:
        return []
    local = (nid, META_MASK)
    return [
        Flow(ARP, PRIO, match(metadata=local, eth_type=ETH_ARP, arp_op=1, arp_tpa=net.gateway),
             (ApplyActions(arp_answer(net.gateway, GW_MAC)),), cookie),
        Flow(L3, PRIO, match(metadata=local, eth_dst=GW_MAC, eth_type=ETH_IPV4, ip_proto=1,
                             icmpv4_type=8, ipv4_dst=net.gateway),
             (ApplyActions(echo_answer(net.gateway, GW_MAC)),), cookie)]


def handoff_flows(net: NetworkSpec, nid: int, ports: HostPorts, cookie: int) -> list[Flow]:
    """A VLAN network's hand-off to the physical segment: ARP from the uplink to the ARP stage
    (only this host's endpoints are answered there), unknown ARP targets and unknown unicast to
    the uplink, tagged; whatever else came from the uplink on to L2."""
    if net.net_type != VLAN or ports.uplink_port is None:
        return []
    up, tag = ports.uplink_port, OFPVID_PRESENT | net.tag
    out = (PushVlan(), set_field("vlan_vid", tag), Output(up))
    return [
        Flow(CLASSIFY, PRIO + 1, match(in_port=up, vlan_vid=tag, eth_type=ETH_ARP),
             instructions(ApplyActions((PopVlan(),)), WriteMetadata(nid | REMOTE, META_MASK),
                          GotoTable(ARP)), cookie),
        Flow(ARP, HANDOFF_PRIO, match(metadata=(nid, META_MASK), eth_type=ETH_ARP),
             (ApplyActions(out),), cookie),
        Flow(ARP, HANDOFF_PRIO, match(metadata=(nid | REMOTE, META_MASK), eth_type=ETH_ARP),
             (GotoTable(L2),), cookie),
        Flow(L2, HANDOFF_PRIO, match(metadata=(nid, META_MASK), eth_dst=UNICAST),
             (ApplyActions(out),), cookie)]


def uplink_answer(ep: EndpointSpec, net: NetworkSpec, nid: int, cookie: int) -> Flow:
    """A local endpoint of a VLAN network answers ARP from the uplink (on its own host only:
    otherwise the physical switch would learn its MAC on every host's port)."""
    return Flow(ARP, PRIO, match(metadata=(nid | REMOTE, META_MASK), eth_type=ETH_ARP, arp_op=1,
                                 arp_tpa=ep.ip),
                (ApplyActions(arp_answer(ep.ip, ep.mac, retag=net.tag)),), cookie)


def route_flow(ep: EndpointSpec, net: NetworkSpec, nid: int, rid: int, via_uplink: bool,
               host: str, cookie: int) -> Flow:
    """Routing to ``ep`` on the sending host: MACs rewritten, TTL decremented, then on in L2 of
    its network."""
    src = router_mac(host) if via_uplink else GW_MAC
    return Flow(L3, ROUTE_PRIO, match(metadata=(domain_meta(rid), DOMAIN_MASK | REMOTE),
                                      eth_dst=GW_MAC, eth_type=ETH_IPV4, ipv4_dst=ep.ip),
                instructions(ApplyActions((set_field("eth_src", src),
                                           set_field("eth_dst", ep.mac), DecTtl())),
                             WriteMetadata(nid, NET_MASK), GotoTable(L2)), cookie)


def return_route_flow(ep: EndpointSpec, net: NetworkSpec, nid: int, rid: int, ext_nid: int,
                      host: str, cookie: int) -> Flow:
    """On the gateway host: what the physical gateway sends to the router for ``ep``.  It came
    in on the uplink, so a VLAN endpoint of another host is sent back out of the in-port."""
    me = router_mac(host)
    rewrite = (set_field("eth_src", me), set_field("eth_dst", ep.mac), DecTtl())
    m = match(metadata=(ext_nid | REMOTE, META_MASK), eth_dst=me, eth_type=ETH_IPV4,
              ipv4_dst=ep.ip)
    if net.net_type == VLAN and ep.host != host:
        return Flow(L3, ROUTE_PRIO, m, (ApplyActions(rewrite + (
            PushVlan(), set_field("vlan_vid", OFPVID_PRESENT | net.tag),
            Output(OFPP_IN_PORT))),), cookie)
    return Flow(L3, ROUTE_PRIO, m, instructions(
        ApplyActions(rewrite), WriteMetadata(nid | domain_meta(rid), META_MASK | DOMAIN_MASK),
        GotoTable(L2)), cookie)


def router_flows(r: RouterSpec, subnets: list[str], ext: NetworkSpec | None,
                 ext_nid: int | None, host: str, ports: HostPorts, gw_mac: str | None,
                 cookie: int) -> list[Flow]:
    """A router's own entries on a host of its domain: frames to the gateway for an address of
    one of its subnets that no endpoint holds are dropped; with an external network, the
    default route (see :func:`external_flows`)."""
    domain = (domain_meta(r.id), DOMAIN_MASK | REMOTE)
    flows = [Flow(L3, SUBNET_PRIO, match(metadata=domain, eth_dst=GW_MAC, eth_type=ETH_IPV4,
                                          ipv4_dst=_cidr(s)), (), cookie) for s in subnets]
    if ext is not None and ext_nid is not None:
        flows += external_flows(r, ext, ext_nid, host, ports, gw_mac, cookie)
    return flows


def _cidr(subnet: str) -> tuple[str, int]:
    addr, length = subnet.split("/")
    return addr, (0xFFFFFFFF << (32 - int(length))) & 0xFFFFFFFF


def external_flows(r: RouterSpec, ext: NetworkSpec, ext_nid: int, host: str,
                   ports: HostPorts, gw_mac: str | None, cookie: int) -> list[Flow]:
    """A router's way out.  Other hosts of the domain send what no endpoint holds to the
    gateway host (to its router MAC, on the external VLAN, TTL untouched); the gateway host
    decrements the TTL and hands it to the physical gateway (once its MAC is known), answers
    ARP for ``ExternalIp``, passes the gateway's ARP replies to the controller and takes
    return traffic in (routed on by :func:`return_route_flow`)."""
    if ports.uplink_port is None or not r.gateway_host:
        return []
    up, tag = ports.uplink_port, OFPVID_PRESENT | ext.tag
    domain = (domain_meta(r.id), DOMAIN_MASK | REMOTE)
    me = router_mac(host)
    if host != r.gateway_host:
        if gw_mac is None:  # nowhere to go yet
            return []
        out = ApplyActions((set_field("eth_src", me), set_field("eth_dst",
                                                                 router_mac(r.gateway_host)),
                            PushVlan(), set_field("vlan_vid", tag), Output(up)))
        return [Flow(L3, DEFAULT_PRIO, match(metadata=domain, eth_dst=GW_MAC,
                                             eth_type=ETH_IPV4), (out,), cookie)]
    from_ext = (ext_nid | REMOTE, META_MASK)
    flows = [
        Flow(CLASSIFY, PRIO + 2, match(in_port=up, vlan_vid=tag, eth_dst=me, eth_type=ETH_IPV4),
             instructions(ApplyActions((PopVlan(),)), WriteMetadata(ext_nid | REMOTE, META_MASK),
                          GotoTable(L3)), cookie),
        Flow(CLASSIFY, PRIO + 2, match(in_port=up, vlan_vid=tag, eth_type=ETH_ARP),
             instructions(ApplyActions((PopVlan(),)), WriteMetadata(ext_nid | REMOTE, META_MASK),
                          GotoTable(ARP)), cookie),
        Flow(ARP, PRIO, match(metadata=from_ext, eth_type=ETH_ARP, arp_op=1,
                              arp_tpa=r.external_ip),
             (ApplyActions(arp_answer(r.external_ip or "", me, retag=ext.tag)),), cookie),
        Flow(ARP, PRIO, match(metadata=from_ext, eth_type=ETH_ARP, arp_op=2,
                              arp_tpa=r.external_ip),
             (ApplyActions((Output(OFPP_CONTROLLER),)),), cookie)]
    if gw_mac is not None:
        rewrite = (set_field("eth_src", me), set_field("eth_dst", gw_mac), DecTtl(), PushVlan(),
                   set_field("vlan_vid", tag))
        flows += [
            Flow(L3, DEFAULT_PRIO, match(metadata=domain, eth_dst=GW_MAC, eth_type=ETH_IPV4),
                 (ApplyActions(rewrite + (Output(up),)),), cookie),
            Flow(L3, DEFAULT_PRIO, match(metadata=from_ext, eth_dst=me, eth_type=ETH_IPV4),
                 (ApplyActions(rewrite + (Output(OFPP_IN_PORT),)),), cookie),
            # what the gateway itself sends for no endpoint of the domain is not sent back
            Flow(L3, DEFAULT_PRIO + 1, match(metadata=from_ext, eth_src=gw_mac, eth_dst=me,
                                             eth_type=ETH_IPV4), (), cookie)]
    return flows


def gateway_arp_request(r: RouterSpec, ext: NetworkSpec, gateway_ip: str) -> dict:
    """What the controller sends from the gateway host to learn the physical gateway's MAC:
    an ARP request from ``ExternalIp`` (the gateway host's router MAC), tagged."""
    return {"src_mac": router_mac(r.gateway_host or ""), "src_ip": r.external_ip,
            "target_ip": gateway_ip, "vlan": ext.tag}
