"""A network's IPAM backend and reserved ranges in an intent document: reading and checking.

``"Ipam": "builtin"`` (the default: the write path allocates) or ``"Ipam": {"Type": "cni",
"Plugin": "host-local", "Config": {…}, "Hosts": {"host1": {…}}}``: the address of an endpoint
without a static ``IpAddress`` comes from that CNI IPAM plugin, called on the endpoint's host when
it is plugged.  ``Config`` is the plugin's ``ipam`` object without ``type`` (when it names neither
``subnet`` nor ``ranges`` the network's subnet is passed); ``Hosts`` holds per-host objects merged
over ``Config`` on that host (each host its own range, its own ``dataDir``).

``"Reserved": "11.1.0.1-11.1.0.50,11.1.0.99"``: addresses machines outside netplugin already use;
the allocator never hands them out, a plugin's address inside them is refused, and a static
``IpAddress`` inside them needs ``"Reserved": true`` on its endpoint.
"""

from __future__ import annotations

import bisect
import json
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from netaddr import AddrFormatError, IPAddress, IPNetwork

from intent.model import BUILTIN, CNI, IpamConfig, NetworkConfig
from intent.names import name_problem
from intent.reader import Reader

Add = Callable[[str], None]
IPAM_TYPES = (BUILTIN, CNI)
PLUGIN_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # a file name on the CNI path
Ranges = tuple[tuple[int, int], ...]


def canonical(value: Any) -> str:
    """Canonical JSON text (sorted keys, no spaces)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def parse_ipam(r: Reader, fields: dict[str, Any], path: str) -> IpamConfig | None:
    """A network's ``Ipam`` (None: not given); problems name ``<path>.Ipam…``."""
    raw = fields.get("Ipam")
    if raw is None:
        return None
    where = f"{path}.Ipam"
    if isinstance(raw, str):
        if raw.strip().lower() == BUILTIN:
            return IpamConfig()
        r.problems.append(f'{where} "{raw}": expected "builtin" or an object like '
                          f'{{"Type": "cni", "Plugin": "host-local", "Config": {{...}}}}')
        return None
    if not isinstance(raw, dict):
        r.problems.append(f'{where}: expected "builtin" or an object, got {raw!r}')
        return None
    f = r.fields(raw, "ipam", where)
    typ = (r.string(f, "Type", where) or BUILTIN).lower()
    if typ not in IPAM_TYPES:
        r.problems.append(f'{where}.Type "{typ}": unknown IPAM type (expected builtin or cni)')
        return None
    plugin = r.string(f, "Plugin", where)
    config, hosts = f.get("Config"), f.get("Hosts")
    if typ == BUILTIN:
        extra = [k for k in ("Plugin", "Config", "Hosts") if f.get(k) is not None]
        if extra:
            r.problems.append(f"{where}.{extra[0]}: only for Type cni")
        return IpamConfig()
    if plugin is None:
        if "Plugin" not in f:
            r.problems.append(f"{where}.Plugin: required for Type cni (e.g. \"host-local\")")
        return None
    if not PLUGIN_RE.fullmatch(plugin):
        r.problems.append(f'{where}.Plugin "{plugin}": not a plugin file name (letters, '
                          f"digits, '_', '.', '-')")
        return None
    config = {} if config is None else config
    if not isinstance(config, dict):
        r.problems.append(f"{where}.Config: expected an object (the plugin's ipam settings), "
                          f"got {config!r}")
        return None
    if config.get("type", plugin) != plugin:
        r.problems.append(f'{where}.Config.type "{config["type"]}": disagrees with Plugin '
                          f'"{plugin}" (leave it out)')
        return None
    hosts = {} if hosts is None else hosts
    if not isinstance(hosts, dict) or not all(isinstance(v, dict) for v in hosts.values()):
        r.problems.append(f'{where}.Hosts: expected an object of host name -> settings, like '
                          f'{{"host1": {{"dataDir": "/var/lib/cni/h1"}}}}')
        return None
    for host in hosts:
        why = name_problem(str(host))
        if why:
            r.problems.append(f'{where}.Hosts "{host}": {why}')
    return IpamConfig(type=CNI, plugin=plugin,
                      config=canonical({k: v for k, v in config.items() if k != "type"}),
                      hosts=canonical(hosts))


