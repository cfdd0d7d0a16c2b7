"""``(intent, host ports) -> desired SwitchState`` for one host, recomputed from scratch.

This is the full recompute: it builds its index over the whole intent and assembles every
fragment (:mod:`ofctl.fragments`).  The controller uses the incremental engine
(:mod:`ofctl.engine`) instead; this stays as the oracle the engine is tested against, and for
one-off computations (the simulator's tests, ``trace``).

Per present network with L local and R remote endpoints a host holds ``4L + 2R + 4 + I``
flows (classify 2 per local port, one ARP answer and one L2 entry per endpoint, two BUM
entries, the gateway's ARP and ICMP echo answers, and I ingress entries: a VLAN network's one
from the uplink, a VXLAN network's one per peer VTEP - the underlay is accepted only from the
hosts that send the VNI) and one group; a VLAN network adds ``L + 4`` (each local endpoint
answers ARP from the uplink; the hand-off's four entries): see :func:`expected_counts`.  On a
router, every host where the router's domain is visible adds one route per endpoint of the
domain and one entry per subnet.
"""

from __future__ import annotations

from collections.abc import Iterable

from intent.model import EndpointSpec, HostSpec, NetworkSpec, ResolvedIntent, RouterSpec
from ofctl import cookies
from ofctl.fragments import (
    PIPELINE_OWNER,
    POLICY_OWNER,
    Fragment,
    Owner,
    endpoint_fragment,
    network_fragment,
    policy_pipeline_fragment,
    router_fragment,
    static_fragment,
)
from ofctl.model import SwitchState
from ofctl.oracle_features import FeatureIndex
from ofctl.pipeline import check_flow
from ofctl.policy import rule_flows, rule_owner
from ofctl.topology import HostPorts


class IntentIndex(FeatureIndex):
    """Lookups over a ResolvedIntent, built once per intent revision (a :class:`World`)."""

    def __init__(self, intent: ResolvedIntent,
                 gateway_macs: dict[tuple[str, str], str] | None = None) -> None:
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
        self._ports: dict[str, HostPorts] = {}
        self._plugged: dict[str, dict[str, int]] = {}
        self._present: dict[str, set[str]] = {}
        self.groups = {(g.tenant, g.name): g for g in intent.groups}
        self.policies = {(p.tenant, p.name): p for p in intent.policies}
        self._policy_tenants = {p.tenant for p in intent.policies}
        self.routers = {(r.tenant, r.name): r for r in intent.routers}
        self._router_of = {n: r for r in intent.routers for n in r.networks}
        self._external = {r.external_network: r for r in intent.routers if r.external_network}
        self._by_id = {r.id: r for r in intent.routers}
        self._gateway_macs = dict(gateway_macs or {})
        self._init_features(intent)  # QoS and multicast (issue 13)

    def with_ports(self, ports: HostPorts) -> IntentIndex:
        """This index, answering :meth:`ports` for ``ports.host``."""
        self._ports[ports.host] = ports
        self._plugged[ports.host] = ports.port_map()
        self._present[ports.host] = self.networks_on(ports.host, ports)
        return self

    # World
    def members(self, network: str) -> Iterable[EndpointSpec]:
        return self.by_network.get(network, ())

    def local(self, network: str, host: str) -> list[tuple[EndpointSpec, int]]:
        plugged = self._plugged.get(host, {})
        return [(e, plugged[e.id]) for e in self.by_network.get(network, ())
                if e.host == host and e.id in plugged]

    def present(self, network: str, host: str) -> bool:
        return network in self._present.get(host, ())

    def port(self, host: str, endpoint_id: str) -> int | None:
        return self._plugged.get(host, {}).get(endpoint_id)

    def remote_hosts(self, network: str, host: str) -> set[str]:
        return {e.host for e in self.by_network.get(network, ()) if e.host != host}

    def tunnel_peers(self, network: str, host: str) -> set[str]:
        peers = self.remote_hosts(network, host)
        r = self.router_of(network)
        if r is not None:
            peers |= {e.host for n in r.networks for e in self.by_network.get(n, ())
                      if e.host is not None and e.host != host}
            if r.external_network and r.gateway_host and r.gateway_host != host:
                peers.add(r.gateway_host)
        return peers

    def ports(self, host: str) -> HostPorts:
        return self._ports.get(host) or HostPorts(host)

    # PolicyWorld
    def policy_network(self, network: str) -> bool:
        net = self.networks.get(network)
        return net is not None and net.tenant in self._policy_tenants

    def group_id(self, tenant: str, group: str) -> int | None:
        g = self.groups.get((tenant, group))
        return g.id if g else None

    def appliers(self, tenant: str, policy: str) -> list[int]:
        return [g.id for (t, _), g in self.groups.items() if t == tenant and policy in g.policies]

    def network_id_of(self, network: str) -> int | None:
        net = self.networks.get(network)
        return cookies.network_id(net.net_type, net.tag) if net else None

    # RouterWorld
    def router_of(self, network: str) -> RouterSpec | None:
        return self._router_of.get(network)

    def external_router(self, network: str) -> RouterSpec | None:
        return self._external.get(network)

    def domain_present(self, rid: int, host: str) -> bool:
        r = self._by_id.get(rid)
        return r is not None and any(self.present(n, host) for n in r.networks)

    def domain_visible(self, rid: int, host: str) -> bool:
        r = self._by_id.get(rid)
        return r is not None and (self.domain_present(rid, host) or (
            r.external_network is not None and host == r.gateway_host))

    def gateway_mac(self, tenant: str, router: str) -> str | None:
        return self._gateway_macs.get((tenant, router))

    def visible_networks(self, host: str) -> set[str]:
        """Networks present on ``host`` and the networks of the domains visible there."""
        out = set(self._present.get(host, ()))
        for r in self.routers.values():
            if self.domain_visible(r.id, host):
                out |= {n for n in r.networks if n in self.networks}
        return out

    def networks_on(self, host: str, ports: HostPorts) -> set[str]:
        """Networks with an endpoint bound to ``host`` and plugged there."""
        plugged = ports.port_map()
        return {net for eid, net in self.by_host.get(host, {}).items() if eid in plugged}


