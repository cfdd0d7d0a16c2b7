"""The engine's router inputs: routers, their domains' presence per host and the physical
gateways' MACs the controller learnt (a mixin of :class:`ofctl.engine.Engine`).

A router's *domain* is visible on a host where one of its networks is present, and on its
gateway host.  There every endpoint of the domain has entries (its route, its L2 entry, its
policy registers) and the router has its own fragment.  Indexes kept per change: network ->
router, external network -> router, router id -> router, and per domain the number of its
networks present on each host, so a presence flip of the domain is seen in O(1).
"""

from __future__ import annotations

from collections.abc import Iterable

from intent.model import RouterSpec
from ofctl.digests import h64_memo
from ofctl.fragments import Owner

MASK64 = (1 << 64) - 1


def router_owner(r: RouterSpec) -> Owner:
    return ("router", f"{r.tenant}/{r.name}")


class RouterIndex:
    """Mixin state and methods; the Engine calls :meth:`_init_routers` in its constructor."""

    networks: dict
    tables: dict
    _members: dict
    _bound: dict

    def _init_routers(self) -> None:
        self.routers: dict[tuple[str, str], RouterSpec] = {}
        self._router_net: dict[str, tuple[str, str]] = {}
        self._router_ext: dict[str, tuple[str, str]] = {}
        self._router_id: dict[int, tuple[str, str]] = {}
        self._gw_macs: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ RouterWorld
    def router_of(self, network: str) -> RouterSpec | None:
        key = self._router_net.get(network)
        return self.routers.get(key) if key else None

    def external_router(self, network: str) -> RouterSpec | None:
        key = self._router_ext.get(network)
        return self.routers.get(key) if key else None

    def domain_present(self, rid: int, host: str) -> bool:
        key = self._router_id.get(rid)
        return key is not None and self._present_on(self.routers[key], host)

    def _present_on(self, r: RouterSpec, host: str, but: str | None = None) -> bool:
        return any(self.present(n, host) for n in r.networks if n != but and n in self.networks)

    def domain_visible(self, rid: int, host: str) -> bool:
        if self.domain_present(rid, host):
            return True
        key = self._router_id.get(rid)
        r = self.routers.get(key) if key else None
        return r is not None and r.external_network is not None and host == r.gateway_host

    def gateway_mac(self, tenant: str, router: str) -> str | None:
        return self._gw_macs.get((tenant, router))

    # ------------------------------------------------------------------ lookups
    def visible_routers(self, host: str) -> list[RouterSpec]:
        return [r for r in self.routers.values() if self.domain_visible(r.id, host)]

    def domain_hosts(self, r: RouterSpec) -> set[str]:
        """Hosts where ``r``'s domain is visible."""
        hosts = {h for n in r.networks if n in self.networks for h in self.present_hosts(n)}
        if r.external_network and r.gateway_host:
            hosts.add(r.gateway_host)
        return hosts

    def routed_visible_networks(self, host: str) -> set[str]:
        """Networks of the routers whose domain is visible on ``host``."""
        return {n for r in self.visible_routers(host) for n in r.networks if n in self.networks}

    # ------------------------------------------------------------------ marking
    def _mark_domain(self, r: RouterSpec, hosts: Iterable[str]) -> None:
        """Everything of ``r``'s domain on ``hosts``: the router, its networks, their
        endpoints (and the external network's own fragment)."""
        nets = list(r.networks) + ([r.external_network] if r.external_network else [])
        for h in hosts:
            self._mark(h, router_owner(r))
            for n in nets:
                self._mark(h, ("network", n))
                for e in self._members.get(n, {}):
                    self._mark(h, ("endpoint", e))

    def _mark_routed_endpoint(self, network: str, eid: str) -> None:
        r = self.router_of(network)
        if r is not None:
            for h in self.domain_hosts(r):
                self._mark(h, ("endpoint", eid))

    def _mark_routers_on(self, host: str) -> None:
        for r in self.visible_routers(host):
            self._mark_domain(r, [host])

    def _domain_flipped(self, net: str, host: str) -> None:
        """``net`` became present (or absent) on ``host``: so did its domain, unless another
        network of the router is present there."""
        r = self.router_of(net)
        if r is not None and net in self.networks and not self._present_on(r, host, but=net):
            self._mark_domain(r, [host])

    def tunnel_peers(self, network: str, host: str) -> set[str]:
        """World.tunnel_peers: the network's other members and its router's senders."""
        peers = set(self.remote_hosts(network, host))  # type: ignore[attr-defined]
        r = self.router_of(network)
        if r is not None:
            peers |= self.router_senders(r) - {host}
        return peers

    def router_senders(self, r: RouterSpec) -> set[str]:
        """Hosts that may send routed traffic of ``r``: those with an endpoint of one of its
        networks bound to them, and its gateway host."""
        hosts = {h for n in r.networks for h in self._bound.get(n, ())}
        if r.external_network and r.gateway_host:
            hosts.add(r.gateway_host)
        return hosts

    def _mark_tunnel_peers(self, r: RouterSpec | None) -> None:
        """``r``'s senders changed (or one's VTEP did): its networks' tunnel ingress,
        wherever they are present."""
        for n in r.networks if r is not None else ():
            for h in self.present_hosts(n):
                self._mark(h, ("network", n))

    # ------------------------------------------------------------------ changes
    def set_router(self, tenant: str, name: str, spec: RouterSpec | None) -> None:
        """A router's resolved state (None: gone)."""
        key = (tenant, name)
        old = self.routers.get(key)
        if old == spec:
            return
        hosts: set[str] = set()
        if old is not None:
            hosts |= self.domain_hosts(old)
            self._mark_domain(old, hosts)
            for n in old.networks:
                if self._router_net.get(n) == key:
                    del self._router_net[n]
            if old.external_network and self._router_ext.get(old.external_network) == key:
                del self._router_ext[old.external_network]
            self._router_id.pop(old.id, None)
            del self.routers[key]
        if spec is not None:
            self.routers[key] = spec
            for n in spec.networks:
                self._router_net[n] = key
            if spec.external_network:
                self._router_ext[spec.external_network] = key
            self._router_id[spec.id] = key
            self._mark_domain(spec, self.domain_hosts(spec) | hosts)

    def set_gateway_mac(self, tenant: str, name: str, mac: str | None) -> None:
        """The physical gateway's MAC of router ``tenant/name`` (None: unknown)."""
        key = (tenant, name)
        if self._gw_macs.get(key) == mac:
            return
        if mac is None:
            self._gw_macs.pop(key, None)
        else:
            self._gw_macs[key] = mac
        r = self.routers.get(key)
        if r is not None:
            for h in self.domain_hosts(r):
                self._mark(h, router_owner(r))

    def _network_routing_changed(self, name: str) -> None:
        """Network ``name``'s spec changed (or it came or went): its router's (or external
        router's) domain, where it is visible and where the network is present."""
        for r in (self.router_of(name), self.external_router(name)):
            if r is not None:
                self._mark_domain(r, self.domain_hosts(r) | set(self.present_hosts(name)))

    def router_fragment_of(self, name: str, host: str):
        from ofctl.fragments import EMPTY, router_fragment

        tenant, _, rname = name.partition("/")
        r = self.routers.get((tenant, rname))
        return router_fragment(self, r, host) if r is not None else EMPTY

    def router_digest(self, host: str) -> int:
        """The hash of the routers visible on ``host`` (with their gateways' MACs)."""
        return sum(h64_memo("router", r, self._gw_macs.get((r.tenant, r.name)))
                   for r in self.visible_routers(host)) & MASK64
