"""``netdcli -audit``: is everything consistent?  Intent against allocations, oper keys against
intent, realized revisions against the last write, and every registered host's switch against
what it should hold (asked of the controller's REST API: ``GET /api/v1/hosts/{host}/audit``).

:func:`audit_store` is pure (one snapshot of ``/netplugin/`` in, one line per inconsistency
out); :func:`audit_switches` asks the controller.
"""

from __future__ import annotations

import json
import ssl
import urllib.error
import urllib.parse
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from netaddr import AddrFormatError, IPAddress, IPNetwork

from intent import codec, keys
from intent.model import (
    VLAN,
    VXLAN,
    EndpointConfig,
    EndpointSpec,
    HostConfig,
    NetworkConfig,
    NetworkSpec,
    TenantConfig,
)
from intent.realized import realized_in
from intent.store import Snapshot

_KINDS = {keys.CONFIG_HOSTS: HostConfig, keys.CONFIG_TENANTS: TenantConfig,
          keys.CONFIG_NETWORKS: NetworkConfig, keys.CONFIG_ENDPOINTS: EndpointConfig,
          keys.STATE_NETWORKS: NetworkSpec, keys.STATE_ENDPOINTS: EndpointSpec}


@dataclass
class _View:
    """The decoded snapshot (unreadable values reported, not used)."""

    objects: dict[str, dict[str, Any]]
    owners: dict[str, str]  # allocation key -> owner
    json_values: dict[str, Any]


def _decode(snap: Snapshot, problems: list[str]) -> _View:
    objects: dict[str, dict[str, Any]] = {p: {} for p in _KINDS}
    owners: dict[str, str] = {}
    values: dict[str, Any] = {}
    for key, kv in sorted(snap.items.items()):
        prefix = next((p for p in _KINDS if key.startswith(p)), None)
        try:
            if prefix is not None:
                objects[prefix][key[len(prefix):]] = codec.loads(_KINDS[prefix], kv.value)
                continue
            data = json.loads(kv.value) if kv.value else None
        except (ValueError, TypeError, AttributeError) as exc:
            problems.append(f"{key}: unreadable value ({exc})")
            continue
        values[key] = data
        if key.startswith((keys.ALLOC_VLAN, keys.ALLOC_VNI, keys.ALLOC_SUBNET, keys.ALLOC_IP)):
            owner = data.get("owner") if isinstance(data, dict) else None
            if not isinstance(owner, str):
                problems.append(f"{key}: allocation without an owner")
            else:
                owners[key] = owner
    return _View(objects, owners, values)


def audit_store(snap: Snapshot) -> list[str]:
    """Every inconsistency between intent, allocations, oper keys and realized revisions."""
    problems: list[str] = []
    v = _decode(snap, problems)
    tenants = v.objects[keys.CONFIG_TENANTS]
    nets_cfg = v.objects[keys.CONFIG_NETWORKS]
    eps_cfg = v.objects[keys.CONFIG_ENDPOINTS]
    nets = v.objects[keys.STATE_NETWORKS]
    eps = v.objects[keys.STATE_ENDPOINTS]
    if snap.intent_revision:
        problems.append(f"{keys.CONFIG_TXN}: a large write is under way or was left half-done "
                        f"(intent read as of revision {snap.intent_revision})")
    _networks(problems, tenants, nets_cfg, nets, v)
    _endpoints(problems, nets_cfg, eps_cfg, nets, eps, v)
    _allocations(problems, nets_cfg, eps, v)
    _oper(problems, eps, v, snap)
    return problems


