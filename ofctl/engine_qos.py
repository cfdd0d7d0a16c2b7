"""The engine's QoS inputs: profiles and the references of endpoints, groups and networks (a
mixin of :class:`ofctl.engine.Engine`).

An endpoint's QoS fragment (``("qos", id)`` on its host) depends on its port, its effective
profile (own, group's, network's) and whether its network goes through the policy tables.  A
change marks exactly the endpoints it can change: a profile change the plugged endpoints that
use it (the meter is modified in place; flows stay unless the DSCP comes or goes), a group's or
network's reference their plugged members.
"""

from __future__ import annotations

from intent.model import EndpointSpec, QosProfileConfig
from ofctl.fragments import EMPTY, Fragment
from ofctl.qos import effective_profile, qos_fragment

MASK64 = (1 << 64) - 1


class QosIndex:
    """Mixin; the Engine calls :meth:`_init_qos` in its constructor."""

    networks: dict
    endpoints: dict
    groups: dict
    _local: dict
    _members_of: dict
    _tenant_nets: dict
    _tenant_rules: dict

    def _init_qos(self) -> None:
        self.qos_profiles: dict[tuple[str, str], QosProfileConfig] = {}
        self._qos_sum: dict[str, int] = {}  # tenant -> hash sum of its profiles

    # ------------------------------------------------------------------ world
    def qos_of(self, ep: EndpointSpec) -> QosProfileConfig | None:
        net = self.networks.get(ep.network)
        if net is None:
            return None
        g = self.groups.get((net.tenant, ep.group)) if ep.group else None
        return effective_profile(ep, net.qos_profile, g.qos_profile if g else None,
                                 self.qos_profiles, net.tenant)

    def _profile_name(self, ep: EndpointSpec) -> str | None:
        net = self.networks.get(ep.network)
        g = self.groups.get((net.tenant, ep.group)) if net and ep.group else None
        return ep.qos_profile or (g.qos_profile if g else None) or (net and net.qos_profile)

    # ------------------------------------------------------------------ marking
    def _mark_qos(self, eid: str, host: str | None) -> None:
        """The endpoint's QoS entries and its classify entries (they go through QOS or not)."""
        if host is not None:
            self._mark(host, ("qos", eid))
            self._mark(host, ("endpoint", eid))

    def _mark_plugged(self, eids) -> None:
        for eid in eids:
            ep = self.endpoints.get(eid)
            if ep is not None and ep.host is not None:
                self._mark_qos(eid, ep.host)

    def _plugged_of_network(self, net: str) -> list[str]:
        return [eid for eps in self._local.get(net, {}).values() for eid in eps]

    # ------------------------------------------------------------------ changes
    def set_qos_profile(self, tenant: str, name: str, spec: QosProfileConfig | None) -> None:
        """A QoS profile (None: gone)."""
        from ofctl.engine import h64

        old = self.qos_profiles.get((tenant, name))
        if old == spec:
            return
        s = self._qos_sum.get(tenant, 0)
        s -= h64("qos-profile", old) if old is not None else 0
        s += h64("qos-profile", spec) if spec is not None else 0
        self._qos_sum[tenant] = s & MASK64
        if spec is None:
            self.qos_profiles.pop((tenant, name), None)
        else:
            self.qos_profiles[(tenant, name)] = spec
        for net in self._tenant_nets.get(tenant, ()):
            self._mark_plugged(e for e in self._plugged_of_network(net)
                               if self._profile_name(self.endpoints[e]) == name)

    def set_endpoint(self, eid: str, new: EndpointSpec | None) -> None:
        old = self.endpoints.get(eid)
        super().set_endpoint(eid, new)  # type: ignore[misc]
        for e in (old, new):
            if e is not None:
                self._mark_qos(eid, e.host)

    def set_port(self, host: str, eid: str, ofport: int | None) -> None:
        super().set_port(host, eid, ofport)  # type: ignore[misc]
        self._mark(host, ("qos", eid))

    def set_group(self, tenant: str, name: str, spec) -> None:
        old = self.groups.get((tenant, name))
        super().set_group(tenant, name, spec)  # type: ignore[misc]
        if (old and old.qos_profile) != (spec and spec.qos_profile):
            self._mark_plugged(self._members_of.get((tenant, name), ()))

    def set_policy(self, tenant: str, name: str, spec) -> None:
        had = tenant in self._tenant_rules
        super().set_policy(tenant, name, spec)  # type: ignore[misc]
        if had != (tenant in self._tenant_rules):  # IPv4 continues at another table
            for net in self._tenant_nets.get(tenant, ()):
                self._mark_plugged(self._plugged_of_network(net))

    def _qos_network_changed(self, name: str) -> None:
        self._mark_plugged(self._plugged_of_network(name))

    # ------------------------------------------------------------------ fragments
    def qos_owner_fragment(self, eid: str, host: str) -> Fragment:
        ep = self.endpoints.get(eid)
        return qos_fragment(self, ep, host) if ep is not None else EMPTY

    def qos_digest(self, tenants: set[str]) -> int:
        return sum(self._qos_sum.get(t, 0) for t in tenants)
