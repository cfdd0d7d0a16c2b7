"""Load the seed JSON schema (keys matched case-insensitively) into ``Config`` and validate it.

Every problem is collected with its path (``Tenants[0].Vlans "900-500": range start is above its
end``) and the whole document is rejected with :class:`intent.errors.ValidationError`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from intent.errors import ValidationError
from intent.ipam_doc import parse_ipam, parse_reserved_flag
from intent.jsontext import parse_json
from intent.mcast_doc import parse_multicast
from intent.model import (
    VXLAN,
    Config,
    EndpointConfig,
    HostConfig,
    NetworkConfig,
    TenantConfig,
    with_defaults,
)
from intent.policy_doc import parse_groups, parse_policies
from intent.qos_doc import parse_profiles, parse_ref
from intent.reader import DIGITS, SCHEMA, VLAN_LIMITS, VNI_LIMITS, Reader  # noqa: F401
from intent.router_doc import parse_routers
from intent.validate import validate_config


def parse_document(data: Any) -> tuple[Config, list[str]]:
    """Convert raw JSON into a ``Config`` without cross-object checks; returns the problems."""
    r = Reader()
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
                    ip_address=r.string(ef, "IpAddress", epath),
                    endpoint_group=(r.string(ef, "EndpointGroup", epath) or ""
                                    if "EndpointGroup" in ef else None),
                    qos_profile=parse_ref(r, ef, epath),
                    reserved=parse_reserved_flag(r, ef, epath)))
            networks.append(NetworkConfig(
                name=net_name, tenant=name,
                pkt_tag_type=r.net_type(nf, "PktTagType", npath, None),
                pkt_tag=r.integer(nf, "PktTag", npath),
                subnet_cidr=r.string(nf, "SubnetCIDR", npath),
                default_gw=r.string(nf, "DefaultGw", npath),
                endpoints=tuple(endpoints),
                qos_profile=parse_ref(r, nf, npath),
                multicast=parse_multicast(r, nf, npath),
                ipam=parse_ipam(r, nf, npath),
                reserved=_reserved_text(r, nf, npath)))
        tenants.append(TenantConfig(
            name=name, default_net_type=default_type,
            subnet_pool=r.string(f, "SubnetPool", path),
            alloc_subnet_len=r.integer(f, "AllocSubnetLen", path),
            vlans=r.ranges(f, "Vlans", path, VLAN_LIMITS, "VLAN"),
            vxlans=r.ranges(f, "Vxlans", path, VNI_LIMITS, "VNI"),
            networks=tuple(networks),
            endpoint_groups=parse_groups(r, f, name, path),
            policies=parse_policies(r, f, name, path),
            routers=parse_routers(r, f, name, path),
            qos_profiles=parse_profiles(r, f, name, path)))
    return Config(hosts=tuple(hosts), tenants=tuple(tenants)), r.problems


def _reserved_text(r: Reader, fields: dict, path: str) -> str | None:
    """A network's ``Reserved`` as given ("" clears it; None: not given)."""
    value = fields.get("Reserved")
    if value == "":
        return ""
    text = r.string(fields, "Reserved", path)
    return None if text is None else ",".join(p.strip() for p in text.split(","))


def read_json(source: dict | list | str | Path) -> Any:
    """JSON from a parsed value, a JSON string, or a file path; errors become ValidationError.

    Any file content gives one ValidationError naming the file (see :mod:`intent.jsontext`).
    A ``str`` not starting with ``{``/``[`` is a path: never pass untrusted strings.
    """
    if not isinstance(source, (str, Path)):
        return source  # already parsed
    if isinstance(source, Path) or (isinstance(source, str) and not source.lstrip().startswith(
            ("{", "["))):
        path = Path(source)
        try:
            data: bytes | str = path.read_bytes()
        except OSError as exc:
            raise ValidationError(f"{path}: cannot read: {exc.strerror}") from exc
        where = str(path)
    else:
        data, where = source, "document"
    return parse_json(data, where)


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
    r = Reader()
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