def host_fragments(idx: IntentIndex, ports: HostPorts) -> Iterable[tuple[Owner, Fragment]]:
    """Every fragment of one host with its owner (static, per present network, per endpoint
    visible there, per router, the policy pipeline and the rules of the tenants present)."""
    idx.with_ports(ports)
    yield PIPELINE_OWNER, static_fragment()
    present = sorted(idx.networks_on(ports.host, ports))
    for n in present:
        yield ("network", n), network_fragment(idx, n, ports.host)
    for n in sorted(idx.visible_networks(ports.host)):
        for e in idx.by_network[n]:
            yield ("endpoint", e.id), endpoint_fragment(idx, e, ports.host)
    for (t, name), r in sorted(idx.routers.items()):
        yield ("router", f"{t}/{name}"), router_fragment(idx, r, ports.host)
    tenants = {idx.networks[n].tenant for n in present} & idx._policy_tenants
    if tenants:
        yield POLICY_OWNER, policy_pipeline_fragment()
    for (t, _), p in sorted(idx.policies.items()):
        if t in tenants:
            for rule in p.rules or ():
                yield ("rule", rule_owner(t, p.name, rule.id)), Fragment(
                    rule_flows(idx, t, p, rule))
    yield from idx.feature_fragments(ports.host, present)


def assemble(fragments: Iterable[tuple[Owner, Fragment]], check: bool = True) -> SwitchState:
    """The union of fragments as a SwitchState (checked against the pipeline).  Where two
    owners produce one key, the lowest owner's entry wins (as in the engine's tables)."""
    chosen: list[dict] = [{}, {}, {}]
    for owner, frag in fragments:
        for kind, (entries, key) in enumerate(((frag.flows, lambda f: f.key),
                                               (frag.groups, lambda g: g.group_id),
                                               (frag.meters, lambda m: m.meter_id))):
            for e in entries:
                k = key(e)
                have = chosen[kind].get(k)
                if have is None or owner < have[0]:
                    chosen[kind][k] = (owner, e)
    flows = frozenset(e for _, e in chosen[0].values())
    if check:
        for f in flows:
            check_flow(f)
    return SwitchState(flows, frozenset(e for _, e in chosen[1].values()),
                       frozenset(e for _, e in chosen[2].values()))


def compute_host(intent: ResolvedIntent, ports: HostPorts, index: IntentIndex | None = None,
                 check: bool = True,
                 gateway_macs: dict[tuple[str, str], str] | None = None) -> SwitchState:
    """The desired state of ``ports.host``'s br-int (``gateway_macs``: the physical gateways'
    MACs the controller has learnt, per (tenant, router))."""
    return assemble(host_fragments(index or IntentIndex(intent, gateway_macs), ports), check)


def expected_counts(intent: ResolvedIntent, ports: HostPorts) -> tuple[int, int]:
    """(flows, groups) the cost formula predicts (networks without routers or policies),
    assuming every remote host is reachable: see the module docstring."""
    idx = IntentIndex(intent)
    flows, groups = len(static_fragment().flows), 0
    for n in idx.networks_on(ports.host, ports):
        eps = idx.by_network[n]
        n_local = sum(1 for e in eps if e.host == ports.host)
        flows += 4 * n_local + 2 * (len(eps) - n_local) + 2
        if idx.networks[n].net_type == "vlan":
            flows += 1 if ports.uplink_port is not None else 0
        elif ports.vxlan_port is not None:
            flows += len(idx.remote_hosts(n, ports.host))
        if idx.networks[n].gateway and idx.external_router(n) is None:
            flows += 2
        if idx.networks[n].net_type == "vlan" and ports.uplink_port is not None:
            flows += n_local + 4
        groups += 1
    return flows, groups
