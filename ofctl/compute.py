"""``(intent, host ports) -> desired SwitchState`` for one host, as pure functions.

A host's state is the static pipeline entries plus one *fragment* per network that has a plugged
endpoint on the host.  A fragment depends only on that network, its endpoints, the hosts they
are bound to and this host's ports, so an intent change recomputes only the fragments of the
networks it touches (:class:`HostTables`).

Per present network with L local and R remote endpoints the fragment holds ``4L + 2R + 3`` flows
(classify 2 per local port and 1 for tunnel/uplink ingress, one ARP answer and one L2 entry per
endpoint, two BUM entries) and one group: see :func:`expected_counts`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import chain

from intent.model import VLAN, VXLAN, EndpointSpec, HostSpec, NetworkSpec, ResolvedIntent
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
    Move,
    Output,
    PopVlan,
    PushVlan,
    SwitchState,
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
    REMOTE,
    check_flow,
    miss_flows,
)
from ofctl.topology import HostPorts

PRIO = 100
MCAST = "01:00:00:00:00:00"
STATIC_COOKIE_NAME = "br-int"


class IntentIndex:
    """Lookups over a ResolvedIntent, built once per intent revision."""

    def __init__(self, intent: ResolvedIntent) -> None:
        self.networks: dict[str, NetworkSpec] = {n.name: n for n in intent.networks}
        self.hosts: dict[str, HostSpec] = {h.name: h for h in intent.hosts}
        by_net: dict[str, list[EndpointSpec]] = {n: [] for n in self.networks}
        for e in intent.endpoints:
            if e.host is not None and e.network in by_net:
                by_net[e.network].append(e)
        self.by_network: dict[str, tuple[EndpointSpec, ...]] = {
            n: tuple(sorted(eps, key=lambda e: e.id)) for n, eps in by_net.items()}
        self.by_host: dict[str, dict[str, str]] = {}  # host -> endpoint id -> network
        for eps in self.by_network.values():
            for e in eps:
                self.by_host.setdefault(e.host, {})[e.id] = e.network
        ids: dict[int, str] = {}
        for n in self.networks.values():
            nid = cookies.network_id(n.net_type, n.tag)
            if nid in ids:
                raise ValueError(f"networks {ids[nid]} and {n.name} share tag {n.tag}")
            ids[nid] = n.name

    def with_endpoint(self, ep: EndpointSpec, remove: bool = False) -> IntentIndex:
        """A new index with ``ep`` added/replaced (or removed); unchanged parts are shared."""
        new = object.__new__(IntentIndex)
        new.networks, new.hosts = self.networks, self.hosts
        old = self.by_network.get(ep.network, ())
        eps = [e for e in old if e.id != ep.id]
        if not remove and ep.host is not None:
            eps.append(ep)
        new.by_network = {**self.by_network, ep.network: tuple(sorted(eps, key=lambda e: e.id))}
        new.by_host = {h: m for h, m in self.by_host.items()}
        for e in old:
            if e.id == ep.id:
                new.by_host[e.host] = {k: v for k, v in new.by_host[e.host].items() if k != ep.id}
        if not remove and ep.host is not None:
            new.by_host[ep.host] = {**new.by_host.get(ep.host, {}), ep.id: ep.network}
        return new

    def networks_on(self, host: str, ports: HostPorts) -> set[str]:
        """Networks with an endpoint bound to ``host`` and plugged there."""
        plugged = ports.port_map()
        return {net for eid, net in self.by_host.get(host, {}).items() if eid in plugged}


@dataclass(frozen=True)
class Fragment:
    """The entries one network contributes to one host."""

    flows: tuple[Flow, ...] = ()
    group: Group | None = None


def static_flows() -> tuple[Flow, ...]:
    """Entries every br-int holds: explicit misses, multicast -> BUM."""
    c = cookies.cookie_for(cookies.PIPELINE, STATIC_COOKIE_NAME)
    return tuple(miss_flows(c)) + (
        Flow(L2, 1, match(eth_dst=(MCAST, MCAST)), (GotoTable(BUM),), c),)


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


def network_fragment(index: IntentIndex, name: str, ports: HostPorts) -> Fragment:
    """The entries network ``name`` needs on the host ``ports`` describes."""
    net = index.networks[name]
    if net.net_type not in (VLAN, VXLAN):
        raise ValueError(f"network {name}: unknown type {net.net_type!r}")
    nid = cookies.network_id(net.net_type, net.tag)
    plugged = ports.port_map()
    eps = index.by_network.get(name, ())
    local = [(e, plugged[e.id]) for e in eps if e.host == ports.host and e.id in plugged]
    if not local:
        return Fragment()
    cn = cookies.cookie_for(cookies.NETWORK, name)
    any_net = (nid, NET_MASK)
    from_local = (nid, META_MASK)
    meta_local = WriteMetadata(nid, META_MASK)
    meta_remote = WriteMetadata(nid | REMOTE, META_MASK)
    flows: list[Flow] = []
    for e, port in local:
        ce = cookies.cookie_for(cookies.ENDPOINT, e.id)
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=port, eth_src=e.mac, eth_type=ETH_IPV4,
                                                ipv4_src=e.ip),
                          instructions(meta_local, GotoTable(EGRESS)), ce))
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=port, eth_src=e.mac, eth_type=ETH_ARP,
                                                arp_spa=e.ip, arp_sha=e.mac),
                          instructions(meta_local, GotoTable(ARP)), ce))
        flows.append(Flow(L2, PRIO, match(metadata=any_net, eth_dst=e.mac),
                          (ApplyActions((Output(port),)),), ce))
    remote_buckets: dict[tuple[Action, ...], None] = {}
    for e in eps:
        ce = cookies.cookie_for(cookies.ENDPOINT, e.id)
        flows.append(Flow(ARP, PRIO, match(metadata=any_net, eth_type=ETH_ARP, arp_op=1,
                                           arp_tpa=e.ip),
                          (ApplyActions(arp_responder(e.ip, e.mac)),), ce))
        if e.host == ports.host:
            continue
        acts = remote_actions(net, index.hosts.get(e.host), ports)
        if acts is None:
            continue
        remote_buckets[acts] = None
        flows.append(Flow(L2, PRIO, match(metadata=from_local, eth_dst=e.mac),
                          (ApplyActions(acts),), ce))
    if net.net_type == VXLAN and ports.vxlan_port is not None:
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=ports.vxlan_port, tunnel_id=net.tag),
                          instructions(meta_remote, GotoTable(L2)), cn))
    elif net.net_type == VLAN and ports.uplink_port is not None:
        flows.append(Flow(CLASSIFY, PRIO, match(in_port=ports.uplink_port,
                                                vlan_vid=OFPVID_PRESENT | net.tag),
                          instructions(ApplyActions((PopVlan(),)), meta_remote, GotoTable(L2)),
                          cn))
    local_out = tuple(Output(p) for p in sorted({p for _, p in local}))
    buckets = [(o,) for o in local_out] + list(remote_buckets)
    flows.append(Flow(BUM, PRIO, match(metadata=from_local),
                      (ApplyActions((GroupAction(nid),)),), cn))
    flows.append(Flow(BUM, PRIO, match(metadata=(nid | REMOTE, META_MASK)),
                      (ApplyActions(local_out),), cn))
    return Fragment(tuple(flows), group(nid, buckets, cn))


def _assemble(fragments: Iterable[Fragment], check: bool) -> SwitchState:
    frags = list(fragments)
    flows = frozenset(chain(static_flows(), *(f.flows for f in frags)))
    if check:
        for f in flows:
            check_flow(f)
    return SwitchState(flows, frozenset(f.group for f in frags if f.group is not None))


def compute_host(intent: ResolvedIntent, ports: HostPorts, index: IntentIndex | None = None,
                 check: bool = True) -> SwitchState:
    """The desired state of ``ports.host``'s br-int."""
    idx = index or IntentIndex(intent)
    return _assemble((network_fragment(idx, n, ports)
                      for n in sorted(idx.networks_on(ports.host, ports))), check)


