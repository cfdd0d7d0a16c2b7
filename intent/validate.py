"""Validation of intent objects: every problem is returned, never only the first.

Per-object checks (:func:`check_tenant`, :func:`check_network`, :func:`check_static_ip` …) take
the label to name the object by — a JSON path (``Tenants[0].Networks[1]``) or an object name
(``network "orange"``) — and report through ``add``.  :func:`validate_config` composes them over
a whole document.  A *partial* document (``complete=False``: an ``-add-cfg`` file naming only a
tenant, a network and an endpoint) leaves fields unset that the stored objects will supply; the
checks that need them are skipped there and run again on the merged objects by the write path.
"""

from __future__ import annotations

from collections.abc import Callable

from netaddr import AddrFormatError, IPAddress, IPNetwork

from intent.ipam_doc import check_reserved, reserved_problem
from intent.model import VXLAN, Config, EndpointConfig, HostConfig, NetworkConfig, TenantConfig
from intent.names import name_problem, runtime_id_problem

MAX_ALLOC_SUBNET_LEN = 30
Add = Callable[[str], None]
Ranges = tuple[tuple[int, int], ...]


def ipv4_net(text: str) -> IPNetwork | None:
    """``text`` as an IPv4 network, or None when it is not ``a.b.c.d/n``."""
    try:
        net = IPNetwork(text)
    except (AddrFormatError, ValueError, TypeError):
        return None
    return net if net.version == 4 and "/" in text else None


def ipv4(text: str) -> IPAddress | None:
    """``text`` as an IPv4 address, or None."""
    try:
        ip = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None
    return ip if ip.version == 4 and "/" not in text else None


def in_ranges(value: int, ranges: Ranges) -> bool:
    return any(lo <= value <= hi for lo, hi in ranges)


def fmt_ranges(ranges: Ranges) -> str:
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges) or "none"


def _name(value: str, where: str, add: Add) -> None:
    if value:
        why = name_problem(value)
        if why:
            add(f'{where} "{value}": {why}')


# --------------------------------------------------------------------------- per object


def check_host(host: HostConfig, label: str, add: Add) -> None:
    """Name and VTEP address of a host."""
    _name(host.name, f"{label}.Name", add)
    if host.vtep_ip and ipv4(host.vtep_ip) is None:
        add(f'{label}.VtepIp "{host.vtep_ip}": not an IPv4 address')


def check_tenant(tenant: TenantConfig, label: str, add: Add) -> IPNetwork | None:
    """Name, subnet pool and allocation length; returns the pool when valid."""
    _name(tenant.name, f"{label}.Name", add)
    pool = None
    if tenant.subnet_pool:
        pool = ipv4_net(tenant.subnet_pool)
        if pool is None:
            add(f'{label}.SubnetPool "{tenant.subnet_pool}": not an IPv4 CIDR like '
                f'"10.1.0.0/16"')
        elif pool.network != pool.ip:
            add(f'{label}.SubnetPool "{tenant.subnet_pool}": host bits set (did you mean '
                f'"{pool.cidr}"?)')
    if tenant.alloc_subnet_len is not None:
        length = tenant.alloc_subnet_len
        if pool is not None and length < pool.prefixlen:
            add(f"{label}.AllocSubnetLen {length}: shorter than the SubnetPool's "
                f"/{pool.prefixlen}")
        elif length > MAX_ALLOC_SUBNET_LEN:
            add(f"{label}.AllocSubnetLen {length}: longer than /{MAX_ALLOC_SUBNET_LEN} "
                f"(no room for endpoints)")
        elif length < 1:
            add(f"{label}.AllocSubnetLen {length}: must be between the pool's prefix and "
                f"{MAX_ALLOC_SUBNET_LEN}")
    return pool


def check_tag(tenant: TenantConfig, net: NetworkConfig, label: str, add: Add,
              complete: bool = True) -> None:
    """The network's ``PktTag`` against its tenant's ranges (or that one can be allocated)."""
    if net.pkt_tag_type is None:
        return  # type unknown until merged
    ranges = tenant.vxlans if net.pkt_tag_type == VXLAN else tenant.vlans
    field = "Vxlans" if net.pkt_tag_type == VXLAN else "Vlans"
    if net.pkt_tag is None:
        if complete and not ranges:
            add(f'{label}: {net.pkt_tag_type} network "{net.name}" has no PktTag and its '
                f'tenant "{tenant.name}" has no {field} range to allocate one from')
        return
    limits = (1, 16777215) if net.pkt_tag_type == VXLAN else (1, 4094)
    if not limits[0] <= net.pkt_tag <= limits[1]:
        add(f"{label}.PktTag {net.pkt_tag}: outside {limits[0]}-{limits[1]}")
    elif ranges is not None and (complete or ranges) and not in_ranges(net.pkt_tag, ranges):
        add(f"{label}.PktTag {net.pkt_tag}: outside the tenant's {field} range "
            f"({fmt_ranges(ranges)})")


