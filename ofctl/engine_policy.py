"""The engine's policy inputs: endpoint groups, policies and their rules (a mixin of
:class:`ofctl.engine.Engine`).

Indexes kept per change: a tenant's policy count (its networks are *policy networks* while it
has one), the groups applying each policy, the members of each group, the rules naming a group
or a network as their peer, and where each tenant has a network present.  A change marks only
the fragments it can change: a rule's own entries for a rule change, a member's for a move, the
rules of the policies a group applies (and names it) for a group change.
"""

from __future__ import annotations

from typing import Any

from intent.model import PEER_GROUP, PEER_NETWORK, EndpointGroupSpec, PolicyConfig, RuleConfig
from ofctl.digests import h64_memo
from ofctl.fragments import EMPTY, POLICY_OWNER, Fragment, network_id, policy_pipeline_fragment
from ofctl.policy import rule_flows, rule_owner

MASK64 = (1 << 64) - 1


class PolicyIndex:
    """Mixin state and methods; the Engine calls :meth:`_init_policy` in its constructor."""

    networks: dict
    endpoints: dict
    tables: dict

    def _init_policy(self) -> None:
        self.groups: dict[tuple[str, str], EndpointGroupSpec] = {}
        self.policies: dict[tuple[str, str], PolicyConfig] = {}
        self._appliers: dict[tuple[str, str], set[str]] = {}  # (tenant, policy) -> groups
        self._members_of: dict[tuple[str, str], set[str]] = {}  # (tenant, group) -> ep ids
        self._rules: dict[str, tuple[str, PolicyConfig, RuleConfig]] = {}  # owner -> rule
        self._tenant_rules: dict[str, set[str]] = {}
        self._peer_group: dict[tuple[str, str], set[str]] = {}  # -> rule owners
        self._peer_network: dict[str, set[str]] = {}
        self._tenant_nets: dict[str, set[str]] = {}
        self._policy_sum: dict[str, int] = {}  # tenant -> hash sum of groups and policies

    # ------------------------------------------------------------------ PolicyWorld
    def policy_network(self, network: str) -> bool:
        net = self.networks.get(network)
        return net is not None and self._tenant_rules.get(net.tenant) is not None

    def group_id(self, tenant: str, group: str) -> int | None:
        g = self.groups.get((tenant, group))
        return g.id if g else None

    def appliers(self, tenant: str, policy: str) -> list[int]:
        return [self.groups[(tenant, g)].id for g in self._appliers.get((tenant, policy), ())
                if (tenant, g) in self.groups]

    def network_id_of(self, network: str) -> int | None:
        net = self.networks.get(network)
        return network_id(net) if net else None

    def tenant_present(self, tenant: str, host: str) -> bool:
        """Whether a network of ``tenant`` is present on ``host``."""
        return any(self.present(n, host) for n in self._tenant_nets.get(tenant, ()))

    def policy_host(self, host: str) -> bool:
        """Whether ``host`` holds a network of a tenant with policies."""
        return any(self.tenant_present(t, host) for t in self._tenant_rules)

    # ------------------------------------------------------------------ bookkeeping hooks
    def _tenant_hosts_of(self, tenant: str) -> list[str]:
        return sorted({h for n in self._tenant_nets.get(tenant, ()) for h in
                       self.present_hosts(n)})

    def _presence_flipped(self, net: str, host: str) -> None:
        """``net`` became present (or absent) on ``host``: so maybe did its tenant."""
        spec = self.networks.get(net)
        if spec is not None and spec.tenant in self._tenant_rules:
            self._mark_tenant_rules(spec.tenant, [host])

    def _mark_tenant_rules(self, tenant: str, hosts: list[str]) -> None:
        for h in hosts:
            self._mark(h, POLICY_OWNER)
            for owner in self._tenant_rules.get(tenant, ()):
                self._mark(h, ("rule", owner))

    def _network_tenant_changed(self, name: str, old, new) -> None:
        for spec, add in ((old, False), (new, True)):
            if spec is None:
                continue
            nets = self._tenant_nets.setdefault(spec.tenant, set())
            (nets.add if add else nets.discard)(name)
        for owner in self._peer_network.get(name, ()):
            tenant = self._rules[owner][0]
            for h in self._tenant_hosts_of(tenant):
                self._mark(h, ("rule", owner))

    def _member_moved(self, tenant_old: str | None, old, tenant_new: str | None, new) -> None:
        if old is not None and old.group and tenant_old:
            self._members_of.get((tenant_old, old.group), set()).discard(old.id)
        if new is not None and new.group and tenant_new:
            self._members_of.setdefault((tenant_new, new.group), set()).add(new.id)

    # ------------------------------------------------------------------ changes
    def set_group(self, tenant: str, name: str, spec: EndpointGroupSpec | None) -> None:
        """An endpoint group's resolved state (None: gone)."""
        old = self.groups.get((tenant, name))
        if old == spec:
            return
        self._sum(tenant, old, spec)
        if spec is None:
            self.groups.pop((tenant, name), None)
        else:
            self.groups[(tenant, name)] = spec
        owners = set(self._peer_group.get((tenant, name), ()))
        for g in (old, spec):
            for p in (g.policies if g else ()):
                apps = self._appliers.setdefault((tenant, p), set())
                (apps.add if g is spec else apps.discard)(name)
                owners |= {rule_owner(tenant, p, r.id) for r in
                           (self.policies.get((tenant, p)) or PolicyConfig(p, tenant)).rules or ()}
        hosts = self._tenant_hosts_of(tenant)
        for owner in owners:
            for h in hosts:
                self._mark(h, ("rule", owner))
        if (old and old.id) != (spec and spec.id):
            for eid in self._members_of.get((tenant, name), ()):
                ep = self.endpoints.get(eid)
                if ep is not None:
                    for h in self.present_hosts(ep.network):
                        self._mark(h, ("endpoint", eid))
                    self._mark_routed_endpoint(ep.network, eid)

    def set_policy(self, tenant: str, name: str, spec: PolicyConfig | None) -> None:
        """A policy with its rules (None: gone)."""
        old = self.policies.get((tenant, name))
        if old == spec:
            return
        self._sum(tenant, old, spec)
        had_policies = self._tenant_rules.get(tenant) is not None
        if spec is None:
            self.policies.pop((tenant, name), None)
        else:
            self.policies[(tenant, name)] = spec
        old_rules = {r.id: r for r in (old.rules if old else ()) or ()}
        new_rules = {r.id: r for r in (spec.rules if spec else ()) or ()}
        rules = self._tenant_rules.setdefault(tenant, set())
        changed = []
        for rid in old_rules.keys() | new_rules.keys():
            if old_rules.get(rid) == new_rules.get(rid):
                continue
            owner = rule_owner(tenant, name, rid)
            self._unindex_rule(owner)
            if rid in new_rules:
                self._rules[owner] = (tenant, spec, new_rules[rid])
                self._index_rule(owner, tenant, new_rules[rid])
                rules.add(owner)
            else:
                rules.discard(owner)
            changed.append(owner)
        for owner, (t, _p, r) in list(self._rules.items()):
            if t == tenant and owner.startswith(f"{tenant}/{name}/") and spec is not None:
                self._rules[owner] = (t, spec, r)
        has_policies = any(t == tenant for t, _ in self.policies)
        if not has_policies:
            self._tenant_rules.pop(tenant, None)
        hosts = self._tenant_hosts_of(tenant)
        if had_policies != has_policies:  # its networks become (or stop being) policy networks
            for n in self._tenant_nets.get(tenant, ()):
                self._mark_network_everywhere(n, self.present_hosts(n))
                for eid in self._members.get(n, {}):
                    self._mark_routed_endpoint(n, eid)
            for h in hosts:
                self._mark(h, POLICY_OWNER)
        for owner in changed:
            for h in hosts:
                self._mark(h, ("rule", owner))

    def _index_rule(self, owner: str, tenant: str, rule: RuleConfig) -> None:
        if rule.peer_kind == PEER_GROUP:
            self._peer_group.setdefault((tenant, rule.peer or ""), set()).add(owner)
        elif rule.peer_kind == PEER_NETWORK:
            self._peer_network.setdefault(rule.peer or "", set()).add(owner)

    def _unindex_rule(self, owner: str) -> None:
        old = self._rules.pop(owner, None)
        if old is None:
            return
        tenant, _p, rule = old
        if rule.peer_kind == PEER_GROUP:
            self._peer_group.get((tenant, rule.peer or ""), set()).discard(owner)
        elif rule.peer_kind == PEER_NETWORK:
            self._peer_network.get(rule.peer or "", set()).discard(owner)

    def _sum(self, tenant: str, old: Any, new: Any) -> None:
        from ofctl.engine import h64

        s = self._policy_sum.get(tenant, 0)
        if old is not None:
            s -= h64("policy-input", old)
        if new is not None:
            s += h64("policy-input", new)
        self._policy_sum[tenant] = s & MASK64

    # ------------------------------------------------------------------ fragments
    def policy_fragment(self, kind: str, name: str, host: str) -> Fragment:
        """The fragment of a rule, or of the policy pipeline, on ``host``."""
        if kind == "pipeline":
            return policy_pipeline_fragment() if self.policy_host(host) else EMPTY
        found = self._rules.get(name)
        if found is None or not self.tenant_present(found[0], host):
            return EMPTY
        tenant, policy, rule = found
        return Fragment(rule_flows(self, tenant, policy, rule))

    def policy_owners(self, host: str) -> list[tuple[str, str]]:
        """Every policy owner that may have entries on ``host`` (a full build)."""
        out = [POLICY_OWNER] if self.policy_host(host) else []
        for tenant, owners in self._tenant_rules.items():
            if self.tenant_present(tenant, host):
                out += [("rule", o) for o in sorted(owners)]
        return out

    def policy_digest(self, host: str) -> int:
        """Groups, policies and the ids of the networks rules name, of the tenants present."""
        tenants = {t for t in self._policy_sum if self.tenant_present(t, host)}
        total = sum(self._policy_sum[t] for t in tenants)
        for n, owners in self._peer_network.items():
            if any(self._rules[o][0] in tenants for o in owners if o in self._rules):
                total += h64_memo("peer-network", n, self.network_id_of(n))
        return total & MASK64
