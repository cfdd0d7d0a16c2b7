"""Load the seed JSON schema (keys matched case-insensitively) into ``Config`` and validate it.

Every problem is collected with its path (``Tenants[0].Vlans "900-500": range start is above its
end``) and the whole document is rejected with :class:`intent.errors.ValidationError`.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import Any

from intent.errors import ValidationError
from intent.model import (
    NET_TYPES,
    VXLAN,
    Config,
    EndpointConfig,
    HostConfig,
    NetworkConfig,
    TenantConfig,
    with_defaults,
)
from intent.validate import validate_config

# canonical key names per object kind (the seed's spelling)
SCHEMA: dict[str, tuple[str, ...]] = {
    "top": ("Hosts", "Tenants"),
    "host": ("Name", "Intf", "VtepIp", "NetId"),
    "tenant": ("Name", "DefaultNetType", "SubnetPool", "AllocSubnetLen", "Vlans", "Vxlans",
               "Networks"),
    "network": ("Name", "PktTagType", "PktTag", "SubnetCIDR", "DefaultGw", "Endpoints"),
    "endpoint": ("Container", "Host", "AttachUUID", "IpAddress"),
    "binding": ("Container", "Host", "AttachUUID"),
}

VLAN_LIMITS = (1, 4094)
VNI_LIMITS = (1, 16777215)


class _Reader:
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
        if isinstance(value, str) and value.strip().isdigit():
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
            if len(bounds) != 2 or not all(b.isdigit() for b in bounds):
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


def parse_document(data: Any) -> tuple[Config, list[str]]:
    """Convert raw JSON into a ``Config`` without cross-object checks; returns the problems."""
    r = _Reader()
    top = r.fields(data, "top", "")
    hosts = []
    for i, raw in enumerate(r.items(top, "Hosts", "")):
        path = f"Hosts[{i}]"
        f = r.fields(raw, "host", path)
        hosts.append(HostConfig(name=r.string(f, "Name", path, required=True) or "",
                                intf=r.string(f, "Intf", path),
                                vtep_ip=r.string(f, "VtepIp", path),
                                net_id=r.string(f, "NetId", path)))
    tenants = []
    for ti, raw in enumerate(r.items(top, "Tenants", "")):
        path = f"Tenants[{ti}]"
        f = r.fields(raw, "tenant", path)
        name = r.string(f, "Name", path, required=True) or ""
        default_type = r.net_type(f, "DefaultNetType", path, None)
        networks = []
        for ni, nraw in enumerate(r.items(f, "Networks", path)):
            npath = f"{path}.Networks[{ni}]"
            nf = r.fields(nraw, "network", npath)
            net_name = r.string(nf, "Name", npath, required=True) or ""
            endpoints = []
            for ei, eraw in enumerate(r.items(nf, "Endpoints", npath)):
                epath = f"{npath}.Endpoints[{ei}]"
                ef = r.fields(eraw, "endpoint", epath)
                endpoints.append(EndpointConfig(
                    network=net_name,
                    container=r.string(ef, "Container", epath, required=True) or "",
                    host=r.string(ef, "Host", epath),
                    attach_uuid=r.string(ef, "AttachUUID", epath),
                    ip_address=r.string(ef, "IpAddress", epath)))
            networks.append(NetworkConfig(
                name=net_name, tenant=name,
                pkt_tag_type=r.net_type(nf, "PktTagType", npath, None),
                pkt_tag=r.integer(nf, "PktTag", npath),
                subnet_cidr=r.string(nf, "SubnetCIDR", npath),
                default_gw=r.string(nf, "DefaultGw", npath),
                endpoints=tuple(endpoints)))
        tenants.append(TenantConfig(
            name=name, default_net_type=default_type,
            subnet_pool=r.string(f, "SubnetPool", path),
            alloc_subnet_len=r.integer(f, "AllocSubnetLen", path),
            vlans=r.ranges(f, "Vlans", path, VLAN_LIMITS, "VLAN"),
            vxlans=r.ranges(f, "Vxlans", path, VNI_LIMITS, "VNI"),
            networks=tuple(networks)))
    return Config(hosts=tuple(hosts), tenants=tuple(tenants)), r.problems


def read_json(source: dict | list | str | Path) -> Any:
    """JSON from a parsed value, a JSON string, or a file path; errors become ValidationError."""
    if isinstance(source, (dict, list)):
        return source
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(
            ("{", "["))):
        path = Path(source)
        try:
            text = path.read_text()
        except OSError as exc:
            raise ValidationError(f"{path}: cannot read: {exc.strerror}") from exc
        where = str(path)
    else:
        text, where = source, "document"
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(f"{where}: invalid JSON at line {exc.lineno} column {exc.colno}: "
                              f"{exc.msg}") from exc


def load_config(source: dict | str | Path, validate: bool = True) -> Config:
    """Parse and validate a complete intent document (what ``-cfg`` takes); unset fields get
    their defaults.  Raise ValidationError listing every problem."""
    config, problems = parse_document(read_json(source))
    config = with_defaults(config)
    if validate:
        _add_validation(problems, validate_config(config, with_paths=True))
    if problems:
        raise ValidationError(problems)
    return config


def load_document(source: dict | str | Path) -> Config:
    """Parse a possibly partial document (what ``-add-cfg`` / ``-del-cfg`` take): fields it
    leaves out stay unset (``None``) so that a merge keeps the stored values.  Only what the
    document itself can decide is checked here; the write path checks the merged objects."""
    config, problems = parse_document(read_json(source))
    _add_validation(problems, validate_config(config, with_paths=True, complete=False))
    if problems:
        raise ValidationError(problems)
    return config


def _add_validation(problems: list[str], found: list[str]) -> None:
    """Append ``found`` to the parse ``problems``, without follow-ups of a range that failed to
    parse (its problem is listed already)."""
    parse_problems = list(problems)
    for problem in found:
        tenant_path = problem.split(".", 1)[0]
        field = "Vxlans" if "no Vxlans range" in problem else "Vlans"
        if "range to allocate one from" in problem and any(
                p.startswith(f"{tenant_path}.{field} ") for p in parse_problems):
            continue
        problems.append(problem)


def load_bindings(source: list | str | Path) -> list[EndpointConfig]:
    """Parse a host-bindings file ``[{"Container", "Host", "AttachUUID"}]``.

    Returns one ``EndpointConfig`` per binding with an empty network (it binds every endpoint of
    that container).
    """
    data = read_json(source)
    r = _Reader()
    if not isinstance(data, list):
        raise ValidationError("host bindings: expected a list of "
                              '{"Container", "Host", "AttachUUID"} objects')
    out = []
    for i, raw in enumerate(data):
        path = f"[{i}]"
        f = r.fields(raw, "binding", path)
        out.append(EndpointConfig(network="",
                                  container=r.string(f, "Container", path, required=True) or "",
                                  host=r.string(f, "Host", path, required=True),
                                  attach_uuid=r.string(f, "AttachUUID", path)))
    if r.problems:
        raise ValidationError(r.problems)
    return out


def tenant_pool_kind(net_type: str) -> str:
    """Human name of the tag pool for a network type."""
    return "Vxlans" if net_type == VXLAN else "Vlans"
