"""The Docker driver's only door to the intent write path (``intent.apply``).

Every write here is one atomic compare-and-swap of the whole change: a pure ``Config -> Config``
function handed to ``intent.apply.transform``, which re-reads and re-runs it when another writer got
there first.  When the write path moves (``allocator/``), only this module is re-pointed.

Docker fixes an endpoint's address once its IPAM driver handed it out, so every endpoint this
driver creates carries its address as a static ``IpAddress`` (and networks Docker uses get their
``SubnetCIDR`` pinned, which static addresses need).
"""

from __future__ import annotations

import json
from dataclasses import replace

from intent import apply, codec, keys
from intent.errors import ConflictError, NotFoundError
from intent.model import (
    Config,
    EndpointConfig,
    EndpointSpec,
    NetworkConfig,
    NetworkSpec,
    TenantConfig,
    endpoint_id,
)
from intent.store import Store


def network_spec(store: Store, name: str) -> NetworkSpec | None:
    """The resolved network ``name`` (tag, subnet, gateway), or None."""
    kv = store.get(keys.state_network(name))
    return codec.loads(NetworkSpec, kv.value) if kv else None


def network_config(store: Store, name: str) -> NetworkConfig | None:
    kv = store.get(keys.network(name))
    return codec.loads(NetworkConfig, kv.value) if kv else None


def tenant_config(store: Store, name: str) -> TenantConfig | None:
    kv = store.get(keys.tenant(name))
    return codec.loads(TenantConfig, kv.value) if kv else None


def endpoint_spec(store: Store, ep_id: str) -> EndpointSpec | None:
    kv = store.get(keys.state_endpoint(ep_id))
    return codec.loads(EndpointSpec, kv.value) if kv else None


def address_owner(store: Store, network: str, ip: str) -> str | None:
    """The endpoint id that holds ``ip`` in ``network``, if any."""
    kv = store.get(keys.alloc_ip(network, ip))
    if kv is None:
        return None
    try:
        owner = json.loads(kv.value)
    except ValueError:
        return "?"  # unreadable: treat the address as taken
    return owner.get("owner", "?") if isinstance(owner, dict) else "?"


def endpoints_on(store: Store, host: str) -> list[EndpointSpec]:
    """Every endpoint bound to ``host`` (a scan: for a driver's start-up only)."""
    out = []
    for kv in store.list(keys.STATE_ENDPOINTS):
        try:
            ep = codec.loads(EndpointSpec, kv.value)
        except (ValueError, TypeError):
            continue
        if ep.host == host:
            out.append(ep)
    return out


def networks_with_subnet(store: Store, subnet: str) -> list[NetworkSpec]:
    """Every network whose subnet is ``subnet`` (a scan: for network creation only)."""
    out = []
    for kv in store.list(keys.STATE_NETWORKS):
        try:
            net = codec.loads(NetworkSpec, kv.value)
        except (ValueError, TypeError):
            continue
        if net.subnet == subnet:
            out.append(net)
    return out


def has_endpoints(store: Store, network: str) -> bool:
    return bool(store.list(keys.alloc_ip_prefix(network)))


# --------------------------------------------------------------------------- pure changes


def _with_network(cfg: Config, net: NetworkConfig, endpoints: bool = False) -> Config:
    """``cfg`` with network ``net`` added or replaced (with ``net.endpoints`` if ``endpoints``,
    else keeping the stored ones)."""
    tenants = []
    found = False
    for t in cfg.tenants:
        nets = []
        for n in t.networks:
            if n.name == net.name:
                nets.append(net if endpoints else replace(net, endpoints=n.endpoints))
                found = True
            else:
                nets.append(n)
        if t.name == net.tenant and not found:
            nets.append(replace(net, endpoints=()))
            found = True
        tenants.append(replace(t, networks=tuple(nets)))
    if not found:
        raise NotFoundError(f'tenant "{net.tenant}" does not exist (create it with netdcli)')
    return replace(cfg, tenants=tuple(tenants))


def _find_network(cfg: Config, name: str) -> NetworkConfig:
    net = next((n for n in cfg.networks() if n.name == name), None)
    if net is None:
        raise NotFoundError(f'network "{name}" does not exist')
    return net


