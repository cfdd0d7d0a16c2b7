"""Store keys → engine inputs, with quarantine (no framework imports, no I/O).

Every watched key is decoded and checked before it reaches the engine.  A value that cannot be
used (not JSON, wrong types, an address that is not one) quarantines *that key only*: the
problem is logged once and listed in :attr:`Intake.problems`, and the engine keeps the object's
last good value — unknown is not absent, so its entries stay installed.  A later good value (or
a delete) heals it.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from allocator.pools import ip_int, ip_str
from intent import codec, keys
from intent.consistent import is_intent
from intent.logfmt import logline
from intent.model import (
    VLAN,
    VXLAN,
    EndpointGroupSpec,
    EndpointSpec,
    HostConfig,
    HostSpec,
    NetworkSpec,
    PolicyConfig,
    QosProfileConfig,
    RouterSpec,
)
from intent.resolved import host_spec
from intent.store import Event, Snapshot
from ofctl.engine import Engine

LOG = logging.getLogger(__name__)
MAC_RE = re.compile(r"[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}")

# keys the controller writes itself or that are no intent at all: they change nothing here
IGNORED = (keys.OPER_REALIZED, keys.OPER_APPLIED, keys.LOCKS, keys.WRITES, keys.RUNTIME)


class BadValue(ValueError):
    """A stored value the controller cannot use."""


@dataclass(frozen=True)
class Registration:
    """What an agent registered for its host (``/netplugin/oper/hosts/<host>``)."""

    name: str
    dpid: int | None
    vtep_ip: str | None
    uplink: str | None
    vxlan_ofport: int | None
    uplink_ofport: int | None
    raw: dict


def _ip(value: Any, what: str) -> str:
    try:
        parts = value.split(".")
        if len(parts) != 4 or not all(p.isascii() and p.isdigit() and int(p) < 256
                                      for p in parts):
            raise ValueError
        return ip_str(ip_int(value))
    except (AttributeError, ValueError):
        raise BadValue(f"{what} {value!r} is not an IPv4 address") from None


def _opt_int(data: dict, name: str) -> int | None:
    v = data.get(name)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or v < 0:
        raise BadValue(f"{name} {v!r} is not a non-negative integer")
    return v


def _object(value: str) -> dict:
    try:
        data = json.loads(value)
    except ValueError as exc:
        raise BadValue(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(data, dict):
        raise BadValue(f"expected a JSON object, got {type(data).__name__}")
    return data


def decode_network(name: str, value: str) -> NetworkSpec:
    _object(value)
    try:
        n = codec.loads(NetworkSpec, value)
    except TypeError as exc:
        raise BadValue(str(exc)) from None
    if n.name != name:
        raise BadValue(f"names network {n.name!r}, not {name!r}")
    if n.net_type not in (VLAN, VXLAN):
        raise BadValue(f"net_type {n.net_type!r} is not vlan or vxlan")
    limit = 16777215 if n.net_type == VXLAN else 4094
    if isinstance(n.tag, bool) or not isinstance(n.tag, int) or not 0 < n.tag <= limit:
        raise BadValue(f"tag {n.tag!r} is not a {n.net_type} id")
    if not isinstance(n.subnet, str) or "/" not in n.subnet:
        raise BadValue(f"subnet {n.subnet!r} is not a CIDR")
    _ip(n.subnet.split("/")[0], "subnet")
    return n


def decode_endpoint(eid: str, value: str) -> EndpointSpec | None:
    _object(value)
    try:
        e = codec.loads(EndpointSpec, value)
    except TypeError as exc:
        raise BadValue(str(exc)) from None
    if e.id != eid:
        raise BadValue(f"names endpoint {e.id!r}, not {eid!r}")
    if not isinstance(e.network, str) or not (e.host is None or isinstance(e.host, str)):
        raise BadValue("network and host must be names")
    if e.ip == "" and e.mac == "":
        return None  # pending: its network's IPAM plugin gives the address at plug time
    mac = e.mac.lower() if isinstance(e.mac, str) else ""
    if len(mac) != 17 or any(c not in "0123456789abcdef:" for c in mac):
        raise BadValue(f"mac {e.mac!r} is not a MAC address")
    if e.group is not None and not isinstance(e.group, str):
        raise BadValue(f"group {e.group!r} is not a name")
    if e.qos_profile is not None and not isinstance(e.qos_profile, str):
        raise BadValue(f"qos_profile {e.qos_profile!r} is not a name")
    return EndpointSpec(e.id, e.network, e.container, e.host, _ip(e.ip, "ip"), mac,
                        e.attach_uuid, e.group, e.qos_profile)


def _scoped(cls: type, what: str, tenant: str, name: str, value: str) -> Any:
    """A stored tenant-scoped object (group, policy, profile, router) that names itself."""
    _object(value)
    try:
        obj = codec.loads(cls, value)
    except TypeError as exc:
        raise BadValue(str(exc)) from None
    if (obj.tenant, obj.name) != (tenant, name):
        raise BadValue(f"names {what} {obj.tenant}/{obj.name}, not {tenant}/{name}")
    return obj


def _small_id(value: Any, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= 0xFFFF:
        raise BadValue(f"id {value!r} is not a {what} id")


def decode_group(tenant: str, name: str, value: str) -> EndpointGroupSpec:
    g = _scoped(EndpointGroupSpec, "group", tenant, name, value)
    _small_id(g.id, "group")
    return g


def decode_policy(tenant: str, name: str, value: str) -> PolicyConfig:
    p = _scoped(PolicyConfig, "policy", tenant, name, value)
    for r in p.rules or ():
        if r.direction not in ("in", "out") or r.action not in ("allow", "deny") or \
                not isinstance(r.priority, int) or not isinstance(r.id, int):
            raise BadValue(f"rule {r.id!r} is not a rule")
    return p


def decode_qos(tenant: str, name: str, value: str) -> QosProfileConfig:
    q = _scoped(QosProfileConfig, "QoS profile", tenant, name, value)
    for what, v, hi in (("bandwidth", q.bandwidth, 100_000_000), ("burst", q.burst, 100_000_000),
                        ("dscp", q.dscp, 63)):
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= hi):
            raise BadValue(f"{what} {v!r} is out of range")
    return q


def decode_router(tenant: str, name: str, value: str) -> RouterSpec:
    if not isinstance(_object(value).get("networks", []), list):
        raise BadValue("networks is not a list of names")
    r = _scoped(RouterSpec, "router", tenant, name, value)
    _small_id(r.id, "router")
    if not isinstance(r.networks, tuple) or not all(isinstance(n, str) for n in r.networks):
        raise BadValue("networks is not a list of names")
    if r.external_network is not None:
        _ip(r.external_ip, "external_ip")
        if not isinstance(r.gateway_host, str):
            raise BadValue("an external router needs a gateway_host")
    return r


def decode_gateway(value: str) -> str:
    """The MAC of a learnt physical gateway (``{"mac": ..., "ip": ...}``)."""
    mac = _object(value).get("mac")
    if not isinstance(mac, str) or not MAC_RE.fullmatch(mac):
        raise BadValue(f"mac {mac!r} is not a MAC address")
    return mac.lower()


def decode_registration(name: str, value: str) -> Registration:
    data = _object(value)
    vtep = data.get("vtep_ip")
    return Registration(name, _opt_int(data, "dpid"), _ip(vtep, "vtep_ip") if vtep else None,
                        data.get("uplink") if isinstance(data.get("uplink"), str) else None,
                        _opt_int(data, "vxlan_ofport"), _opt_int(data, "uplink_ofport"), data)


def decode_host_config(name: str, value: str) -> HostConfig:
    _object(value)
    h = codec.loads(HostConfig, value)
    if h.vtep_ip:
        _ip(h.vtep_ip, "vtep_ip")
    return h


def decode_plug(value: str) -> tuple[str, int | None]:
    data = _object(value)
    host = data.get("host")
    if not isinstance(host, str) or not host:
        raise BadValue("host is missing")
    return host, _opt_int(data, "ofport")


class Intake:
    """Feeds an :class:`~ofctl.engine.Engine` from store keys; see the module docstring."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.revision = 0  # the newest relevant event applied
        self.problems: dict[str, str] = {}
        self.hosts: dict[str, dict] = {}  # registrations as JSON (REST, status)
        self.registrations: dict[str, Registration] = {}
        self.host_configs: dict[str, HostConfig] = {}
        self.plugged: dict[str, tuple[str, int | None]] = {}  # endpoint id -> (host, ofport)

    def load(self, snap: Snapshot) -> None:
        """Apply every key of a snapshot (of ``/netplugin/``)."""
        for kv in snap.items.values():
            self._set(kv.key, kv.value)
        self.revision = max(self.revision, snap.intent_revision or snap.revision)

    def apply(self, ev: Event) -> bool:
        """Apply one watch event; returns False when it was not relevant (ignored)."""
        if ev.key.startswith(IGNORED):
            return False
        self._set(ev.key, ev.value if ev.type == "put" else None)
        self.revision = max(self.revision, ev.mod_revision)
        return True

    def host_for_dpid(self, dpid: int) -> str | None:
        for name, reg in self.registrations.items():
            if reg.dpid == dpid:
                return name
        return None

    # ------------------------------------------------------------------ decoding
    def _set(self, key: str, value: str | None) -> None:
        name = keys.last_segment(key)
        try:
            if key.startswith(keys.STATE_NETWORKS):
                self.engine.set_network(name, value and decode_network(name, value))
            elif key.startswith(keys.STATE_ENDPOINTS):
                ep = value and decode_endpoint(name, value)
                # an endpoint waiting for its address from an IPAM plugin has no flows yet
                self.engine.set_endpoint(name, ep or None)
            elif key.startswith(keys.OPER_HOSTS):
                self._registration(name, value and decode_registration(name, value))
            elif key.startswith(keys.CONFIG_HOSTS):
                cfg = value and decode_host_config(name, value)
                if cfg:
                    self.host_configs[name] = cfg
                else:
                    self.host_configs.pop(name, None)
                self._host(name)
            elif key.startswith(keys.OPER_ENDPOINTS):
                self._plug(name, value and decode_plug(value))
            elif key.startswith(keys.STATE_GROUPS):
                t, g = keys.tenant_and_name(key, keys.STATE_GROUPS)
                self.engine.set_group(t, g, value and decode_group(t, g, value))
            elif key.startswith(keys.OPER_GATEWAYS):
                t, r = keys.tenant_and_name(key, keys.OPER_GATEWAYS)
                self.engine.set_gateway_mac(t, r, value and decode_gateway(value))
            elif key.startswith(keys.STATE_ROUTERS):
                t, r = keys.tenant_and_name(key, keys.STATE_ROUTERS)
                self.engine.set_router(t, r, value and decode_router(t, r, value))
            elif key.startswith(keys.CONFIG_POLICIES):
                t, p = keys.tenant_and_name(key, keys.CONFIG_POLICIES)
                self.engine.set_policy(t, p, value and decode_policy(t, p, value))
            elif key.startswith(keys.CONFIG_QOS):
                t, q = keys.tenant_and_name(key, keys.CONFIG_QOS)
                self.engine.set_qos_profile(t, q, value and decode_qos(t, q, value))
            elif key.startswith(keys.OPER_MCAST):
                net, address, eid = keys.mcast_member_parts(key)
                self.engine.set_learned(net, address, eid, value is not None)
            else:
                return
        except (BadValue, ValueError, TypeError, KeyError, AttributeError) as exc:
            if self.problems.get(key) is None:
                LOG.warning("%s", logline("quarantine", key=key, object=keys.last_segment(key),
                                          error=str(exc) or type(exc).__name__,
                                          effect="its last good value stays in force"))
            self.problems[key] = str(exc) or type(exc).__name__
            return
        if self.problems.pop(key, None) is not None:
            LOG.info("%s", logline("quarantine-lifted", key=key, object=keys.last_segment(key)))

    def _registration(self, name: str, reg: Registration | None) -> None:
        if reg is None:
            self.registrations.pop(name, None)
            self.hosts.pop(name, None)
        else:
            self.registrations[name] = reg
            self.hosts[name] = reg.raw
        self._host(name)
        self.engine.set_host_ports(name, reg.vxlan_ofport if reg else None,
                                   reg.uplink_ofport if reg else None)

    def _host(self, name: str) -> None:
        cfg, reg = self.host_configs.get(name), self.registrations.get(name)
        if cfg is None and reg is None:
            self.engine.set_host(name, None)
            return
        registration = reg and HostSpec(name=name, vtep_ip=reg.vtep_ip, uplink=reg.uplink,
                                        dpid=reg.dpid)
        self.engine.set_host(name, host_spec(cfg, registration))

    def _plug(self, eid: str, plug: tuple[str, int | None] | None) -> None:
        old = self.plugged.pop(eid, None)
        if old is not None and (plug is None or plug[0] != old[0]):
            self.engine.set_port(old[0], eid, None)
        if plug is not None:
            self.plugged[eid] = plug
            self.engine.set_port(plug[0], eid, plug[1])


def relevant(key: str) -> bool:
    """Whether the controller's tables can depend on ``key``."""
    return not key.startswith(IGNORED) and (is_intent(key) or key.startswith(keys.OPER))
