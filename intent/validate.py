"""Cross-object validation of a ``Config``: returns every problem, never stops at the first."""

from __future__ import annotations

from collections.abc import Callable

from netaddr import AddrFormatError, IPAddress, IPNetwork

from intent.model import VLAN, VXLAN, Config, EndpointConfig, NetworkConfig, TenantConfig

MAX_ALLOC_SUBNET_LEN = 30


def _ipv4_net(text: str) -> IPNetwork | None:
    try:
        net = IPNetwork(text)
    except (AddrFormatError, ValueError, TypeError):
        return None
    return net if net.version == 4 and "/" in text else None


def _ipv4(text: str) -> IPAddress | None:
    try:
        ip = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return None
    return ip if ip.version == 4 and "/" not in text else None


def _in_ranges(value: int, ranges: tuple[tuple[int, int], ...]) -> bool:
    return any(lo <= value <= hi for lo, hi in ranges)


def _fmt(ranges: tuple[tuple[int, int], ...]) -> str:
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges) or "none"


def validate_config(config: Config, with_paths: bool = True) -> list[str]:
    """Every cross-object problem of ``config``.

    With ``with_paths`` problems name JSON paths (``Tenants[0].Networks[1].PktTag``); otherwise
    they name objects (``network "orange" PktTag``), which suits merged stored state.
    """
    problems: list[str] = []
    add = problems.append

    def tpath(ti: int, t: TenantConfig) -> str:
        return f"Tenants[{ti}]" if with_paths else f'tenant "{t.name}"'

    def npath(ti: int, ni: int, n: NetworkConfig) -> str:
        return f"Tenants[{ti}].Networks[{ni}]" if with_paths else f'network "{n.name}"'

    def epath(ti: int, ni: int, ei: int, e: EndpointConfig) -> str:
        return (f"Tenants[{ti}].Networks[{ni}].Endpoints[{ei}]" if with_paths
                else f'endpoint "{e.id}"')

    _check_hosts(config, add, with_paths)
    tenant_names: dict[str, str] = {}
    network_names: dict[str, str] = {}
    endpoint_ids: dict[str, str] = {}
    tags: dict[tuple[str, int], str] = {}
    for ti, tenant in enumerate(config.tenants):
        tp = tpath(ti, tenant)
        if tenant.name in tenant_names:
            add(f'{tp}.Name "{tenant.name}": duplicate tenant name '
                f"(also {tenant_names[tenant.name]})")
        tenant_names.setdefault(tenant.name, tp)
        pool = _check_pool(tenant, tp, add)
        for ni, net in enumerate(tenant.networks):
            np_ = npath(ti, ni, net)
            if net.name in network_names:
                add(f'{np_}.Name "{net.name}": duplicate network name (also '
                    f"{network_names[net.name]}; names are global)")
            network_names.setdefault(net.name, np_)
            _check_tag(tenant, net, np_, tags, add)
            subnet = _check_subnet(tenant, net, np_, pool, add)
            used_ips: dict[int, str] = {}
            for ei, ep in enumerate(net.endpoints):
                ep_ = epath(ti, ni, ei, ep)
                if ep.id in endpoint_ids:
                    add(f'{ep_}: duplicate endpoint "{ep.id}" (also {endpoint_ids[ep.id]})')
                endpoint_ids.setdefault(ep.id, ep_)
                if ep.ip_address:
                    _check_static_ip(net, ep, ep_, subnet, used_ips, add)
    _check_range_overlaps(config, add, tpath)
    return problems


def _check_hosts(config: Config, add: Callable[[str], None], with_paths: bool) -> None:
    seen: set[str] = set()
    for hi, host in enumerate(config.hosts):
        hp = f"Hosts[{hi}]" if with_paths else f'host "{host.name}"'
        if host.name in seen:
            add(f'{hp}.Name "{host.name}": duplicate host name')
        seen.add(host.name)
        if host.vtep_ip and _ipv4(host.vtep_ip) is None:
            add(f'{hp}.VtepIp "{host.vtep_ip}": not an IPv4 address')


def _check_pool(tenant: TenantConfig, tp: str, add: Callable[[str], None]) -> IPNetwork | None:
    pool = None
    if tenant.subnet_pool:
        pool = _ipv4_net(tenant.subnet_pool)
        if pool is None:
            add(f'{tp}.SubnetPool "{tenant.subnet_pool}": not an IPv4 CIDR like "10.1.0.0/16"')
        elif pool.network != pool.ip:
            add(f'{tp}.SubnetPool "{tenant.subnet_pool}": host bits set (did you mean '
                f'"{pool.cidr}"?)')
    if tenant.alloc_subnet_len is not None:
        length = tenant.alloc_subnet_len
        if pool is not None and length < pool.prefixlen:
            add(f"{tp}.AllocSubnetLen {length}: shorter than the SubnetPool's /{pool.prefixlen}")
        elif length > MAX_ALLOC_SUBNET_LEN:
            add(f"{tp}.AllocSubnetLen {length}: longer than /{MAX_ALLOC_SUBNET_LEN} "
                f"(no room for endpoints)")
        elif length < 1:
            add(f"{tp}.AllocSubnetLen {length}: must be between the pool's prefix and "
                f"{MAX_ALLOC_SUBNET_LEN}")
    return pool