def _networks(problems: list[str], tenants: dict, nets_cfg: dict, nets: dict, v: _View) -> None:
    tag_key = {VLAN: keys.alloc_vlan, VXLAN: keys.alloc_vni}
    for name, cfg in sorted(nets_cfg.items()):
        if cfg.tenant not in tenants:
            problems.append(f"network {name}: its tenant {cfg.tenant} does not exist")
        spec = nets.get(name)
        if spec is None:
            problems.append(f"network {name}: no resolved state ({keys.state_network(name)})")
            continue
        if cfg.pkt_tag is not None and cfg.pkt_tag != spec.tag:
            problems.append(f"network {name}: asks for tag {cfg.pkt_tag}, state has {spec.tag}")
        key = tag_key.get(spec.net_type, keys.alloc_vni)(spec.tag)
        if v.owners.get(key) != name:
            problems.append(f"network {name}: {spec.net_type} tag {spec.tag} is not allocated "
                            f"to it ({key} owner: {v.owners.get(key, 'none')})")
        key = keys.alloc_subnet(spec.tenant, spec.subnet)
        if v.owners.get(key) != name:
            problems.append(f"network {name}: subnet {spec.subnet} is not allocated to it "
                            f"({key} owner: {v.owners.get(key, 'none')})")
        index = v.json_values.get(keys.tenant_index(spec.tenant)) or {}
        entry = (index.get("networks") or {}).get(name) if isinstance(index, dict) else None
        if not isinstance(entry, dict) or entry.get("tag") != spec.tag or \
                entry.get("subnet") != spec.subnet:
            problems.append(f"network {name}: tenant index {keys.tenant_index(spec.tenant)} "
                            f"says {entry}, state has tag {spec.tag} subnet {spec.subnet}")
    for name in sorted(set(nets) - set(nets_cfg)):
        problems.append(f"network {name}: resolved state without intent")


def _endpoints(problems: list[str], nets_cfg: dict, eps_cfg: dict, nets: dict, eps: dict,
               v: _View) -> None:
    for eid, cfg in sorted(eps_cfg.items()):
        if cfg.network not in nets_cfg:
            problems.append(f"endpoint {eid}: its network {cfg.network} does not exist")
        spec = eps.get(eid)
        if spec is None:
            problems.append(f"endpoint {eid}: no resolved state ({keys.state_endpoint(eid)})")
            continue
        if cfg.host and spec.host != cfg.host:
            problems.append(f"endpoint {eid}: bound to {cfg.host}, state says {spec.host}")
        if cfg.ip_address and spec.ip != cfg.ip_address:
            problems.append(f"endpoint {eid}: asks for {cfg.ip_address}, state has {spec.ip}")
        net = nets.get(spec.network)
        if not spec.ip:  # waits for its address from the network's IPAM plugin
            if net is not None and net.ipam is None:
                problems.append(f"endpoint {eid}: has no address, and its network "
                                f"{spec.network} allocates them")
            elif keys.alloc_delegated(spec.network, eid) not in v.json_values:
                problems.append(f"endpoint {eid}: waits for an address but is not listed "
                                f"under {keys.alloc_delegated_prefix(spec.network)}")
            continue
        try:
            inside = net is not None and IPAddress(spec.ip) in IPNetwork(net.subnet)
        except (AddrFormatError, ValueError, TypeError):
            inside = False
        if net is not None and not inside:
            problems.append(f"endpoint {eid}: address {spec.ip} is outside {net.subnet}")
        key = keys.alloc_ip(spec.network, spec.ip)
        if v.owners.get(key) != eid:
            problems.append(f"endpoint {eid}: address {spec.ip} is not allocated to it "
                            f"({key} owner: {v.owners.get(key, 'none')})")
    for eid in sorted(set(eps) - set(eps_cfg)):
        problems.append(f"endpoint {eid}: resolved state without intent")
    seen: dict[tuple[str, str], str] = {}
    for eid, spec in sorted(eps.items()):
        for what, value in (("address", spec.ip), ("MAC", spec.mac)) if spec.ip else ():
            other = seen.setdefault((spec.network, f"{what} {value}"), eid)
            if other != eid:
                problems.append(f"network {spec.network}: {what} {value} is used by both "
                                f"{other} and {eid}")