def check_subnet(tenant: TenantConfig, net: NetworkConfig, label: str, add: Add,
                 complete: bool = True) -> IPNetwork | None:
    """``SubnetCIDR`` and ``DefaultGw`` of a network; returns the subnet when valid."""
    subnet = None
    if net.subnet_cidr:
        subnet = ipv4_net(net.subnet_cidr)
        if subnet is None:
            add(f'{label}.SubnetCIDR "{net.subnet_cidr}": not an IPv4 CIDR like '
                f'"10.1.1.0/24"')
        elif subnet.prefixlen > MAX_ALLOC_SUBNET_LEN:
            add(f'{label}.SubnetCIDR "{net.subnet_cidr}": longer than /{MAX_ALLOC_SUBNET_LEN}')
            subnet = None
        elif subnet.network != subnet.ip:
            add(f'{label}.SubnetCIDR "{net.subnet_cidr}": host bits set (did you mean '
                f'"{subnet.cidr}"?)')
            subnet = subnet.cidr
    elif complete and not (tenant.subnet_pool and tenant.alloc_subnet_len):
        add(f'{label}: network "{net.name}" has no SubnetCIDR and its tenant "{tenant.name}" '
            f"has no SubnetPool and AllocSubnetLen to allocate one from")
    if net.default_gw:
        gw = ipv4(net.default_gw)
        if gw is None:
            add(f'{label}.DefaultGw "{net.default_gw}": not an IPv4 address')
        elif subnet is not None and (gw not in subnet or gw in (subnet.network,
                                                                 subnet.broadcast)):
            add(f'{label}.DefaultGw "{net.default_gw}": not a host address of {subnet.cidr}')
        elif subnet is None and net.subnet_cidr is None and complete:
            add(f'{label}.DefaultGw "{net.default_gw}": needs an explicit SubnetCIDR')
    return subnet


def check_network(tenant: TenantConfig, net: NetworkConfig, label: str, add: Add,
                  complete: bool = True) -> IPNetwork | None:
    """Name, tag, subnet, gateway and reserved ranges of a network; returns its valid explicit
    subnet."""
    _name(net.name, f"{label}.Name", add)
    check_tag(tenant, net, label, add, complete)
    subnet = check_subnet(tenant, net, label, add, complete)
    check_reserved(net, subnet, label, add)
    return subnet


def check_endpoint(ep: EndpointConfig, label: str, add: Add) -> None:
    """Names of an endpoint's container, host and ``AttachUUID``."""
    _name(ep.container, f"{label}.Container", add)
    _name(ep.host or "", f"{label}.Host", add)
    if ep.attach_uuid:
        why = runtime_id_problem(ep.attach_uuid)
        if why:
            add(f'{label}.AttachUUID "{ep.attach_uuid}": {why}')


def check_static_ip(net: NetworkConfig, ep: EndpointConfig, label: str,
                    subnet: IPNetwork | None, add: Add, complete: bool = True) -> int | None:
    """A static ``IpAddress`` inside the subnet, not the gateway's and not in the network's
    ``Reserved`` ranges unless the endpoint says ``Reserved``; returns it as an int."""
    ip = ipv4(ep.ip_address or "")
    where = f'{label}.IpAddress "{ep.ip_address}"'
    if ip is None:
        add(f"{where}: not an IPv4 address")
        return None
    if subnet is None:
        if not net.subnet_cidr and complete:
            add(f"{where}: a static IP needs the network's SubnetCIDR")
        return None
    gateway = ipv4(net.default_gw or "") or IPAddress(subnet.first + 1)
    if ip not in subnet:
        add(f"{where}: outside the network's subnet {subnet.cidr}")
    elif ip == subnet.network:
        add(f"{where}: is the network address of {subnet.cidr}")
    elif ip == subnet.broadcast:
        add(f"{where}: is the broadcast address of {subnet.cidr}")
    elif ip == gateway:
        add(f"{where}: is the network's gateway address")
    elif not ep.reserved and reserved_problem(net, int(ip)):
        add(f"{where}: {reserved_problem(net, int(ip))}")
    else:
        return int(ip)
    return None


