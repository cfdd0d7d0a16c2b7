"""QoS and multicast lookups of the full recompute's index (a mixin of
:class:`ofctl.compute.IntentIndex`), and every QoS/multicast fragment of one host."""

from __future__ import annotations

from collections.abc import Iterable

from intent.mcast_doc import receiver_ids
from intent.model import EndpointSpec, QosProfileConfig, ResolvedIntent
from ofctl.mcast import group_fragment, group_ids, snooping, snooping_fragment
from ofctl.qos import effective_profile, qos_fragment


def mcast_addresses(declared: dict[str, set[str]], learned: dict[str, set[str]]) -> set[str]:
    """Every group address a network knows (declared, even without receivers, or learned)."""
    return set(declared) | set(learned)


class FeatureIndex:
    """Mixin state: profiles, declared and learned receivers; see the module docstring."""

    networks: dict
    groups: dict
    by_network: dict

    def _init_features(self, intent: ResolvedIntent) -> None:
        self.qos_profiles: dict[tuple[str, str], QosProfileConfig] = {
            (p.tenant, p.name): p for p in intent.qos_profiles}
        self._learned: dict[str, dict[str, set[str]]] = {}
        for m in intent.learned:
            self._learned.setdefault(m.network, {}).setdefault(m.address, set()).add(m.endpoint)
        self._gids: dict[str, dict[str, int]] = {}

    def qos_of(self, ep: EndpointSpec) -> QosProfileConfig | None:
        net = self.networks.get(ep.network)
        if net is None:
            return None
        g = self.groups.get((net.tenant, ep.group)) if ep.group else None
        return effective_profile(ep, net.qos_profile, g.qos_profile if g else None,
                                 self.qos_profiles, net.tenant)

    def _receivers(self, network: str) -> dict[str, set[str]]:
        net = self.networks.get(network)
        out = {a: set(ids) for a, ids in receiver_ids(network, net.multicast if net else None
                                                      ).items()}
        for a, ids in self._learned.get(network, {}).items():
            out.setdefault(a, set()).update(ids)
        return out

    def mcast_receivers(self, network: str, address: str) -> Iterable[EndpointSpec]:
        ids = self._receivers(network).get(address, set())
        return [e for e in self.by_network.get(network, ()) if e.id in ids]

    def mcast_group_id(self, network: str, address: str) -> int | None:
        if network not in self._gids:
            net = self.networks.get(network)
            self._gids[network] = group_ids(net.zone, self._receivers(network)) if net else {}
        return self._gids[network].get(address)

    def feature_fragments(self, host: str, present: list[str]):
        """(owner, fragment) of every QoS and multicast owner on ``host``."""
        for n in present:
            for e in self.by_network.get(n, ()):
                if e.host == host:
                    yield ("qos", e.id), qos_fragment(self, e, host)
            if snooping(self.networks.get(n)):
                yield ("mcastnet", n), snooping_fragment(self, n, host)
                for a in sorted(self._receivers(n)):
                    yield ("mcast", f"{n}/{a}"), group_fragment(self, n, a, host)
