"""Reading raw JSON values of an intent document, collecting every problem with its path."""

from __future__ import annotations

import difflib
import re
from typing import Any

from intent.model import NET_TYPES

# canonical key names per object kind (the seed's spelling, extended in the same style)
SCHEMA: dict[str, tuple[str, ...]] = {
    "top": ("Hosts", "Tenants"),
    "host": ("Name", "Intf", "VtepIp", "NetId"),
    "tenant": ("Name", "DefaultNetType", "SubnetPool", "AllocSubnetLen", "Vlans", "Vxlans",
               "Networks", "EndpointGroups", "Policies", "Routers", "QosProfiles"),
    "network": ("Name", "PktTagType", "PktTag", "SubnetCIDR", "DefaultGw", "Endpoints",
                "QosProfile", "Multicast", "Ipam", "Reserved"),
    "endpoint": ("Container", "Host", "AttachUUID", "IpAddress", "EndpointGroup", "QosProfile",
                 "Reserved"),
    "ipam": ("Type", "Plugin", "Config", "Hosts"),
    "binding": ("Container", "Host", "AttachUUID"),
    "group": ("Name", "Policies", "QosProfile"),
    "router": ("Name", "Networks", "ExternalNetwork", "ExternalIp", "GatewayHost"),
    "policy": ("Name", "Rules"),
    "rule": ("Id", "Priority", "Direction", "Action", "FromEndpointGroup", "FromNetwork",
             "FromIpAddress", "ToEndpointGroup", "ToNetwork", "ToIpAddress", "Protocol", "Port"),
    "qosprofile": ("Name", "Bandwidth", "Burst", "Dscp"),
    "multicast": ("Snooping", "Groups"),
    "mcastgroup": ("Address", "Receivers"),
}

DIGITS = re.compile(r"[0-9]{1,12}")  # ASCII digits only ("²".isdigit() is True)
VLAN_LIMITS = (1, 4094)
VNI_LIMITS = (1, 16777215)


class Reader:
    """Collects problems while converting raw JSON values."""

    def __init__(self) -> None:
        self.problems: list[str] = []

    def fields(self, raw: Any, kind: str, path: str) -> dict[str, Any]:
        """Case-insensitive key lookup; unknown keys are problems with a did-you-mean."""
        if not isinstance(raw, dict):
            self.problems.append(f"{path or 'document'}: expected an object, got "
                                 f"{type(raw).__name__}")
            return {}
        canon = {k.lower(): k for k in SCHEMA[kind]}
        out: dict[str, Any] = {}
        for key, value in raw.items():
            name = canon.get(str(key).lower())
            where = f"{path}.{key}" if path else str(key)
            if name is None:
                hint = difflib.get_close_matches(str(key).lower(), list(canon), n=1, cutoff=0.6)
                extra = f" (did you mean {canon[hint[0]]!r}?)" if hint else ""
                allowed = ", ".join(SCHEMA[kind])
                self.problems.append(f"{where}: unknown key{extra}; known keys: {allowed}")
            elif name in out:
                self.problems.append(f"{where}: key given twice (keys are case-insensitive)")
            else:
                out[name] = value
        return out

    def string(self, fields: dict[str, Any], key: str, path: str,
               required: bool = False) -> str | None:
        value = fields.get(key)
        if value is None or value == "":
            if required:
                self.problems.append(f"{path}.{key}: required")
            return None
        if not isinstance(value, str):
            self.problems.append(f"{path}.{key}: expected a string, got {value!r}")
            return None
        return value.strip()

    def integer(self, fields: dict[str, Any], key: str, path: str) -> int | None:
        value = fields.get(key)
        if value is None or value == "":
            return None
        if isinstance(value, bool):
            self.problems.append(f"{path}.{key}: expected an integer, got {value!r}")
            return None
        if isinstance(value, int):
            return value
        if isinstance(value, str) and DIGITS.fullmatch(value.strip()):
            return int(value.strip())
        self.problems.append(f"{path}.{key}: expected an integer, got {value!r}")
        return None

    def net_type(self, fields: dict[str, Any], key: str, path: str,
                 default: str | None) -> str | None:
        value = self.string(fields, key, path)
        if value is None:
            return default
        if value.lower() not in NET_TYPES:
            self.problems.append(f'{path}.{key} "{value}": unknown network type '
                                 f"(expected vlan or vxlan)")
            return default
        return value.lower()

    def ranges(self, fields: dict[str, Any], key: str, path: str,
               limits: tuple[int, int], what: str) -> tuple[tuple[int, int], ...] | None:
        """Parse ``"a-b,c-d"`` (a single id ``"5"`` too) into inclusive ranges (None: absent)."""
        value = fields.get(key)
        if value is None:
            return None
        if value == "":
            return ()
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            self.problems.append(f"{path}.{key}: expected a string like \"100-200\", "
                                 f"got {value!r}")
            return ()
        result: list[tuple[int, int]] = []
        for part in value.split(","):
            part = part.strip()
            bounds = [b.strip() for b in part.split("-")]
            if len(bounds) == 1:
                bounds = bounds * 2
            if len(bounds) != 2 or not all(DIGITS.fullmatch(b) for b in bounds):
                self.problems.append(f'{path}.{key} "{value}": "{part}" is not a {what} id '
                                     f'or range like "100-200"')
                continue
            lo, hi = int(bounds[0]), int(bounds[1])
            if lo > hi:
                self.problems.append(f'{path}.{key} "{value}": range start is above its end')
                continue
            if lo < limits[0] or hi > limits[1]:
                self.problems.append(f'{path}.{key} "{value}": {what} ids must be within '
                                     f"{limits[0]}-{limits[1]}")
                continue
            for olo, ohi in result:
                if lo <= ohi and olo <= hi:
                    self.problems.append(f'{path}.{key} "{value}": ranges {olo}-{ohi} and '
                                         f"{lo}-{hi} overlap")
            result.append((lo, hi))
        return tuple(sorted(result))

    def items(self, fields: dict[str, Any], key: str, path: str) -> list[Any]:
        value = fields.get(key)
        if value is None:
            return []
        if not isinstance(value, list):
            self.problems.append(f"{path}.{key}: expected a list")
            return []
        return value