class HostTables:
    """One host's state kept per network, for incremental recomputation."""

    def __init__(self, index: IntentIndex, ports: HostPorts, check: bool = True) -> None:
        self.ports, self.check = ports, check
        self.fragments = {n: network_fragment(index, n, ports)
                          for n in index.networks_on(ports.host, ports)}
        self.state = _assemble(self.fragments.values(), check)

    def update(self, index: IntentIndex, networks: Iterable[str],
               ports: HostPorts | None = None) -> SwitchState:
        """Recompute only ``networks`` (with new ports if given); returns the new state."""
        if ports is not None:
            self.ports = ports
        changed: list[Fragment] = []
        for n in networks:
            frag = network_fragment(index, n, self.ports) if n in index.networks else Fragment()
            old = self.fragments.pop(n, Fragment())
            if frag.flows:
                self.fragments[n] = frag
            changed.append(frag)
            if old == frag:
                continue
            flows = self.state.flows.difference(old.flows).union(frag.flows)
            groups = set(self.state.groups)
            if old.group is not None:
                groups.discard(old.group)
            if frag.group is not None:
                groups.add(frag.group)
            if self.check:
                for f in frag.flows:
                    check_flow(f)
            self.state = SwitchState(flows, frozenset(groups), self.state.meters)
        return self.state


def expected_counts(intent: ResolvedIntent, ports: HostPorts) -> tuple[int, int]:
    """(flows, groups) the cost formula predicts, assuming every remote host is reachable."""
    idx = IntentIndex(intent)
    flows, groups = len(static_flows()), 0
    for n in idx.networks_on(ports.host, ports):
        eps = idx.by_network[n]
        n_local = sum(1 for e in eps if e.host == ports.host)
        flows += 4 * n_local + 2 * (len(eps) - n_local) + 3
        groups += 1
    return flows, groups
