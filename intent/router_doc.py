"""Routers in an intent document: reading and checking.

A tenant may carry ``Routers`` (``Name``, ``Networks``: names of the tenant's networks that
route to each other; optionally ``ExternalNetwork`` - a VLAN network of the tenant whose
``DefaultGw`` is a physical router -, ``ExternalIp`` - the router's own address on it - and
``GatewayHost`` - the host that hands traffic to the physical router and answers for
``ExternalIp``).  One network is on at most one router, and the subnets of one router's networks
must not overlap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intent.model import RouterConfig
from intent.names import name_problem
from intent.reader import Reader

Add = Callable[[str], None]


def parse_routers(r: Reader, fields: dict[str, Any], tenant: str,
                  path: str) -> tuple[RouterConfig, ...]:
    out = []
    for ri, raw in enumerate(r.items(fields, "Routers", path)):
        rpath = f"{path}.Routers[{ri}]"
        f = r.fields(raw, "router", rpath)
        networks = None
        if "Networks" in f:
            value = f.get("Networks")
            if value is None:
                networks = ()
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                r.problems.append(f"{rpath}.Networks: expected a list of network names")
                networks = ()
            else:
                networks = tuple(v.strip() for v in value)
        out.append(RouterConfig(
            name=r.string(f, "Name", rpath, required=True) or "", tenant=tenant,
            networks=networks, external_network=r.string(f, "ExternalNetwork", rpath),
            external_ip=r.string(f, "ExternalIp", rpath),
            gateway_host=r.string(f, "GatewayHost", rpath)))
    return tuple(out)


def check_router(router: RouterConfig, label: str, add: Add,
                 networks: dict[str, dict] | None, taken: dict[str, str]) -> None:
    """A router's names and references.  ``networks`` (name -> {"subnet", "type", "gateway"},
    None: unknown) are the tenant's; ``taken`` maps networks to the router that has them."""
    from intent.validate import ipv4, ipv4_net

    why = name_problem(router.name)
    if why:
        add(f'{label}.Name "{router.name}": {why}')
    if router.gateway_host and name_problem(router.gateway_host):
        add(f'{label}.GatewayHost "{router.gateway_host}": {name_problem(router.gateway_host)}')
    seen: dict[str, int] = {}
    for i, n in enumerate(router.networks or ()):
        where = f'{label}.Networks[{i}] "{n}"'
        if n in seen:
            add(f"{where}: listed twice")
        seen.setdefault(n, i)
        if networks is not None and n not in networks:
            add(f'{where}: no such network in tenant "{router.tenant}"')
        elif taken.get(n) not in (None, router.name):
            add(f'{where}: already on router "{taken[n]}" (a network is on one router)')
    if networks is not None:
        subnets = [(n, networks[n]["subnet"]) for n in seen if n in networks and
                   networks[n].get("subnet")]
        for i, (a, sa) in enumerate(subnets):
            for b, sb in subnets[i + 1:]:
                na, nb = ipv4_net(sa), ipv4_net(sb)
                if na is not None and nb is not None and (na.first <= nb.last and
                                                          nb.first <= na.last):
                    add(f'{label}.Networks: "{a}" ({sa}) and "{b}" ({sb}) overlap; a router '
                        f"cannot route between overlapping subnets")
    ext = router.external_network
    given = [x for x in (ext, router.external_ip, router.gateway_host) if x]
    if given and len(given) < 3:
        add(f"{label}: ExternalNetwork, ExternalIp and GatewayHost go together")
        return
    if not ext:
        return
    if ext in seen:
        add(f'{label}.ExternalNetwork "{ext}": is also one of the router\'s Networks')
    info = networks.get(ext) if networks is not None else None
    if networks is not None and info is None:
        add(f'{label}.ExternalNetwork "{ext}": no such network in tenant "{router.tenant}"')
        return
    if info is not None and info.get("type") != "vlan":
        add(f'{label}.ExternalNetwork "{ext}": must be a VLAN network (its gateway is a '
            f"physical router on the trunk)")
    ip = ipv4(router.external_ip or "")
    if ip is None:
        add(f'{label}.ExternalIp "{router.external_ip}": not an IPv4 address')
    elif info is not None and info.get("subnet"):
        subnet = ipv4_net(info["subnet"])
        if subnet is not None and (ip not in subnet or ip in (subnet.network, subnet.broadcast)
                                   or str(ip) == info.get("gateway")):
            add(f'{label}.ExternalIp "{router.external_ip}": not a free host address of '
                f'{ext}\'s subnet {info["subnet"]}')
