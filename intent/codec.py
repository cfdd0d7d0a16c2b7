"""JSON encoding of model objects as stored in etcd (one JSON object per key)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any, TypeVar

from intent.model import (
    EndpointConfig,
    EndpointSpec,
    HostConfig,
    HostSpec,
    NetworkConfig,
    NetworkSpec,
    TenantConfig,
)

T = TypeVar("T")


def dumps(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces) of a dataclass or plain value.

    Nested tuples of child objects (a tenant's networks, a network's endpoints) are not stored
    with their parent: each child has its own key.
    """
    if dataclasses.is_dataclass(obj):
        data = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)
                if f.name not in ("networks", "endpoints")}
    else:
        data = obj
    return json.dumps(data, sort_keys=True, separators=(",", ":"))


def loads(cls: type[T], text: str) -> T:
    """Rebuild a dataclass stored by :func:`dumps`; unknown fields are ignored."""
    data = json.loads(text)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {k: v for k, v in data.items() if k in names}
    for k in ("vlans", "vxlans"):
        if kwargs.get(k) is not None:
            kwargs[k] = tuple(tuple(r) for r in kwargs[k])
    return cls(**kwargs)


STORED_TYPES = (HostConfig, TenantConfig, NetworkConfig, EndpointConfig,
                NetworkSpec, EndpointSpec, HostSpec)
