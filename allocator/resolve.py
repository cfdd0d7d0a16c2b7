"""Pure planning: a whole ``Config`` plus the previous resolved state → every stored key.

Previous allocations are kept where still valid (so re-applying a file changes nothing and an
endpoint keeps its IP while it exists); explicit values are reserved first so automatic
allocation never hands them out; the rest is allocated lowest-first.  The caller writes the result
with compare-and-swap conditions (``intent.apply``), so two writers can never both take a value.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from netaddr import IPNetwork

from allocator.pools import (
    default_gateway,
    mac_for,
    next_free_id,
    next_free_ip,
    next_free_subnet,
)
from intent import codec, keys
from intent.model import VXLAN, Config, EndpointSpec, NetworkConfig, NetworkSpec, TenantConfig


@dataclass(frozen=True)
class Plan:
    """Every key under config/, alloc/ and state/ the intent should have, with its value."""

    values: dict[str, str]
    networks: dict[str, NetworkSpec]
    endpoints: dict[str, EndpointSpec]


def _owner(name: str) -> str:
    return codec.dumps({"owner": name})


def _keep_tag(prev: NetworkSpec | None, net: NetworkConfig, tenant: TenantConfig) -> int | None:
    if prev is None or prev.net_type != net.pkt_tag_type:
        return None
    ranges = tenant.vxlans if net.pkt_tag_type == VXLAN else tenant.vlans
    return prev.tag if any(lo <= prev.tag <= hi for lo, hi in ranges) else None


def _keep_subnet(prev: NetworkSpec | None, tenant: TenantConfig) -> str | None:
    if prev is None or not tenant.subnet_pool or not tenant.alloc_subnet_len:
        return None
    subnet = IPNetwork(prev.subnet)
    if subnet.prefixlen != tenant.alloc_subnet_len or subnet not in IPNetwork(tenant.subnet_pool):
        return None
    return prev.subnet


def plan_networks(config: Config, previous: dict[str, NetworkSpec]) -> dict[str, NetworkSpec]:
    """Tag, subnet and gateway for every network of ``config``."""
    tenants = {t.name: t for t in config.tenants}
    nets = sorted(config.networks(), key=lambda n: n.name)
    tags: dict[tuple[str, int], str] = {}
    subnets: dict[str, list[str]] = {t: [] for t in tenants}
    chosen_tag: dict[str, int] = {}
    chosen_subnet: dict[str, str] = {}
    # 1. explicit values, 2. previous allocations still valid, 3. new allocations
    for net in nets:
        if net.pkt_tag is not None:
            chosen_tag[net.name] = net.pkt_tag
            tags[(net.pkt_tag_type, net.pkt_tag)] = net.name
        if net.subnet_cidr:
            chosen_subnet[net.name] = str(IPNetwork(net.subnet_cidr).cidr)
            subnets[net.tenant].append(chosen_subnet[net.name])
    for net in nets:
        tenant, prev = tenants[net.tenant], previous.get(net.name)
        if net.name not in chosen_tag:
            tag = _keep_tag(prev, net, tenant)
            if tag is not None and (net.pkt_tag_type, tag) not in tags:
                chosen_tag[net.name] = tag
                tags[(net.pkt_tag_type, tag)] = net.name
        if net.name not in chosen_subnet:
            subnet = _keep_subnet(prev, tenant)
            if subnet and not any(IPNetwork(subnet).cidr in IPNetwork(s) or
                                  IPNetwork(s) in IPNetwork(subnet)
                                  for s in subnets[net.tenant]):
                chosen_subnet[net.name] = subnet
                subnets[net.tenant].append(subnet)
    for net in nets:
        tenant = tenants[net.tenant]
        if net.name not in chosen_tag:
            ranges = tenant.vxlans if net.pkt_tag_type == VXLAN else tenant.vlans
            used = {tag for (kind, tag) in tags if kind == net.pkt_tag_type}
            pool = f'tenant "{tenant.name}" {"Vxlans" if net.pkt_tag_type == VXLAN else "Vlans"}'
            tag = next_free_id(ranges, used, pool)
            chosen_tag[net.name] = tag
            tags[(net.pkt_tag_type, tag)] = net.name
        if net.name not in chosen_subnet:
            pool = f'tenant "{tenant.name}" SubnetPool {tenant.subnet_pool}'
            subnet = next_free_subnet(tenant.subnet_pool or "", tenant.alloc_subnet_len or 0,
                                      subnets[net.tenant], pool)
            chosen_subnet[net.name] = subnet
            subnets[net.tenant].append(subnet)
    return {
        n.name: NetworkSpec(name=n.name, tenant=n.tenant, net_type=n.pkt_tag_type,
                            tag=chosen_tag[n.name], subnet=chosen_subnet[n.name],
                            gateway=n.default_gw or default_gateway(chosen_subnet[n.name]))
        for n in nets
    }


def plan_endpoints(config: Config, networks: dict[str, NetworkSpec],
                   previous: dict[str, EndpointSpec]) -> dict[str, EndpointSpec]:
    """IP and MAC for every endpoint of ``config``."""
    result: dict[str, EndpointSpec] = {}
    for net in config.networks():
        spec = networks[net.name]
        subnet = ipaddress.IPv4Network(spec.subnet)
        first, last = int(subnet.network_address), int(subnet.broadcast_address)
        taken: set[str] = {e.ip_address for e in net.endpoints if e.ip_address}
        chosen: dict[str, str] = {e.id: e.ip_address for e in net.endpoints if e.ip_address}
        for ep in sorted(net.endpoints, key=lambda e: e.id):
            prev = previous.get(ep.id)
            if ep.id in chosen or prev is None or prev.network != net.name:
                continue
            ip = int(ipaddress.IPv4Address(prev.ip))
            if (first < ip < last and prev.ip != spec.gateway and prev.ip not in taken):
                chosen[ep.id] = prev.ip
                taken.add(prev.ip)
        for ep in sorted(net.endpoints, key=lambda e: e.id):
            if ep.id not in chosen:
                pool = f'network "{net.name}" subnet {spec.subnet}'
                chosen[ep.id] = next_free_ip(spec.subnet, spec.gateway, taken, pool)
                taken.add(chosen[ep.id])
        for ep in net.endpoints:
            ip = chosen[ep.id]
            result[ep.id] = EndpointSpec(id=ep.id, network=net.name, container=ep.container,
                                         host=ep.host, ip=ip, mac=mac_for(ip),
                                         attach_uuid=ep.attach_uuid)
    return result


def plan(config: Config, prev_networks: dict[str, NetworkSpec],
         prev_endpoints: dict[str, EndpointSpec]) -> Plan:
    """Every config/, alloc/ and state/ key for ``config``; raises PoolExhausted."""
    networks = plan_networks(config, prev_networks)
    endpoints = plan_endpoints(config, networks, prev_endpoints)
    values: dict[str, str] = {}
    for host in config.hosts:
        values[keys.host_config(host.name)] = codec.dumps(host)
    for tenant in config.tenants:
        values[keys.tenant(tenant.name)] = codec.dumps(tenant)
        for net in tenant.networks:
            values[keys.network(net.name)] = codec.dumps(net)
            spec = networks[net.name]
            tag_key = keys.alloc_vni(spec.tag) if spec.net_type == VXLAN else keys.alloc_vlan(
                spec.tag)
            values[tag_key] = _owner(net.name)
            values[keys.alloc_subnet(tenant.name, spec.subnet)] = _owner(net.name)
            values[keys.state_network(net.name)] = codec.dumps(spec)
            for ep in net.endpoints:
                values[keys.endpoint(ep.id)] = codec.dumps(ep)
                ep_spec = endpoints[ep.id]
                values[keys.alloc_ip(net.name, ep_spec.ip)] = _owner(ep.id)
                values[keys.state_endpoint(ep.id)] = codec.dumps(ep_spec)
    return Plan(values=values, networks=networks, endpoints=endpoints)