def _edit_endpoints(cfg: Config, network: str, drop: str | None,
                    add: EndpointConfig | None) -> Config:
    net = _find_network(cfg, network)
    eps = [e for e in net.endpoints if e.id != drop]
    if add is not None:
        if any(e.id == add.id for e in eps):
            raise ConflictError(f'endpoint "{add.id}" exists already')
        eps.append(add)
    return _with_network(cfg, replace(net, endpoints=tuple(eps)), endpoints=True)


# --------------------------------------------------------------------------- writes


def create_network(store: Store, net: NetworkConfig) -> NetworkSpec:
    """Create ``net`` (ConflictError if a network of that name exists); returns it resolved."""
    def change(cfg: Config) -> Config:
        if any(n.name == net.name for n in cfg.networks()):
            raise ConflictError(f'network "{net.name}" exists already')
        return _with_network(cfg, net)

    apply.transform(store, change)
    return _require_network(store, net.name)


def update_network(store: Store, name: str, **changes) -> NetworkSpec:
    """Change attributes of network ``name`` (``subnet_cidr``, ``pkt_tag`` …), keep the rest."""
    apply.transform(store, lambda cfg: _with_network(cfg, replace(_find_network(cfg, name),
                                                                  **changes)))
    return _require_network(store, name)


def pin_subnet(store: Store, name: str) -> NetworkSpec:
    """Make the network's resolved subnet its ``SubnetCIDR`` (static addresses need one)."""
    cfg, spec = network_config(store, name), _require_network(store, name)
    if cfg is not None and cfg.subnet_cidr:
        return spec

    def change(c: Config) -> Config:
        net = _find_network(c, name)
        return c if net.subnet_cidr else _with_network(c, replace(net, subnet_cidr=spec.subnet))

    apply.transform(store, change)
    return _require_network(store, name)


def delete_network(store: Store, name: str) -> None:
    """Delete network ``name`` (no-op when it is gone already)."""
    try:
        apply.delete_object(store, "network", name)
    except NotFoundError:
        pass


def _require_network(store: Store, name: str) -> NetworkSpec:
    spec = network_spec(store, name)
    if spec is None:
        raise NotFoundError(f'network "{name}" does not exist')
    return spec


def _guard_free(store: Store, network: str, ip: str | None, mine: str | None) -> None:
    """Refuse a static ``ip`` someone else holds (the allocator would move the holder)."""
    if ip is None:
        return
    owner = address_owner(store, network, ip)
    if owner is not None and owner != mine:
        raise ConflictError(f"address {ip} is in use in network {network} (endpoint {owner})")


def add_endpoint(store: Store, network: str, container: str, host: str,
                 ip: str | None = None) -> EndpointSpec:
    """Add endpoint ``<network>-<container>`` bound to ``host``; ``ip`` static, else allocated."""
    ep = EndpointConfig(network=network, container=container, host=host, ip_address=ip)

    def change(cfg: Config) -> Config:
        _guard_free(store, network, ip, None)  # read after the snapshot: see module docstring
        return _edit_endpoints(cfg, network, None, ep)

    apply.transform(store, change)
    return _require_endpoint(store, ep.id)


def rename_endpoint(store: Store, old_id: str, container: str, host: str) -> EndpointSpec:
    """Replace endpoint ``old_id`` by ``<network>-<container>`` with the same (static) address."""
    old = _require_endpoint(store, old_id)
    new = EndpointConfig(network=old.network, container=container, host=host,
                         ip_address=old.ip)
    if new.id == old_id:
        return old

    def change(cfg: Config) -> Config:
        _guard_free(store, old.network, old.ip, old_id)
        return _edit_endpoints(cfg, old.network, old_id, new)

    apply.transform(store, change)
    return _require_endpoint(store, new.id)


def delete_endpoint(store: Store, ep_id: str) -> None:
    """Delete endpoint ``ep_id`` (no-op when it is gone already)."""
    try:
        apply.delete_object(store, "endpoint", ep_id)
    except NotFoundError:
        pass


def _require_endpoint(store: Store, ep_id: str) -> EndpointSpec:
    spec = endpoint_spec(store, ep_id)
    if spec is None:
        raise NotFoundError(f'endpoint "{ep_id}" does not exist')
    return spec


__all__ = ["add_endpoint", "address_owner", "create_network", "delete_endpoint",
           "delete_network", "endpoint_id", "endpoint_spec", "endpoints_on", "has_endpoints",
           "network_config", "network_spec", "networks_with_subnet", "pin_subnet",
           "rename_endpoint", "tenant_config", "update_network"]