def _check_tag(tenant: TenantConfig, net: NetworkConfig, np_: str,
               tags: dict[tuple[str, int], str], add: Callable[[str], None]) -> None:
    ranges = tenant.vxlans if net.pkt_tag_type == VXLAN else tenant.vlans
    field = "Vxlans" if net.pkt_tag_type == VXLAN else "Vlans"
    if net.pkt_tag is None:
        if not ranges:
            add(f'{np_}: {net.pkt_tag_type} network "{net.name}" has no PktTag and its tenant '
                f'"{tenant.name}" has no {field} range to allocate one from')
        return
    limits = (1, 16777215) if net.pkt_tag_type == VXLAN else (1, 4094)
    if not limits[0] <= net.pkt_tag <= limits[1]:
        add(f"{np_}.PktTag {net.pkt_tag}: outside {limits[0]}-{limits[1]}")
    elif not _in_ranges(net.pkt_tag, ranges):
        add(f"{np_}.PktTag {net.pkt_tag}: outside the tenant's {field} range ({_fmt(ranges)})")
    key = (net.pkt_tag_type, net.pkt_tag)
    if key in tags:
        add(f"{np_}.PktTag {net.pkt_tag}: {net.pkt_tag_type} tag used twice (also {tags[key]})")
    tags.setdefault(key, np_)


def _check_subnet(tenant: TenantConfig, net: NetworkConfig, np_: str, pool: IPNetwork | None,
                  add: Callable[[str], None]) -> IPNetwork | None:
    subnet = None
    if net.subnet_cidr:
        subnet = _ipv4_net(net.subnet_cidr)
        if subnet is None:
            add(f'{np_}.SubnetCIDR "{net.subnet_cidr}": not an IPv4 CIDR like "10.1.1.0/24"')
        elif subnet.prefixlen > MAX_ALLOC_SUBNET_LEN:
            add(f'{np_}.SubnetCIDR "{net.subnet_cidr}": longer than /{MAX_ALLOC_SUBNET_LEN}')
            subnet = None
        elif subnet.network != subnet.ip:
            add(f'{np_}.SubnetCIDR "{net.subnet_cidr}": host bits set (did you mean '
                f'"{subnet.cidr}"?)')
            subnet = subnet.cidr
    elif not (tenant.subnet_pool and tenant.alloc_subnet_len):
        add(f'{np_}: network "{net.name}" has no SubnetCIDR and its tenant "{tenant.name}" has '
            f"no SubnetPool and AllocSubnetLen to allocate one from")
    if net.default_gw:
        gw = _ipv4(net.default_gw)
        if gw is None:
            add(f'{np_}.DefaultGw "{net.default_gw}": not an IPv4 address')
        elif subnet is not None and (gw not in subnet or gw in (subnet.network,
                                                                 subnet.broadcast)):
            add(f'{np_}.DefaultGw "{net.default_gw}": not a host address of '
                f"{subnet.cidr}")
        elif subnet is None and net.subnet_cidr is None:
            add(f'{np_}.DefaultGw "{net.default_gw}": needs an explicit SubnetCIDR')
    return subnet


def _check_static_ip(net: NetworkConfig, ep: EndpointConfig, ep_: str,
                     subnet: IPNetwork | None, used: dict[int, str],
                     add: Callable[[str], None]) -> None:
    ip = _ipv4(ep.ip_address or "")
    where = f'{ep_}.IpAddress "{ep.ip_address}"'
    if ip is None:
        add(f"{where}: not an IPv4 address")
        return
    if subnet is None:
        if not net.subnet_cidr:
            add(f"{where}: a static IP needs the network's SubnetCIDR")
        return
    gateway = _ipv4(net.default_gw or "") or IPAddress(subnet.first + 1)
    if ip not in subnet:
        add(f"{where}: outside the network's subnet {subnet.cidr}")
    elif ip == subnet.network:
        add(f"{where}: is the network address of {subnet.cidr}")
    elif ip == subnet.broadcast:
        add(f"{where}: is the broadcast address of {subnet.cidr}")
    elif ip == gateway:
        add(f"{where}: is the network's gateway address")
    elif int(ip) in used:
        add(f"{where}: used twice in network \"{net.name}\" (also {used[int(ip)]})")
    used.setdefault(int(ip), ep_)


def _check_range_overlaps(config: Config, add: Callable[[str], None],
                          tpath: Callable[[int, TenantConfig], str]) -> None:
    for field, kind in (("Vlans", VLAN), ("Vxlans", VXLAN)):
        seen: list[tuple[int, int, str]] = []
        for ti, tenant in enumerate(config.tenants):
            ranges = tenant.vlans if kind == VLAN else tenant.vxlans
            for lo, hi in ranges:
                for olo, ohi, owner in seen:
                    if lo <= ohi and olo <= hi:
                        add(f'{tpath(ti, tenant)}.{field} "{_fmt(ranges)}": range {lo}-{hi} '
                            f"overlaps {olo}-{ohi} of {owner}")
                seen.append((lo, hi, f'tenant "{tenant.name}"'))
