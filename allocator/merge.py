"""Pure merging of a (possibly partial) document onto the stored objects it names.

The result is a :class:`Delta`: per object kind, ``name -> (old, new)`` where ``old`` is the stored
object (None: new) and ``new`` the object to store (None: delete).  Objects a document does not
name are not in the delta at all; that is what keeps a write's cost to what it touches.

* ``add``: fields the document leaves out (``None``) keep their stored values, fields it gives
  update them; lists (networks, endpoints) merge by name.  Defaults are filled *after* the merge.
* ``delete``: at the deepest level the document names (a network listed with endpoints loses
  those endpoints; listed without, it goes whole with its endpoints).
* ``desired``: the document is the whole intent: what it does not name is deleted, what it
  names is replaced (unset fields default, they do not keep stored values).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from intent.errors import ConflictError, NotFoundError
from intent.model import (
    Config,
    EndpointConfig,
    EndpointGroupConfig,
    HostConfig,
    NetworkConfig,
    PolicyConfig,
    QosProfileConfig,
    RouterConfig,
    TenantConfig,
    network_with_defaults,
    tenant_with_defaults,
)

Pair = tuple[Any, Any]


@dataclass
class Delta:
    """What a write changes, object by object (children are not nested in their parents)."""

    hosts: dict[str, Pair] = field(default_factory=dict)
    tenants: dict[str, Pair] = field(default_factory=dict)
    networks: dict[str, Pair] = field(default_factory=dict)
    endpoints: dict[str, Pair] = field(default_factory=dict)
    groups: dict[tuple[str, str], Pair] = field(default_factory=dict)  # (tenant, name)
    policies: dict[tuple[str, str], Pair] = field(default_factory=dict)
    qos_profiles: dict[tuple[str, str], Pair] = field(default_factory=dict)  # (tenant, name)
    routers: dict[tuple[str, str], Pair] = field(default_factory=dict)
    labels: dict[tuple[str, str], str] = field(default_factory=dict)
    expanded: set[str] = field(default_factory=set)  # networks whose endpoints are all here
    # endpoint id -> the address its network's IPAM plugin gave it (None: given back)
    delegated: dict[str, str | None] = field(default_factory=dict)

    def label(self, kind: str, name: str) -> str:
        """How messages name an object: its JSON path in the document, else ``kind "name"``."""
        return self.labels.get((kind, name), f'{kind} "{name}"')


@dataclass
class Stored:
    """The stored objects a merge needs: looked up by name (None: not stored)."""

    hosts: dict[str, HostConfig]
    tenants: dict[str, TenantConfig]
    networks: dict[str, NetworkConfig]
    endpoints: dict[str, EndpointConfig]
    groups: dict[tuple[str, str], EndpointGroupConfig] = field(default_factory=dict)
    policies: dict[tuple[str, str], PolicyConfig] = field(default_factory=dict)
    qos_profiles: dict[tuple[str, str], QosProfileConfig] = field(default_factory=dict)
    routers: dict[tuple[str, str], RouterConfig] = field(default_factory=dict)


def overlay(old: Any, new: Any,
            keep: Iterable[str] = ("networks", "endpoints", "endpoint_groups", "policies",
                                   "routers", "qos_profiles")
            ) -> Any:
    """``old`` with every field ``new`` gives (not None) taken from ``new``."""
    if old is None:
        return new
    changes = {f.name: getattr(new, f.name) for f in fields(new)
               if f.name not in keep and getattr(new, f.name) is not None}
    return replace(old, **changes)


def strip(obj: Any) -> Any:
    """An object without its children (children are stored under their own keys)."""
    if isinstance(obj, TenantConfig):
        return replace(obj, networks=(), endpoint_groups=(), policies=(), routers=(),
                       qos_profiles=())
    if isinstance(obj, NetworkConfig):
        return replace(obj, endpoints=())
    return obj


def doc_labels(doc: Config) -> dict[tuple[str, str], str]:
    """JSON paths of the objects a document names."""
    labels: dict[tuple[str, str], str] = {}
    for hi, h in enumerate(doc.hosts):
        labels.setdefault(("host", h.name), f"Hosts[{hi}]")
    for ti, t in enumerate(doc.tenants):
        labels.setdefault(("tenant", t.name), f"Tenants[{ti}]")
        for gi, g in enumerate(t.endpoint_groups):
            labels.setdefault(("endpoint group", f"{t.name}/{g.name}"),
                              f"Tenants[{ti}].EndpointGroups[{gi}]")
        for pi, p in enumerate(t.policies):
            labels.setdefault(("policy", f"{t.name}/{p.name}"), f"Tenants[{ti}].Policies[{pi}]")
        for qi, q in enumerate(t.qos_profiles):
            labels.setdefault(("QoS profile", f"{t.name}/{q.name}"),
                              f"Tenants[{ti}].QosProfiles[{qi}]")
        for ri, r in enumerate(t.routers):
            labels.setdefault(("router", f"{t.name}/{r.name}"), f"Tenants[{ti}].Routers[{ri}]")
        for ni, n in enumerate(t.networks):
            labels.setdefault(("network", n.name), f"Tenants[{ti}].Networks[{ni}]")
            for ei, e in enumerate(n.endpoints):
                labels.setdefault(("endpoint", e.id),
                                  f"Tenants[{ti}].Networks[{ni}].Endpoints[{ei}]")
    return labels


def merge_add(doc: Config, stored: Stored, create_only: frozenset[tuple[str, str]] = frozenset()
              ) -> Delta:
    """Add or update what ``doc`` names; see the module docstring."""
    delta = Delta()
    for h in doc.hosts:
        old = stored.hosts.get(h.name)
        _exists(create_only, "host", h.name, old)
        delta.hosts[h.name] = (old, overlay(old, h))
    for t in doc.tenants:
        old_t = stored.tenants.get(t.name)
        _exists(create_only, "tenant", t.name, old_t)
        new_t = tenant_with_defaults(strip(overlay(old_t, t)))
        delta.tenants[t.name] = (old_t, new_t)
        for g in t.endpoint_groups:
            old_g = stored.groups.get((t.name, g.name))
            _exists(create_only, "endpoint group", f"{t.name}/{g.name}", old_g)
            new_g = overlay(old_g, g)
            delta.groups[(t.name, g.name)] = (old_g, replace(new_g, policies=new_g.policies or ()))
        for p in t.policies:
            old_p = stored.policies.get((t.name, p.name))
            _exists(create_only, "policy", f"{t.name}/{p.name}", old_p)
            delta.policies[(t.name, p.name)] = (old_p, merge_rules(old_p, p))
        for q in t.qos_profiles:
            old_q = stored.qos_profiles.get((t.name, q.name))
            _exists(create_only, "QoS profile", f"{t.name}/{q.name}", old_q)
            delta.qos_profiles[(t.name, q.name)] = (old_q, q)  # a profile is replaced whole
        for r in t.routers:
            old_r = stored.routers.get((t.name, r.name))
            _exists(create_only, "router", f"{t.name}/{r.name}", old_r)
            new_r = overlay(old_r, r)
            delta.routers[(t.name, r.name)] = (old_r, replace(new_r,
                                                               networks=new_r.networks or ()))
        for n in t.networks:
            old_n = stored.networks.get(n.name)
            _exists(create_only, "network", n.name, old_n)
            base = old_n if old_n is not None and old_n.tenant == t.name else None
            new_n = network_with_defaults(strip(overlay(base, n)), new_t)
            delta.networks[n.name] = (old_n, new_n)
            for e in n.endpoints:
                old_e = stored.endpoints.get(e.id)
                if old_e is not None and (old_e.network, old_e.container) != (e.network,
                                                                                e.container):
                    old_e = None  # another endpoint with the same id: the planner refuses it
                _exists(create_only, "endpoint", e.id, old_e)
                delta.endpoints[e.id] = (old_e, overlay(old_e, e))
    return delta


def merge_rules(old: PolicyConfig | None, new: PolicyConfig) -> PolicyConfig:
    """``new``'s rules over ``old``'s, by rule id (rules not given are kept)."""
    if new.rules is None:
        return old if old is not None else replace(new, rules=())
    rules = {r.id: r for r in (old.rules or ()) if old is not None} if old else {}
    rules.update((r.id, r) for r in new.rules)
    return replace(new, rules=tuple(rules[k] for k in sorted(rules)))


def _exists(create_only: frozenset[tuple[str, str]], kind: str, name: str, old: Any) -> None:
    if old is not None and (kind, name) in create_only:
        raise ConflictError(f'{kind} "{name}" exists already')


def merge_delete(doc: Config, stored: Stored) -> tuple[Delta, list[str], list[str]]:
    """Delete what ``doc`` names.  Returns the delta plus the networks and tenants deleted
    whole (their endpoints and networks are found by the caller through the pool indexes)."""
    delta = Delta()
    missing: list[str] = []
    whole_networks: list[str] = []
    whole_tenants: list[str] = []
    for t in doc.tenants:
        old_t = stored.tenants.get(t.name)
        if old_t is None:
            missing.append(f'tenant "{t.name}" does not exist')
            continue
        if not (t.networks or t.endpoint_groups or t.policies or t.routers or
                t.qos_profiles):
            delta.tenants[t.name] = (old_t, None)
            whole_tenants.append(t.name)
            continue
        for what, named, have, out in (
                ("endpoint group", t.endpoint_groups, stored.groups, delta.groups),
                ("QoS profile", t.qos_profiles, stored.qos_profiles, delta.qos_profiles),
                ("router", t.routers, stored.routers, delta.routers)):
            for obj in named:
                old = have.get((t.name, obj.name))
                if old is None:
                    missing.append(f'{what} "{obj.name}" does not exist in tenant "{t.name}"')
                else:
                    out[(t.name, obj.name)] = (old, None)
        for p in t.policies:
            old_p = stored.policies.get((t.name, p.name))
            if old_p is None:
                missing.append(f'policy "{p.name}" does not exist in tenant "{t.name}"')
            elif p.rules:
                gone = {r.id for r in p.rules}
                unknown = sorted(gone - {r.id for r in old_p.rules or ()})
                missing += [f'rule {i} does not exist in policy "{p.name}"' for i in unknown]
                delta.policies[(t.name, p.name)] = (old_p, replace(old_p, rules=tuple(
                    r for r in old_p.rules or () if r.id not in gone)))
            else:
                delta.policies[(t.name, p.name)] = (old_p, None)
        for n in t.networks:
            old_n = stored.networks.get(n.name)
            if old_n is None or old_n.tenant != t.name:
                missing.append(f'network "{n.name}" does not exist in tenant "{t.name}"')
            elif not n.endpoints:
                delta.networks[n.name] = (old_n, None)
                whole_networks.append(n.name)
            else:
                for e in n.endpoints:
                    old_e = stored.endpoints.get(e.id)
                    if old_e is None or old_e.network != n.name:
                        missing.append(f'endpoint "{e.id}" does not exist')
                    else:
                        delta.endpoints[e.id] = (old_e, None)
    for h in doc.hosts:
        old_h = stored.hosts.get(h.name)
        if old_h is None:
            missing.append(f'host "{h.name}" does not exist')
        else:
            delta.hosts[h.name] = (old_h, None)
    if missing:
        raise NotFoundError(missing)
    return delta, whole_networks, whole_tenants


def merge_desired(doc: Config, stored: Stored) -> Delta:
    """Make the store hold exactly ``doc`` (``stored`` must hold *every* stored object)."""
    delta = Delta()
    named_hosts = {h.name for h in doc.hosts}
    for h in doc.hosts:
        delta.hosts[h.name] = (stored.hosts.get(h.name), h)
    for name, old in stored.hosts.items():
        if name not in named_hosts:
            delta.hosts[name] = (old, None)
    named_t = {t.name for t in doc.tenants}
    named_n: set[str] = set()
    named_e: set[str] = set()
    for t in doc.tenants:
        new_t = tenant_with_defaults(strip(t))
        delta.tenants[t.name] = (stored.tenants.get(t.name), new_t)
        for g in t.endpoint_groups:
            delta.groups[(t.name, g.name)] = (stored.groups.get((t.name, g.name)),
                                              replace(g, policies=g.policies or ()))
        for p in t.policies:
            delta.policies[(t.name, p.name)] = (stored.policies.get((t.name, p.name)),
                                                replace(p, rules=p.rules or ()))
        for q in t.qos_profiles:
            delta.qos_profiles[(t.name, q.name)] = (stored.qos_profiles.get((t.name, q.name)), q)
        for r in t.routers:
            delta.routers[(t.name, r.name)] = (stored.routers.get((t.name, r.name)),
                                               replace(r, networks=r.networks or ()))
        for n in t.networks:
            named_n.add(n.name)
            delta.networks[n.name] = (stored.networks.get(n.name),
                                      network_with_defaults(strip(n), new_t))
            for e in n.endpoints:
                named_e.add(e.id)
                delta.endpoints[e.id] = (stored.endpoints.get(e.id), e)
    for name, old in stored.tenants.items():
        if name not in named_t:
            delta.tenants[name] = (old, None)
    for name, old in stored.networks.items():
        if name not in named_n:
            delta.networks[name] = (old, None)
    for eid, old in stored.endpoints.items():
        if eid not in named_e:
            delta.endpoints[eid] = (old, None)
    for part, have in ((delta.groups, stored.groups), (delta.policies, stored.policies),
                       (delta.qos_profiles, stored.qos_profiles),
                       (delta.routers, stored.routers)):
        for key, old in have.items():
            if key not in part:
                part[key] = (old, None)
    return delta


def merge_bindings(bindings: list[EndpointConfig], by_container: dict[str, list[EndpointConfig]]
                   ) -> Delta:
    """Set host (and AttachUUID) of every endpoint of each binding's container."""
    unknown = sorted({b.container for b in bindings} - set(by_container))
    if unknown:
        raise NotFoundError([f'container "{c}" has no endpoint' for c in unknown])
    delta = Delta()
    for b in bindings:
        for e in by_container[b.container]:
            delta.endpoints[e.id] = (e, replace(e, host=b.host,
                                                attach_uuid=b.attach_uuid or e.attach_uuid))
    return delta