def range_overlaps(label: str, field: str, ranges: Ranges,
                   others: list[tuple[Ranges, str]], add: Add) -> None:
    """Each of ``ranges`` against the ``(ranges, owner)`` of other tenants."""
    for lo, hi in ranges:
        for other, owner in others:
            for olo, ohi in other:
                if lo <= ohi and olo <= hi:
                    add(f'{label}.{field} "{fmt_ranges(ranges)}": range {lo}-{hi} overlaps '
                        f"{olo}-{ohi} of {owner}")


# --------------------------------------------------------------------------- documents


def validate_config(config: Config, with_paths: bool = True, complete: bool = True) -> list[str]:
    """Every problem of a document (or, without paths, of merged stored state)."""
    problems: list[str] = []
    add = problems.append
    seen_hosts: set[str] = set()
    for hi, host in enumerate(config.hosts):
        hp = f"Hosts[{hi}]" if with_paths else f'host "{host.name}"'
        if host.name in seen_hosts:
            add(f'{hp}.Name "{host.name}": duplicate host name')
        seen_hosts.add(host.name)
        check_host(host, hp, add)
    tenant_names: dict[str, str] = {}
    network_names: dict[str, str] = {}
    endpoint_ids: dict[str, tuple[str, EndpointConfig]] = {}
    tags: dict[tuple[str, int], str] = {}
    for ti, tenant in enumerate(config.tenants):
        tp = f"Tenants[{ti}]" if with_paths else f'tenant "{tenant.name}"'
        if tenant.name in tenant_names:
            add(f'{tp}.Name "{tenant.name}": duplicate tenant name '
                f"(also {tenant_names[tenant.name]})")
        tenant_names.setdefault(tenant.name, tp)
        check_tenant(tenant, tp, add)
        for ni, net in enumerate(tenant.networks):
            np_ = f"{tp}.Networks[{ni}]" if with_paths else f'network "{net.name}"'
            if net.name in network_names:
                add(f'{np_}.Name "{net.name}": duplicate network name (also '
                    f"{network_names[net.name]}; names are global)")
            network_names.setdefault(net.name, np_)
            subnet = check_network(tenant, net, np_, add, complete)
            if net.pkt_tag is not None and net.pkt_tag_type is not None:
                key = (net.pkt_tag_type, net.pkt_tag)
                if key in tags:
                    add(f"{np_}.PktTag {net.pkt_tag}: {net.pkt_tag_type} tag used twice "
                        f"(also {tags[key]})")
                tags.setdefault(key, np_)
            used_ips: dict[int, str] = {}
            for ei, ep in enumerate(net.endpoints):
                ep_ = f"{np_}.Endpoints[{ei}]" if with_paths else f'endpoint "{ep.id}"'
                check_endpoint(ep, ep_, add)
                if ep.endpoint_group and complete and ep.endpoint_group not in {
                        g.name for g in tenant.endpoint_groups}:
                    add(f'{ep_}.EndpointGroup "{ep.endpoint_group}": no such endpoint group in '
                        f'tenant "{tenant.name}"')
                _check_endpoint_id(ep, ep_, endpoint_ids, add)
                if ep.ip_address:
                    ip = check_static_ip(net, ep, ep_, subnet, add, complete)
                    if ip is not None and ip in used_ips:
                        add(f'{ep_}.IpAddress "{ep.ip_address}": used twice in network '
                            f'"{net.name}" (also {used_ips[ip]})')
                    elif ip is not None:
                        used_ips[ip] = ep_
        _check_policies(tenant, tp, add, with_paths, complete)
        _check_qos_and_multicast(tenant, tp, add, with_paths, complete)
        _check_routers(tenant, tp, add, with_paths, complete)
    _check_range_overlaps(config, add, with_paths)
    return problems


