"""Write intent to the store: merge, validate, allocate, then one compare-and-swap transaction.

The whole change (config objects, allocations, resolved state) goes into a single etcd
transaction whose conditions are: every key this writer creates does not exist yet, and every key
it changes or deletes still has the revision it read.  A writer that loses a race re-reads and
re-plans; nothing is ever half-written.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field, replace

from allocator.resolve import plan
from intent import codec, keys
from intent.errors import ConflictError, NotFoundError, ValidationError
from intent.model import (
    Config,
    EndpointConfig,
    EndpointSpec,
    HostConfig,
    HostSpec,
    NetworkConfig,
    NetworkSpec,
    ResolvedIntent,
    TenantConfig,
)
from intent.store import Compare, Delete, Put, Snapshot, Store
from intent.validate import validate_config

MANAGED = (keys.CONFIG, keys.ALLOC, keys.STATE)
MAX_ATTEMPTS = 200


@dataclass(frozen=True)
class ApplyResult:
    """What a write did: ``changed`` is False when the store already held this intent."""

    changed: bool
    revision: int
    summary: list[str] = field(default_factory=list)


# --------------------------------------------------------------------------- reading


def config_from_snapshot(snap: Snapshot) -> Config:
    """Rebuild the stored ``Config`` (objects sorted by name)."""
    def objects(prefix: str, cls: type) -> list:
        return [codec.loads(cls, kv.value) for k, kv in sorted(snap.items.items())
                if k.startswith(prefix)]

    endpoints = objects(keys.CONFIG_ENDPOINTS, EndpointConfig)
    networks = [replace(n, endpoints=tuple(e for e in endpoints if e.network == n.name))
                for n in objects(keys.CONFIG_NETWORKS, NetworkConfig)]
    tenants = [replace(t, networks=tuple(n for n in networks if n.tenant == t.name))
               for t in objects(keys.CONFIG_TENANTS, TenantConfig)]
    return Config(hosts=tuple(objects(keys.CONFIG_HOSTS, HostConfig)), tenants=tuple(tenants))


def _specs(snap: Snapshot, prefix: str, cls: type) -> dict:
    return {keys.last_segment(k): codec.loads(cls, kv.value)
            for k, kv in snap.items.items() if k.startswith(prefix)}


def read_config(store: Store) -> Config:
    """The stored intent as a ``Config``."""
    return config_from_snapshot(store.snapshot(keys.CONFIG))


def resolved_from_snapshot(snap: Snapshot) -> ResolvedIntent:
    """The data plane's view from a snapshot of the whole ``/netplugin/`` tree."""
    networks = _specs(snap, keys.STATE_NETWORKS, NetworkSpec)
    endpoints = _specs(snap, keys.STATE_ENDPOINTS, EndpointSpec)
    hosts: dict[str, HostSpec] = {}
    for host in _specs(snap, keys.CONFIG_HOSTS, HostConfig).values():
        hosts[host.name] = HostSpec(name=host.name, vtep_ip=host.vtep_ip, uplink=host.intf)
    for key, kv in snap.items.items():
        if key.startswith(keys.OPER_HOSTS):
            reg = codec.loads(HostSpec, kv.value)
            known = hosts.get(reg.name, HostSpec(name=reg.name))
            hosts[reg.name] = HostSpec(name=reg.name, vtep_ip=reg.vtep_ip or known.vtep_ip,
                                       uplink=reg.uplink or known.uplink, dpid=reg.dpid)
    tenants = sorted({n.tenant for n in networks.values()})
    return ResolvedIntent(networks=tuple(sorted(networks.values(), key=lambda n: n.name)),
                          endpoints=tuple(sorted(endpoints.values(), key=lambda e: e.id)),
                          hosts=tuple(sorted(hosts.values(), key=lambda h: h.name)),
                          revision=snap.revision, tenants=tuple(tenants))


def read_resolved(store: Store) -> ResolvedIntent:
    """Networks, endpoints and hosts as the data plane needs them, at one store revision."""
    return resolved_from_snapshot(store.snapshot(keys.ROOT))


# --------------------------------------------------------------------------- merging


def _by_name(items, key=lambda o: o.name) -> dict:
    return {key(o): o for o in items}