def _allocations(problems: list[str], nets_cfg: dict, eps: dict, v: _View) -> None:
    held: dict[str, list[str]] = defaultdict(list)
    for key, owner in sorted(v.owners.items()):
        if key.startswith(keys.ALLOC_IP):
            network, ip = key[len(keys.ALLOC_IP):].rsplit("/", 1)
            held[owner].append(key)
            spec = eps.get(owner)
            if spec is None:
                problems.append(f"{key}: allocated to endpoint {owner}, which does not exist "
                                "(leaked)")
            elif spec.network != network or spec.ip != ip:
                problems.append(f"{key}: allocated to {owner}, which has {spec.ip} in "
                                f"{spec.network} (leaked)")
        elif owner not in nets_cfg:
            problems.append(f"{key}: allocated to network {owner}, which does not exist "
                            "(leaked)")
    for owner, held_keys in sorted(held.items()):
        if len(held_keys) > 1:
            problems.append(f"endpoint {owner} holds {len(held_keys)} addresses: "
                            f"{', '.join(held_keys)}")


def _oper(problems: list[str], eps: dict, v: _View, snap: Snapshot) -> None:
    registered = {k[len(keys.OPER_HOSTS):] for k in v.json_values if k.startswith(
        keys.OPER_HOSTS)}
    plugged = {k[len(keys.OPER_ENDPOINTS):]: val for k, val in v.json_values.items()
               if k.startswith(keys.OPER_ENDPOINTS)}
    running = {k[len(keys.RUNTIME):] for k in v.json_values if k.startswith(keys.RUNTIME)}
    for eid, val in sorted(plugged.items()):
        spec = eps.get(eid)
        host = val.get("host") if isinstance(val, dict) else None
        if spec is None:
            problems.append(f"endpoint {eid}: plugged on {host} but not in the intent (stale "
                            "port)")
        elif host != spec.host:
            problems.append(f"endpoint {eid}: plugged on {host} but bound to {spec.host}")
    for eid, spec in sorted(eps.items()):
        if spec.host and f"{spec.host}/{spec.netns_owner}" in running and \
                spec.host in registered and eid not in plugged:
            problems.append(f"endpoint {eid}: container {spec.netns_owner} runs on "
                            f"{spec.host} but the endpoint is not plugged")
    rev_kv = snap.items.get(keys.CONFIG_REV)
    last_write = rev_kv.mod_revision if rev_kv else 0
    realized = realized_in(snap)
    for host in sorted(registered):
        rev = realized.get(host, 0)
        if rev < last_write:
            problems.append(f"host {host}: switch realized revision {rev or 'none'}, behind "
                            f"the last intent write at {last_write}")


# ----------------------------------------------------------------------------- switches


@dataclass(frozen=True)
class RestClient:
    """The controller's REST API: base URL, bearer token, CA for https."""

    url: str
    token: str | None = None
    ca: str | None = None
    timeout: float = 30.0

    def get(self, path: str) -> Any:
        req = urllib.request.Request(self.url.rstrip("/") + "/api/v1" + path)
        if self.token:
            req.add_header("Authorization", f"Bearer {self.token}")
        ctx = ssl.create_default_context(cafile=self.ca) if self.url.startswith("https") \
            else None
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                             urllib.request.HTTPSHandler(context=ctx))
        with opener.open(req, timeout=self.timeout) as resp:
            return json.loads(resp.read())


def audit_switches(rest: RestClient, snap: Snapshot) -> list[str]:
    """Every registered host's switch against its desired state, per the controller."""
    hosts = sorted(k[len(keys.OPER_HOSTS):] for k in snap.items if k.startswith(
        keys.OPER_HOSTS))
    problems: list[str] = []
    for host in hosts:
        try:
            answer = rest.get(f"/hosts/{urllib.parse.quote(host)}/audit")
        except urllib.error.HTTPError as exc:
            problems.append(f"host {host}: controller answered {exc.code} to the switch audit "
                            f"({_errors(exc)})")
            continue
        except (OSError, ValueError) as exc:
            problems.append(f"host {host}: cannot ask the controller at {rest.url} for a "
                            f"switch audit ({getattr(exc, 'reason', exc)})")
            continue
        problems += [f"host {host} switch: {d}" for d in answer.get("differences", [])]
    return problems


def _errors(exc: urllib.error.HTTPError) -> str:
    try:
        return "; ".join(json.loads(exc.read()).get("errors", []))
    except (ValueError, AttributeError, OSError):
        return exc.reason
