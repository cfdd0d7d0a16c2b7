"""Multicast of a network in an intent document: reading and checking.

``"Multicast": {"Snooping": true, "Groups": [{"Address": "239.1.1.1", "Receivers": ["c1"]}]}``
on a network.  ``Snooping`` off (the default): multicast floods like broadcast.  On: traffic to a
group reaches only its receivers - declared here (container names of endpoints in that network)
or learned from their IGMP reports - and unregistered multicast goes nowhere (link-local
224.0.0.0/24 still floods).  Addresses are IPv4 multicast outside 224.0.0.0/24.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from netaddr import AddrFormatError, IPAddress, IPNetwork

from intent.model import McastGroupConfig, MulticastConfig
from intent.names import name_problem
from intent.reader import Reader

MULTICAST = IPNetwork("224.0.0.0/4")
LINK_LOCAL = IPNetwork("224.0.0.0/24")
Add = Callable[[str], None]


def parse_multicast(r: Reader, fields: dict[str, Any], path: str) -> MulticastConfig | None:
    """A network's ``Multicast`` (None: not given)."""
    if fields.get("Multicast") is None:
        return None
    mpath = f"{path}.Multicast"
    f = r.fields(fields["Multicast"], "multicast", mpath)
    snooping = f.get("Snooping", False)
    if not isinstance(snooping, bool):
        r.problems.append(f"{mpath}.Snooping: expected true or false, got {snooping!r}")
        snooping = False
    groups = []
    for i, raw in enumerate(r.items(f, "Groups", mpath)):
        gpath = f"{mpath}.Groups[{i}]"
        g = r.fields(raw, "mcastgroup", gpath)
        address = r.string(g, "Address", gpath, required=True) or ""
        receivers = g.get("Receivers") or []
        if not isinstance(receivers, list) or not all(isinstance(c, str) for c in receivers):
            r.problems.append(f"{gpath}.Receivers: expected a list of container names")
            receivers = []
        groups.append(McastGroupConfig(address=canonical_group(address),
                                       receivers=tuple(c.strip() for c in receivers)))
    return MulticastConfig(snooping=snooping, groups=tuple(groups))


def canonical_group(text: str) -> str:
    """``text`` as a dotted IPv4 address when it is one (else unchanged, for the check)."""
    try:
        ip = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        return text
    return str(ip) if ip.version == 4 and text.count(".") == 3 else text


def address_problem(text: str) -> str | None:
    """Why ``text`` is no multicast group address we replicate (None: it is one)."""
    try:
        ip = IPAddress(text)
    except (AddrFormatError, ValueError, TypeError):
        ip = None
    if ip is None or ip.version != 4 or text.count(".") != 3:
        return "not an IPv4 address"
    if ip not in MULTICAST:
        return "not a multicast address (224.0.0.0/4)"
    if ip in LINK_LOCAL:
        return "link-local (224.0.0.0/24 always floods)"
    return None


def check_multicast(mc: MulticastConfig | None, label: str, add: Add,
                    containers: set[str] | None) -> None:
    """Addresses, unique per network, and receivers that are containers of the network
    (``containers`` None: unknown here)."""
    if mc is None:
        return
    seen: dict[str, int] = {}
    for i, g in enumerate(mc.groups):
        gl = f"{label}.Multicast.Groups[{i}]"
        why = address_problem(g.address)
        if why:
            add(f'{gl}.Address "{g.address}": {why}')
        elif g.address in seen:
            add(f'{gl}.Address "{g.address}": group listed twice (also '
                f"{label}.Multicast.Groups[{seen[g.address]}])")
        seen.setdefault(g.address, i)
        names: set[str] = set()
        for j, c in enumerate(g.receivers):
            why = name_problem(c)
            if why:
                add(f'{gl}.Receivers[{j}] "{c}": {why}')
            elif c in names:
                add(f'{gl}.Receivers[{j}] "{c}": receiver listed twice')
            elif containers is not None and c not in containers:
                add(f'{gl}.Receivers[{j}] "{c}": no endpoint of container "{c}" in this network')
            names.add(c)


def receiver_ids(network: str, mc: MulticastConfig | None) -> dict[str, set[str]]:
    """Declared receivers as endpoint ids per address."""
    from intent.model import endpoint_id

    return {g.address: {endpoint_id(network, c) for c in g.receivers}
            for g in (mc.groups if mc else ())}


__all__ = ["McastGroupConfig", "MulticastConfig", "address_problem", "check_multicast",
           "parse_multicast", "receiver_ids"]