def merge_add(current: Config, incoming: Config) -> Config:
    """``current`` plus ``incoming``; objects named in both take ``incoming``'s attributes."""
    hosts = _by_name(current.hosts) | _by_name(incoming.hosts)
    tenants = _by_name(current.tenants)
    for t in incoming.tenants:
        old = tenants.get(t.name)
        nets = _by_name(old.networks) if old else {}
        for n in t.networks:
            prev = nets.get(n.name)
            eps = _by_name(prev.endpoints, key=lambda e: e.id) if prev else {}
            eps |= _by_name(n.endpoints, key=lambda e: e.id)
            nets[n.name] = replace(n, endpoints=tuple(eps.values()))
        tenants[t.name] = replace(t, networks=tuple(nets.values()))
    return Config(hosts=tuple(hosts.values()), tenants=tuple(tenants.values()))


def merge_delete(current: Config, incoming: Config) -> Config:
    """``current`` without what ``incoming`` names, at the deepest level it names.

    A network listed with endpoints loses those endpoints; listed without, it is deleted whole.
    A tenant listed with networks recurses; listed without, it is deleted with its networks.
    """
    missing: list[str] = []
    tenants = _by_name(current.tenants)
    for t in incoming.tenants:
        if t.name not in tenants:
            missing.append(f'tenant "{t.name}" does not exist')
            continue
        if not t.networks:
            del tenants[t.name]
            continue
        nets = _by_name(tenants[t.name].networks)
        for n in t.networks:
            if n.name not in nets:
                missing.append(f'network "{n.name}" does not exist in tenant "{t.name}"')
            elif not n.endpoints:
                del nets[n.name]
            else:
                eps = _by_name(nets[n.name].endpoints, key=lambda e: e.id)
                for e in n.endpoints:
                    if eps.pop(e.id, None) is None:
                        missing.append(f'endpoint "{e.id}" does not exist')
                nets[n.name] = replace(nets[n.name], endpoints=tuple(eps.values()))
        tenants[t.name] = replace(tenants[t.name], networks=tuple(nets.values()))
    hosts = _by_name(current.hosts)
    for h in incoming.hosts:
        if hosts.pop(h.name, None) is None:
            missing.append(f'host "{h.name}" does not exist')
    if missing:
        raise NotFoundError(missing)
    return Config(hosts=tuple(hosts.values()), tenants=tuple(tenants.values()))


def bind(current: Config, bindings: list[EndpointConfig]) -> Config:
    """Set host (and AttachUUID) of every endpoint of each binding's container."""
    by_container = {b.container: b for b in bindings}
    unknown = set(by_container) - {e.container for e in current.endpoints()}
    if unknown:
        raise NotFoundError([f'container "{c}" has no endpoint' for c in sorted(unknown)])

    def rebind(e: EndpointConfig) -> EndpointConfig:
        b = by_container.get(e.container)
        if b is None:
            return e
        return replace(e, host=b.host, attach_uuid=b.attach_uuid or e.attach_uuid)

    return Config(hosts=current.hosts, tenants=tuple(
        replace(t, networks=tuple(replace(n, endpoints=tuple(rebind(e) for e in n.endpoints))
                                  for n in t.networks))
        for t in current.tenants))


def remove(current: Config, kind: str, name: str) -> Config:
    """``current`` without one tenant, network or endpoint (by id)."""
    if kind == "tenant":
        incoming = Config(tenants=(TenantConfig(name=name),))
    elif kind == "network":
        net = next((n for n in current.networks() if n.name == name), None)
        if net is None:
            raise NotFoundError(f'network "{name}" does not exist')
        incoming = Config(tenants=(TenantConfig(name=net.tenant, networks=(
            NetworkConfig(name=name, tenant=net.tenant, pkt_tag_type=net.pkt_tag_type),)),))
    elif kind == "endpoint":
        ep = next((e for e in current.endpoints() if e.id == name), None)
        if ep is None:
            raise NotFoundError(f'endpoint "{name}" does not exist')
        net = next(n for n in current.networks() if n.name == ep.network)
        incoming = Config(tenants=(TenantConfig(name=net.tenant, networks=(
            replace(net, endpoints=(ep,)),)),))
    elif kind == "host":
        incoming = Config(hosts=(HostConfig(name=name),))
    else:
        raise ValidationError(f'unknown construct "{kind}" (tenant, network, endpoint or host)')
    return merge_delete(current, incoming)


