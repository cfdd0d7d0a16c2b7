"""The Docker driver's only door to the intent write path (``allocator.write``).

Each write names exactly the objects it changes and is one compare-and-swap (the write path
re-reads and re-plans when another writer got there first).

Docker fixes an endpoint's address once its IPAM driver handed it out, so every endpoint this
driver creates carries its address as a static ``IpAddress`` (and networks Docker uses get their
``SubnetCIDR`` pinned, which static addresses need).  Renaming an endpoint (Docker endpoint id ->
container name) keeps its address: the old endpoint's deletion and the new one's creation are one
write (:func:`allocator.write.replace_endpoint`).
"""

from __future__ import annotations

import json
from dataclasses import replace

from allocator.write import apply_config, delete_object, replace_endpoint
from intent import codec, keys
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
    return bool(store.list(keys.alloc_ip_prefix(network)) or
                store.list(keys.alloc_delegated_prefix(network)))


# --------------------------------------------------------------------------- writes


def _doc(tenant: str, net: NetworkConfig) -> Config:
    return Config(tenants=(TenantConfig(name=tenant, networks=(net,)),))


def _require_tenant(store: Store, name: str) -> None:
    if tenant_config(store, name) is None:
        raise NotFoundError(f'tenant "{name}" does not exist (create it with netdcli)')


def create_network(store: Store, net: NetworkConfig) -> NetworkSpec:
    """Create ``net`` (ConflictError if a network of that name exists); returns it resolved."""
    _require_tenant(store, net.tenant)
    apply_config(store, _doc(net.tenant, net), "add",
                 create_only=frozenset({("network", net.name)}), paths=False)
    return _require_network(store, net.name)


def update_network(store: Store, name: str, **changes) -> NetworkSpec:
    """Change attributes of network ``name`` (``subnet_cidr``, ``pkt_tag`` …), keep the rest."""
    cfg = network_config(store, name)
    if cfg is None:
        raise NotFoundError(f'network "{name}" does not exist')
    partial = replace(NetworkConfig(name=name, tenant=cfg.tenant), **changes)
    apply_config(store, _doc(cfg.tenant, partial), "add", paths=False)
    return _require_network(store, name)


def pin_subnet(store: Store, name: str) -> NetworkSpec:
    """Make the network's resolved subnet its ``SubnetCIDR`` (static addresses need one)."""
    cfg, spec = network_config(store, name), _require_network(store, name)
    if cfg is not None and cfg.subnet_cidr:
        return spec
    return update_network(store, name, subnet_cidr=spec.subnet)


def delete_network(store: Store, name: str) -> None:
    """Delete network ``name`` (no-op when it is gone already)."""
    try:
        delete_object(store, "network", name)
    except NotFoundError:
        pass


def _require_network(store: Store, name: str) -> NetworkSpec:
    spec = network_spec(store, name)
    if spec is None:
        raise NotFoundError(f'network "{name}" does not exist')
    return spec


def _guard_free(store: Store, network: str, ip: str | None, mine: str | None) -> None:
    """A clear message for a static ``ip`` someone else holds (the write path refuses it
    too, atomically, naming the new endpoint)."""
    if ip is None:
        return
    owner = address_owner(store, network, ip)
    if owner is not None and owner != mine:
        raise ConflictError(f"address {ip} is in use in network {network} (endpoint {owner})")


def _tenant_of(store: Store, network: str) -> str:
    cfg = network_config(store, network)
    if cfg is None:
        raise NotFoundError(f'network "{network}" does not exist')
    return cfg.tenant


def add_endpoint(store: Store, network: str, container: str, host: str,
                 ip: str | None = None) -> EndpointSpec:
    """Add endpoint ``<network>-<container>`` bound to ``host``; ``ip`` static, else allocated."""
    ep = EndpointConfig(network=network, container=container, host=host, ip_address=ip)
    _guard_free(store, network, ip, None)
    tenant = _tenant_of(store, network)
    apply_config(store, _doc(tenant, NetworkConfig(name=network, tenant=tenant,
                                                   endpoints=(ep,))),
                 "add", create_only=frozenset({("endpoint", ep.id)}), paths=False)
    return _require_endpoint(store, ep.id)


def rename_endpoint(store: Store, old_id: str, container: str, host: str) -> EndpointSpec:
    """Replace endpoint ``old_id`` by ``<network>-<container>`` with the same (static) address."""
    old = _require_endpoint(store, old_id)
    new = EndpointConfig(network=old.network, container=container, host=host,
                         ip_address=old.ip)
    if new.id == old_id:
        return old
    kv = store.get(keys.endpoint(old_id))
    if kv is None:
        raise NotFoundError(f'endpoint "{old_id}" does not exist')
    replace_endpoint(store, codec.loads(EndpointConfig, kv.value), new)
    return _require_endpoint(store, new.id)


def delete_endpoint(store: Store, ep_id: str) -> None:
    """Delete endpoint ``ep_id`` (no-op when it is gone already)."""
    try:
        delete_object(store, "endpoint", ep_id)
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
