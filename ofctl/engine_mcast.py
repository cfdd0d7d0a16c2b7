"""The engine's multicast inputs: declared receivers (in the network's spec) and receivers
learned by IGMP snooping (a mixin of :class:`ofctl.engine.Engine`).

Owners: ``("mcastnet", network)`` (the snooping entries) and ``("mcast", "network/address")``
(one group and its two entries) on each host where the network is present.  A join or leave
marks one address's owner on the network's present hosts; a receiver's move or plug marks the
addresses it receives; a change of the network's spec that only touches its multicast or QoS
marks just those owners (no endpoint entry is recomputed).
"""

from __future__ import annotations

from dataclasses import replace

from intent.mcast_doc import receiver_ids
from intent.model import EndpointSpec, NetworkSpec
from ofctl.fragments import EMPTY, Fragment
from ofctl.mcast import group_fragment, group_ids, snooping, snooping_fragment

MASK64 = (1 << 64) - 1


def _core(spec: NetworkSpec) -> NetworkSpec:
    return replace(spec, qos_profile=None, multicast=None)


class McastIndex:
    """Mixin; the Engine calls :meth:`_init_mcast` in its constructor."""

    networks: dict
    endpoints: dict
    _members: dict
    _on_host: dict
    _plugged: dict

    def _init_mcast(self) -> None:
        self._declared: dict[str, dict[str, set[str]]] = {}  # net -> address -> endpoint ids
        self._learned: dict[str, dict[str, set[str]]] = {}
        self._learned_sum: dict[str, int] = {}
        self._gids: dict[str, dict[str, int]] = {}
        self._receives: dict[str, set[str]] = {}  # endpoint id -> addresses (in its network)

    # ------------------------------------------------------------------ world
    def _receivers(self, net: str, address: str) -> set[str]:
        return self._declared.get(net, {}).get(address, set()) | \
            self._learned.get(net, {}).get(address, set())

    def mcast_addresses(self, net: str) -> set[str]:
        return set(self._declared.get(net, {})) | set(self._learned.get(net, {}))

    def mcast_receivers(self, network: str, address: str) -> list[EndpointSpec]:
        members = self._members.get(network, {})
        return [members[e] for e in sorted(self._receivers(network, address)) if e in members]

    def mcast_group_id(self, network: str, address: str) -> int | None:
        return self._gids.get(network, {}).get(address)

    def endpoint_at(self, host: str, ofport: int) -> EndpointSpec | None:
        """The endpoint bound to ``host`` and plugged into ``ofport`` there (None: none)."""
        for eid, port in self._plugged.get(host, {}).items():
            ep = self.endpoints.get(eid)
            if port == ofport and ep is not None and ep.host == host:
                return ep
        return None

    def learned(self, network: str) -> dict[str, set[str]]:
        """Learned receivers of ``network`` per address (REST, status)."""
        return {a: set(ids) for a, ids in self._learned.get(network, {}).items()}

    # ------------------------------------------------------------------ marking
    def _mark_address(self, net: str, address: str) -> None:
        for h in self.present_hosts(net):
            self._mark(h, ("mcast", f"{net}/{address}"))

    def _mark_mcast_network(self, net: str, hosts) -> None:
        for h in hosts:
            self._mark(h, ("mcastnet", net))
            for a in self.mcast_addresses(net):
                self._mark(h, ("mcast", f"{net}/{a}"))

    def _regroup(self, net: str) -> None:
        """Recompute ``net``'s group ids; mark the addresses whose id changed."""
        spec = self.networks.get(net)
        old = self._gids.get(net, {})
        new = group_ids(spec.zone, self.mcast_addresses(net)) if spec else {}
        self._gids[net] = new
        for a in old.keys() | new.keys():
            if old.get(a) != new.get(a):
                self._mark_address(net, a)

    def _index_receivers(self, net: str, address: str, before: set[str]) -> None:
        now = self._receivers(net, address)
        for e in before - now:
            self._receives.get(e, set()).discard(address)
        for e in now - before:
            self._receives.setdefault(e, set()).add(address)
        if before != now:
            self._mark_address(net, address)

    # ------------------------------------------------------------------ changes
    def set_learned(self, network: str, address: str, endpoint: str, joined: bool) -> None:
        """Endpoint ``endpoint`` joined (or left) ``address`` in ``network`` (IGMP)."""
        from ofctl.engine import h64

        ids = self._learned.setdefault(network, {}).setdefault(address, set())
        if (endpoint in ids) == joined:
            return
        before = self._receivers(network, address)
        (ids.add if joined else ids.discard)(endpoint)
        step = h64("learned", network, address, endpoint)
        self._learned_sum[network] = (self._learned_sum.get(network, 0) +
                                      (step if joined else -step)) & MASK64
        if not ids:
            del self._learned[network][address]
        self._index_receivers(network, address, before)
        self._regroup(network)

    def set_network(self, name: str, spec: NetworkSpec | None) -> None:
        old = self.networks.get(name)
        if old == spec:
            return
        if old is not None and spec is not None and _core(old) == _core(spec):
            self.networks[name] = spec  # only multicast or QoS changed
        else:
            super().set_network(name, spec)  # type: ignore[misc]
            self._mark_mcast_network(name, self.present_hosts(name))  # its id may have moved
        if (old and old.qos_profile) != (spec and spec.qos_profile) or \
                (old and old.tenant) != (spec and spec.tenant):
            self._qos_network_changed(name)  # type: ignore[attr-defined]
        if (old and old.multicast) != (spec and spec.multicast) or (old and old.zone) != (
                spec and spec.zone):
            declared = receiver_ids(name, spec.multicast) if spec else {}
            before = {a: self._receivers(name, a) for a in self.mcast_addresses(name)}
            self._declared[name] = declared
            for a in before.keys() | declared.keys():
                self._index_receivers(name, a, before.get(a, set()))
            if snooping(old) != snooping(spec):
                self._mark_mcast_network(name, self.present_hosts(name))
            self._regroup(name)

    def set_endpoint(self, eid: str, new: EndpointSpec | None) -> None:
        old = self.endpoints.get(eid)
        super().set_endpoint(eid, new)  # type: ignore[misc]
        addresses = self._receives.get(eid, ())
        for e in (old, new):
            if e is not None:
                for a in addresses:
                    self._mark_address(e.network, a)

    def set_port(self, host: str, eid: str, ofport: int | None) -> None:
        super().set_port(host, eid, ofport)  # type: ignore[misc]
        ep = self.endpoints.get(eid)
        if ep is not None and ep.host == host:
            for a in self._receives.get(eid, ()):
                self._mark(host, ("mcast", f"{ep.network}/{a}"))

    def set_host(self, name: str, spec) -> None:
        old = self.hosts.get(name)
        super().set_host(name, spec)  # type: ignore[misc]
        if (old and old.vtep_ip) != (spec and spec.vtep_ip):
            nets = {self.endpoints[e].network for e in self._on_host.get(name, ())}
            for n in nets:
                self._mark_mcast_network(n, self.present_hosts(n))

    def set_host_ports(self, host: str, vxlan_port: int | None, uplink_port: int | None) -> None:
        super().set_host_ports(host, vxlan_port, uplink_port)  # type: ignore[misc]
        for n in self.present_networks(host):
            self._mark_mcast_network(n, [host])

    def _presence_flipped(self, net: str, host: str) -> None:
        super()._presence_flipped(net, host)  # type: ignore[misc]
        self._mark_mcast_network(net, [host])

    # ------------------------------------------------------------------ fragments
    def mcast_owner_fragment(self, kind: str, name: str, host: str) -> Fragment:
        if kind == "mcastnet":
            return snooping_fragment(self, name, host)
        net, _, address = name.partition("/")
        return group_fragment(self, net, address, host) if address else EMPTY

    def mcast_owners(self, net: str) -> list[tuple[str, str]]:
        if not snooping(self.networks.get(net)):
            return []
        return [("mcastnet", net)] + [("mcast", f"{net}/{a}")
                                      for a in sorted(self.mcast_addresses(net))]

    def mcast_digest(self, nets) -> int:
        return sum(self._learned_sum.get(n, 0) for n in nets)
