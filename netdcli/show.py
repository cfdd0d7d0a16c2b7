"""Read views of the stored intent, shaped like the original netdcli's JSON output."""

from __future__ import annotations

import json
from typing import Any

from intent import codec, keys
from intent.consistent import read_consistent
from intent.errors import NotFoundError
from intent.model import (
    IN,
    PEER_GROUP,
    PEER_IP,
    PEER_NETWORK,
    VXLAN,
    EndpointGroupConfig,
    EndpointSpec,
    NetworkSpec,
    PolicyConfig,
    RouterConfig,
    RuleConfig,
    TenantConfig,
)
from intent.resolved import config_from_snapshot, resolved_from_snapshot
from intent.store import Snapshot, Store


def _tag_field(net: NetworkSpec) -> dict:
    return {"Vni": net.tag} if net.net_type == VXLAN else {"PktTag": net.tag}


def endpoint_view(snap: Snapshot, ep: EndpointSpec, net: NetworkSpec) -> dict:
    """One endpoint with its allocation and, when plugged, its port."""
    view = {"Id": ep.id, "Container": ep.container, "Network": ep.network,
            "Tenant": net.tenant, "Host": ep.host, "AttachUUID": ep.attach_uuid,
            "IpAddress": ep.ip, "MacAddress": ep.mac,
            "Subnet": net.subnet, "Gateway": net.gateway, "PktTagType": net.net_type}
    view |= _tag_field(net)
    oper = snap.value(keys.oper_endpoint(ep.id))
    if oper:
        view["Oper"] = json.loads(oper)
    return view


def network_view(net: NetworkSpec, endpoints: list[dict]) -> dict:
    """One network with its allocation and its endpoints."""
    view = {"Name": net.name, "Tenant": net.tenant, "PktTagType": net.net_type,
            "SubnetCIDR": net.subnet, "DefaultGw": net.gateway}
    return view | _tag_field(net) | {"Endpoints": endpoints}


def _lookup(snap: Snapshot, prefix: str, cls: type, name: str, what: str):
    value = snap.value(prefix + name)
    if value is None:
        raise NotFoundError(f'{what} "{name}" does not exist')
    return codec.loads(cls, value)


def _network_with_endpoints(store: Store, name: str) -> tuple[Snapshot, NetworkSpec, list]:
    """A network's state and its endpoints' state and oper keys, read consistently."""
    lists = (keys.alloc_ip_prefix(name), keys.alloc_delegated_prefix(name))  # + pending ones
    first = read_consistent(store, keys=[keys.state_network(name)], prefixes=list(lists))
    net = _lookup(first, keys.STATE_NETWORKS, NetworkSpec, name, "network")
    ids = sorted(json.loads(kv.value)["owner"] for k, kv in first.items.items()
                 if k.startswith(lists))
    snap = read_consistent(store, keys=[k for i in ids for k in (keys.state_endpoint(i),
                                                                  keys.oper_endpoint(i))])
    eps = [codec.loads(EndpointSpec, snap.value(keys.state_endpoint(i))) for i in ids
           if snap.value(keys.state_endpoint(i))]
    return snap, net, eps


def show_endpoint(store: Store, ep_id: str) -> dict:
    first = read_consistent(store, keys=[keys.state_endpoint(ep_id), keys.oper_endpoint(ep_id)])
    ep = _lookup(first, keys.STATE_ENDPOINTS, EndpointSpec, ep_id, "endpoint")
    snap = read_consistent(store, keys=[keys.state_endpoint(ep_id), keys.oper_endpoint(ep_id),
                                        keys.state_network(ep.network)])
    ep = _lookup(snap, keys.STATE_ENDPOINTS, EndpointSpec, ep_id, "endpoint")
    net = _lookup(snap, keys.STATE_NETWORKS, NetworkSpec, ep.network, "network")
    return endpoint_view(snap, ep, net)


def show_network(store: Store, name: str) -> dict:
    snap, net, eps = _network_with_endpoints(store, name)
    return network_view(net, [endpoint_view(snap, e, net) for e in eps])


