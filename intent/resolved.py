"""Stored intent back into model objects: the config view and the data plane's resolved view."""

from __future__ import annotations

from dataclasses import replace

from intent import codec, keys
from intent.consistent import read_consistent
from intent.model import (
    Config,
    EndpointConfig,
    EndpointGroupSpec,
    EndpointSpec,
    HostConfig,
    HostSpec,
    Membership,
    NetworkConfig,
    NetworkSpec,
    PolicyConfig,
    QosProfileConfig,
    ResolvedIntent,
    RouterSpec,
    TenantConfig,
)
from intent.store import Snapshot, Store


def config_from_snapshot(snap: Snapshot) -> Config:
    """Rebuild the stored ``Config`` (objects sorted by name)."""
    def objects(prefix: str, cls: type) -> list:
        return [codec.loads(cls, kv.value) for k, kv in sorted(snap.items.items())
                if k.startswith(prefix)]

    endpoints: dict[str, list[EndpointConfig]] = {}
    for e in objects(keys.CONFIG_ENDPOINTS, EndpointConfig):
        endpoints.setdefault(e.network, []).append(e)
    networks: dict[str, list[NetworkConfig]] = {}
    for n in objects(keys.CONFIG_NETWORKS, NetworkConfig):
        networks.setdefault(n.tenant, []).append(
            replace(n, endpoints=tuple(endpoints.get(n.name, ()))))
    tenants = [replace(t, networks=tuple(networks.get(t.name, ())))
               for t in objects(keys.CONFIG_TENANTS, TenantConfig)]
    return Config(hosts=tuple(objects(keys.CONFIG_HOSTS, HostConfig)), tenants=tuple(tenants))


def specs(snap: Snapshot, prefix: str, cls: type) -> dict:
    """``name -> object`` for every key under ``prefix``."""
    return {keys.last_segment(k): codec.loads(cls, kv.value)
            for k, kv in snap.items.items() if k.startswith(prefix)}


def host_spec(config: HostConfig | None, registration: HostSpec | None) -> HostSpec:
    """A host as the data plane sees it: the agent's registration over the config file's."""
    name = (registration or config).name  # type: ignore[union-attr]
    cfg = config or HostConfig(name=name)
    if registration is None:
        return HostSpec(name=name, vtep_ip=cfg.vtep_ip, uplink=cfg.intf)
    return HostSpec(name=name, vtep_ip=registration.vtep_ip or cfg.vtep_ip,
                    uplink=registration.uplink or cfg.intf, dpid=registration.dpid)


def resolved_from_snapshot(snap: Snapshot) -> ResolvedIntent:
    """The data plane's view from a snapshot of the whole ``/netplugin/`` tree."""
    networks = specs(snap, keys.STATE_NETWORKS, NetworkSpec)
    endpoints = specs(snap, keys.STATE_ENDPOINTS, EndpointSpec)
    configs = specs(snap, keys.CONFIG_HOSTS, HostConfig)
    regs = specs(snap, keys.OPER_HOSTS, HostSpec)
    hosts = {name: host_spec(configs.get(name), regs.get(name))
             for name in set(configs) | set(regs)}
    tenants = sorted({n.tenant for n in networks.values()})
    groups = [codec.loads(EndpointGroupSpec, kv.value) for k, kv in sorted(snap.items.items())
              if k.startswith(keys.STATE_GROUPS)]
    policies = [codec.loads(PolicyConfig, kv.value) for k, kv in sorted(snap.items.items())
                if k.startswith(keys.CONFIG_POLICIES)]
    routers = [codec.loads(RouterSpec, kv.value) for k, kv in sorted(snap.items.items())
               if k.startswith(keys.STATE_ROUTERS)]
    return ResolvedIntent(networks=tuple(sorted(networks.values(), key=lambda n: n.name)),
                          endpoints=tuple(sorted((e for e in endpoints.values() if e.ip),
                                                 key=lambda e: e.id)),
                          hosts=tuple(sorted(hosts.values(), key=lambda h: h.name)),
                          revision=snap.revision, tenants=tuple(tenants),
                          groups=tuple(groups), policies=tuple(policies),
                          routers=tuple(routers),
                          qos_profiles=tuple(codec.loads(QosProfileConfig, kv.value)
                                             for k, kv in sorted(snap.items.items())
                                             if k.startswith(keys.CONFIG_QOS)),
                          learned=tuple(Membership(*keys.mcast_member_parts(k))
                                        for k in sorted(snap.items)
                                        if k.startswith(keys.OPER_MCAST)))


def read_config(store: Store) -> Config:
    """The stored intent as a ``Config``."""
    return config_from_snapshot(read_consistent(store, prefixes=(keys.CONFIG,)))


def read_resolved(store: Store) -> ResolvedIntent:
    """Networks, endpoints and hosts as the data plane needs them, at one store revision."""
    return resolved_from_snapshot(read_consistent(store, prefixes=(keys.ROOT,)))
