"""JSON encoding of model objects as stored in etcd (one JSON object per key)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from intent.model import (
    EndpointConfig,
    EndpointGroupConfig,
    EndpointGroupSpec,
    EndpointSpec,
    HostConfig,
    HostSpec,
    IpamConfig,
    McastGroupConfig,
    MulticastConfig,
    NetworkConfig,
    NetworkSpec,
    PolicyConfig,
    RouterConfig,
    RouterSpec,
    RuleConfig,
    TenantConfig,
)

T = TypeVar("T")


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) of a dataclass or plain value.

    Nested tuples of child objects (a tenant's networks, a network's endpoints) are not stored
    with their parent: each child has its own key.
    """
    if dataclasses.is_dataclass(obj):
        skip = CHILDREN.get(type(obj), ())
        data = {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)
                if f.name not in skip}
    else:
        data = obj
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


CHILDREN: dict[type, tuple[str, ...]] = {
    TenantConfig: ("networks", "endpoint_groups", "policies", "routers", "qos_profiles"),
    NetworkConfig: ("endpoints",),
}


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def loads(cls: type[T], text: str) -> T:
    """Rebuild a dataclass stored by :func:`dumps`; unknown fields are ignored."""
    data = json.loads(text)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for k in ("vlans", "vxlans"):
        if kwargs.get(k) is not None:
            kwargs[k] = tuple(tuple(r) for r in kwargs[k])
    if cls is PolicyConfig and kwargs.get("rules") is not None:
        kwargs["rules"] = tuple(RuleConfig(**r) for r in kwargs["rules"])
    if cls in (EndpointGroupConfig, EndpointGroupSpec) and kwargs.get("policies") is not None:
        kwargs["policies"] = tuple(kwargs["policies"])
    if cls in (NetworkConfig, NetworkSpec) and isinstance(kwargs.get("multicast"), dict):
        kwargs["multicast"] = multicast_from(kwargs["multicast"])
    if cls in (NetworkConfig, NetworkSpec) and isinstance(kwargs.get("ipam"), dict):
        kwargs["ipam"] = IpamConfig(**{k: v for k, v in kwargs["ipam"].items()
                                       if k in ("type", "plugin", "config", "hosts")})
    if cls in (RouterConfig, RouterSpec) and kwargs.get("networks") is not None:
        kwargs["networks"] = tuple(kwargs["networks"])
    return cls(**kwargs)


def multicast_from(data: dict) -> MulticastConfig:
    """A stored ``MulticastConfig``."""
    return MulticastConfig(snooping=bool(data.get("snooping")), groups=tuple(
        McastGroupConfig(g["address"], tuple(g.get("receivers") or ()))
        for g in data.get("groups") or ()))


STORED_TYPES = (HostConfig, TenantConfig, NetworkConfig, EndpointConfig,
                NetworkSpec, EndpointSpec, HostSpec)