def _check_routers(tenant: TenantConfig, tp: str, add: Add, with_paths: bool,
                   complete: bool) -> None:
    from intent.router_doc import check_router

    networks = {n.name: {"subnet": n.subnet_cidr, "type": n.pkt_tag_type,
                         "gateway": n.default_gw} for n in tenant.networks}
    taken: dict[str, str] = {}
    names: set[str] = set()
    for i, r in enumerate(tenant.routers):
        label = f"{tp}.Routers[{i}]" if with_paths else f'router "{r.name}"'
        if r.name in names:
            add(f'{label}.Name "{r.name}": duplicate name in tenant "{tenant.name}"')
        names.add(r.name)
        check_router(r, label, add, networks if complete else None, taken)
        for n in r.networks or ():
            taken.setdefault(n, r.name)


def _check_policies(tenant: TenantConfig, tp: str, add: Add, with_paths: bool,
                    complete: bool) -> None:
    from intent.policy_doc import check_group, check_policy

    groups, policies = {g.name for g in tenant.endpoint_groups}, {
        p.name for p in tenant.policies}
    networks = {n.name for n in tenant.networks}
    for kind, items, names in (("EndpointGroups", tenant.endpoint_groups, set()),
                               ("Policies", tenant.policies, set())):
        for i, obj in enumerate(items):
            label = f"{tp}.{kind}[{i}]" if with_paths else \
                f'{"endpoint group" if kind == "EndpointGroups" else "policy"} "{obj.name}"'
            if obj.name in names:
                add(f'{label}.Name "{obj.name}": duplicate name in tenant "{tenant.name}"')
            names.add(obj.name)
            if kind == "EndpointGroups":
                check_group(obj, label, add, policies if complete else None)
            else:
                check_policy(obj, label, add, groups if complete else None,
                             networks if complete else None)


def _check_qos_and_multicast(tenant: TenantConfig, tp: str, add: Add, with_paths: bool,
                             complete: bool) -> None:
    from intent.mcast_doc import check_multicast
    from intent.qos_doc import check_profile, check_ref

    names: set[str] = set()
    for i, p in enumerate(tenant.qos_profiles):
        label = f"{tp}.QosProfiles[{i}]" if with_paths else f'QoS profile "{p.name}"'
        if p.name in names:
            add(f'{label}.Name "{p.name}": duplicate name in tenant "{tenant.name}"')
        names.add(p.name)
        check_profile(p, label, add, complete)
    known = names if complete else None
    for i, g in enumerate(tenant.endpoint_groups):
        label = f"{tp}.EndpointGroups[{i}]" if with_paths else f'endpoint group "{g.name}"'
        check_ref(g.qos_profile, label, tenant.name, known, add)
    for ni, net in enumerate(tenant.networks):
        np_ = f"{tp}.Networks[{ni}]" if with_paths else f'network "{net.name}"'
        check_ref(net.qos_profile, np_, tenant.name, known, add)
        for ei, ep in enumerate(net.endpoints):
            ep_ = f"{np_}.Endpoints[{ei}]" if with_paths else f'endpoint "{ep.id}"'
            check_ref(ep.qos_profile, ep_, tenant.name, known, add)
        check_multicast(net.multicast, np_, add,
                        {e.container for e in net.endpoints} if complete else None)


def endpoint_collision(ep: EndpointConfig, other_network: str, other_container: str,
                       other_label: str) -> str:
    """The message for two different (network, container) pairs with one endpoint id."""
    return (f'endpoint id "{ep.id}" of network "{ep.network}" and container "{ep.container}" '
            f'collides with network "{other_network}" and container "{other_container}" '
            f"({other_label}); rename one of them")


def _check_endpoint_id(ep: EndpointConfig, label: str,
                       seen: dict[str, tuple[str, EndpointConfig]], add: Add) -> None:
    prev = seen.get(ep.id)
    if prev is None:
        seen[ep.id] = (label, ep)
    elif (prev[1].network, prev[1].container) == (ep.network, ep.container):
        add(f'{label}: duplicate endpoint "{ep.id}" (also {prev[0]})')
    else:
        add(f"{label}: " + endpoint_collision(ep, prev[1].network, prev[1].container, prev[0]))


def _check_range_overlaps(config: Config, add: Add, with_paths: bool) -> None:
    for field, kind in (("Vlans", "vlans"), ("Vxlans", "vxlans")):
        seen: list[tuple[Ranges, str]] = []
        for ti, tenant in enumerate(config.tenants):
            ranges = getattr(tenant, kind) or ()
            label = f"Tenants[{ti}]" if with_paths else f'tenant "{tenant.name}"'
            range_overlaps(label, field, ranges, seen, add)
            seen.append((ranges, f'tenant "{tenant.name}"'))