def parse_reserved_flag(r: Reader, fields: dict[str, Any], path: str) -> bool | None:
    """An endpoint's ``Reserved`` (None: not given)."""
    value = fields.get("Reserved")
    if value is None:
        return None
    if not isinstance(value, bool):
        r.problems.append(f"{path}.Reserved: expected true or false, got {value!r}")
        return None
    return value


def plugin_settings(ipam: IpamConfig, host: str, subnet: str, gateway: str | None) -> dict:
    """The ``ipam`` object handed to the plugin on ``host`` (``type`` included)."""
    settings = json.loads(ipam.config)
    settings.update(json.loads(ipam.hosts).get(host, {}))
    if "subnet" not in settings and "ranges" not in settings and ipam.plugin == "host-local":
        rng = {"subnet": subnet} | ({"gateway": gateway} if gateway else {})
        settings["ranges"] = [[rng]]
    settings["type"] = ipam.plugin
    return settings


# --------------------------------------------------------------------------- reserved ranges


def parse_reserved(text: str) -> tuple[Ranges, list[str]]:
    """``"a-b,c"`` -> (sorted inclusive integer ranges, problems)."""
    ranges: list[tuple[int, int]] = []
    problems: list[str] = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        bounds = [b.strip() for b in part.split("-")]
        if len(bounds) == 1:
            bounds *= 2
        try:
            if len(bounds) != 2 or not all(b.count(".") == 3 for b in bounds):
                raise ValueError
            lo, hi = (IPAddress(b, 4) for b in bounds)
        except (AddrFormatError, ValueError):
            problems.append(f'"{part}" is not an IPv4 address or range like '
                            f'"11.1.0.1-11.1.0.50"')
            continue
        if lo > hi:
            problems.append(f'range "{part}": start is above its end')
            continue
        ranges.append((int(lo), int(hi)))
    ranges.sort()
    for (alo, ahi), (blo, bhi) in zip(ranges, ranges[1:], strict=False):
        if blo <= ahi:
            problems.append(f"ranges {IPAddress(alo)}-{IPAddress(ahi)} and "
                            f"{IPAddress(blo)}-{IPAddress(bhi)} overlap")
    return tuple(ranges), problems


@lru_cache(maxsize=256)
def reserved_ranges(text: str | None) -> Ranges:
    """The valid ranges of a stored ``Reserved`` value (checked when it was written)."""
    return parse_reserved(text)[0] if text else ()


def reserved_end(ranges: Ranges, value: int) -> int | None:
    """The last address of the reserved range holding ``value`` (None: not reserved)."""
    i = bisect.bisect_right(ranges, (value, 1 << 33)) - 1
    if i >= 0 and ranges[i][0] <= value <= ranges[i][1]:
        return ranges[i][1]
    return None


def check_reserved(net: NetworkConfig, subnet: IPNetwork | None, label: str,
                            add: Add) -> None:
    """A network's ``Reserved`` ranges lie in its subnet and do not overlap."""
    if not net.reserved:
        return
    where = f'{label}.Reserved "{net.reserved}"'
    ranges, problems = parse_reserved(net.reserved)
    for p in problems:
        add(f"{where}: {p}")
    if subnet is None:
        return
    for lo, hi in ranges:
        if lo < subnet.first or hi > subnet.last:
            add(f"{where}: {IPAddress(lo)}-{IPAddress(hi)} is outside the network's subnet "
                f"{subnet.cidr}")


def reserved_problem(net: NetworkConfig, ip: int) -> str | None:
    """Why a static address may not be used without ``"Reserved": true`` (None: it may)."""
    if reserved_end(reserved_ranges(net.reserved), ip) is None:
        return None
    return (f'is in the network\'s Reserved ranges ({net.reserved}); give the endpoint '
            f'"Reserved": true to use it')