# --------------------------------------------------------------------------- writing


def _summary(snap: Snapshot, values: dict[str, str]) -> list[str]:
    lines = []
    for prefix, what in ((keys.CONFIG_TENANTS, "tenant"), (keys.CONFIG_NETWORKS, "network"),
                         (keys.CONFIG_ENDPOINTS, "endpoint"), (keys.CONFIG_HOSTS, "host")):
        old = {k for k in snap.items if k.startswith(prefix)}
        new = {k for k in values if k.startswith(prefix)}
        for k in sorted(new - old):
            lines.append(f"created {what} {keys.last_segment(k)}")
        for k in sorted(old & new):
            if snap.items[k].value != values[k]:
                lines.append(f"updated {what} {keys.last_segment(k)}")
        for k in sorted(old - new):
            lines.append(f"deleted {what} {keys.last_segment(k)}")
    bound = [k for k in values if k.startswith(keys.STATE_ENDPOINTS) and k in snap.items
             and snap.items[k].value != values[k] and f"updated endpoint {keys.last_segment(k)}"
             not in lines]
    lines += [f"re-resolved endpoint {keys.last_segment(k)}" for k in sorted(bound)]
    return lines


def transform(store: Store, change, sleep=time.sleep) -> ApplyResult:
    """Read, apply ``change(current_config) -> new_config``, plan and write atomically; retry
    when another writer got there first."""
    for attempt in range(MAX_ATTEMPTS):
        snap = store.snapshot(keys.ROOT)
        new_config = change(config_from_snapshot(snap))
        problems = validate_config(new_config, with_paths=False)
        if problems:
            raise ValidationError(problems)
        result = plan(new_config, _specs(snap, keys.STATE_NETWORKS, NetworkSpec),
                      _specs(snap, keys.STATE_ENDPOINTS, EndpointSpec))
        current = {k: kv for k, kv in snap.items.items()
                   if k.startswith(MANAGED) and k != keys.CONFIG_REV}
        compares: list[Compare] = []
        ops: list[Put | Delete] = []
        for key, value in sorted(result.values.items()):
            old = current.get(key)
            if old is None:
                compares.append(Compare(key, "create", "=", 0))
                ops.append(Put(key, value))
            elif old.value != value:
                compares.append(Compare(key, "mod", "=", old.mod_revision))
                ops.append(Put(key, value))
        for key in sorted(set(current) - set(result.values)):
            compares.append(Compare(key, "mod", "=", current[key].mod_revision))
            ops.append(Delete(key))
        if not ops:
            return ApplyResult(changed=False, revision=snap.revision,
                               summary=["no change: the store already holds this intent"])
        ops.append(Put(keys.CONFIG_REV, codec.dumps({"attempt": attempt})))
        txn = store.txn(compares, ops)
        if txn.succeeded:
            return ApplyResult(changed=True, revision=txn.revision,
                               summary=_summary(snap, result.values))
        sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
    raise ConflictError(f"gave up after {MAX_ATTEMPTS} attempts: other writers keep changing "
                        f"the same objects")


def apply_config(store: Store, config: Config, mode: str = "desired") -> ApplyResult:
    """Make the store hold ``config`` (``desired``), add it (``add``) or remove it (``delete``)."""
    if mode == "desired":
        return transform(store, lambda current: config)
    if mode == "add":
        return transform(store, lambda current: merge_add(current, config))
    if mode == "delete":
        return transform(store, lambda current: merge_delete(current, config))
    raise ValueError(f"unknown mode {mode!r}")


def apply_bindings(store: Store, bindings: list[EndpointConfig]) -> ApplyResult:
    """Bind endpoints to hosts late (``-host-bindings-cfg``)."""
    return transform(store, lambda current: bind(current, bindings))


def delete_object(store: Store, kind: str, name: str) -> ApplyResult:
    """Delete one tenant, network, endpoint or host by name."""
    return transform(store, lambda current: remove(current, kind, name))