def show_tenant(store: Store, name: str) -> dict:
    first = read_consistent(store, keys=[keys.tenant(name), keys.tenant_index(name)])
    tenant = first.value(keys.tenant(name))
    if tenant is None:
        raise NotFoundError(f'tenant "{name}" does not exist')
    t = codec.loads(TenantConfig, tenant)
    idx = json.loads(first.value(keys.tenant_index(name)) or '{"networks": {}}')
    nets = []
    for n in sorted(idx.get("networks", {})):
        snap, net, eps = _network_with_endpoints(store, n)
        nets.append(network_view(net, [endpoint_view(snap, e, net) for e in eps]))
    return {"Name": t.name, "DefaultNetType": t.default_net_type,
            "SubnetPool": t.subnet_pool, "AllocSubnetLen": t.alloc_subnet_len,
            "Vlans": _ranges(t.vlans), "Vxlans": _ranges(t.vxlans), "Networks": nets,
            "Routers": sorted(idx.get("routers", {}))}


def show_global(store: Store) -> dict:
    """Every tenant, network and host, plus the store revision."""
    snap = read_consistent(store, prefixes=[keys.ROOT])
    resolved = resolved_from_snapshot(snap)
    config = config_from_snapshot(snap)
    nets = {n.name: n for n in resolved.networks}
    return {
        "Revision": snap.revision,
        "Tenants": [{"Name": t.name, "DefaultNetType": t.default_net_type,
                     "SubnetPool": t.subnet_pool, "AllocSubnetLen": t.alloc_subnet_len,
                     "Vlans": _ranges(t.vlans), "Vxlans": _ranges(t.vxlans),
                     "Networks": sorted(n.name for n in t.networks)} for t in config.tenants],
        "Networks": [network_view(n, [endpoint_view(snap, e, n) for e in resolved.endpoints
                                      if e.network == n.name]) for n in nets.values()],
        "Hosts": [{"Name": h.name, "VtepIp": h.vtep_ip, "Uplink": h.uplink, "Dpid": h.dpid}
                  for h in resolved.hosts],
    }


def _ranges(ranges: tuple[tuple[int, int], ...] | None) -> str:
    return ",".join(f"{lo}-{hi}" if lo != hi else str(lo) for lo, hi in ranges or ())


PEER_KEYS = {PEER_GROUP: "EndpointGroup", PEER_NETWORK: "Network", PEER_IP: "IpAddress"}


def rule_view(r: RuleConfig) -> dict[str, Any]:
    """A rule in the document's style."""
    out: dict[str, Any] = {"Id": r.id, "Priority": r.priority, "Direction": r.direction,
                           "Action": r.action}
    if r.peer_kind:
        out[("From" if r.direction == IN else "To") + PEER_KEYS[r.peer_kind]] = r.peer
    if r.protocol:
        out["Protocol"] = r.protocol
    if r.port_lo is not None:
        out["Port"] = r.port_lo if r.port_lo == r.port_hi else f"{r.port_lo}-{r.port_hi}"
    return out


def policy_view(p: PolicyConfig) -> dict[str, Any]:
    return {"Name": p.name, "Tenant": p.tenant, "Rules": [rule_view(r) for r in p.rules or ()]}


def group_view(g: EndpointGroupConfig, spec: dict | None, members: dict | None) -> dict:
    return {"Name": g.name, "Tenant": g.tenant, "Policies": list(g.policies or ()),
            "Id": spec.get("id") if spec else None,
            "Members": members.get("count", 0) if members else 0}


def router_view(r: RouterConfig, spec: dict | None, gateway: dict | None) -> dict:
    """A router as the document writes it, with its id (routing domain) and, for an external
    router, the physical gateway's MAC once the controller learnt it."""
    view: dict[str, Any] = {"Name": r.name, "Tenant": r.tenant, "Networks": list(r.networks or ()),
                            "Id": spec.get("id") if spec else None}
    if r.external_network:
        view.update({"ExternalNetwork": r.external_network, "ExternalIp": r.external_ip,
                     "GatewayHost": r.gateway_host,
                     "GatewayMac": gateway.get("mac") if gateway else None})
    return view


def profile_view(p) -> dict:
    """A profile in the intent document's style (unset values left out)."""
    out: dict = {"Name": p.name}
    for key, value in (("Bandwidth", p.bandwidth), ("Burst", p.burst), ("Dscp", p.dscp)):
        if value is not None:
            out[key] = value
    return out
