"""Endpoint groups and policies in an intent document: reading and checking.

A tenant may carry ``EndpointGroups`` (``Name``, ``Policies``: names of the tenant's policies
applied to its members) and ``Policies`` (``Name``, ``Rules``).  A rule: ``Id`` (unique in its
policy), ``Priority`` 1-100 (higher wins; at equal priority deny wins), ``Direction`` in|out,
``Action`` allow|deny, at most one peer (``FromEndpointGroup`` / ``FromNetwork`` /
``FromIpAddress`` for in, ``ToEndpointGroup`` / ``ToNetwork`` / ``ToIpAddress`` for out),
``Protocol`` tcp|udp|icmp|an IP protocol number, ``Port`` (a number or "a-b", tcp/udp only).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from intent.model import (
    ALLOW,
    DENY,
    IN,
    OUT,
    PEER_GROUP,
    PEER_IP,
    PEER_NETWORK,
    EndpointGroupConfig,
    PolicyConfig,
    RuleConfig,
)
from intent.names import name_problem
from intent.reader import DIGITS, Reader

PRIORITY_LIMITS = (1, 100)
PROTOCOLS = {"tcp": 6, "udp": 17, "icmp": 1}
PEERS = {("From", IN), ("To", OUT)}
PEER_KEYS = {"EndpointGroup": PEER_GROUP, "Network": PEER_NETWORK, "IpAddress": PEER_IP}
Add = Callable[[str], None]


def parse_groups(r: Reader, fields: dict[str, Any], tenant: str,
                 path: str) -> tuple[EndpointGroupConfig, ...]:
    out = []
    for gi, raw in enumerate(r.items(fields, "EndpointGroups", path)):
        gpath = f"{path}.EndpointGroups[{gi}]"
        f = r.fields(raw, "group", gpath)
        policies = None
        if "Policies" in f:
            policies = tuple(_names(r, f.get("Policies"), f"{gpath}.Policies"))
        from intent.qos_doc import parse_ref

        out.append(EndpointGroupConfig(name=r.string(f, "Name", gpath, required=True) or "",
                                       tenant=tenant, policies=policies,
                                       qos_profile=parse_ref(r, f, gpath)))
    return tuple(out)


def _names(r: Reader, value: Any, path: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        r.problems.append(f"{path}: expected a list of policy names")
        return []
    return [v.strip() for v in value]


def parse_policies(r: Reader, fields: dict[str, Any], tenant: str,
                   path: str) -> tuple[PolicyConfig, ...]:
    out = []
    for pi, raw in enumerate(r.items(fields, "Policies", path)):
        ppath = f"{path}.Policies[{pi}]"
        f = r.fields(raw, "policy", ppath)
        rules = None
        if "Rules" in f:
            rules = tuple(rule for ri, rraw in enumerate(r.items(f, "Rules", ppath))
                          if (rule := parse_rule(r, rraw, f"{ppath}.Rules[{ri}]")) is not None)
        out.append(PolicyConfig(name=r.string(f, "Name", ppath, required=True) or "",
                                tenant=tenant, rules=rules))
    return tuple(out)


def parse_rule(r: Reader, raw: Any, path: str) -> RuleConfig | None:
    """One rule, or None when it is too broken to keep (its problems are recorded)."""
    before = len(r.problems)
    f = r.fields(raw, "rule", path)
    rid = r.integer(f, "Id", path)
    if rid is None and "Id" not in f:
        r.problems.append(f"{path}.Id: required")
    prio = r.integer(f, "Priority", path)
    if prio is None and "Priority" not in f:
        r.problems.append(f"{path}.Priority: required")
    elif prio is not None and not PRIORITY_LIMITS[0] <= prio <= PRIORITY_LIMITS[1]:
        r.problems.append(f"{path}.Priority {prio}: outside {PRIORITY_LIMITS[0]}-"
                          f"{PRIORITY_LIMITS[1]}")
    direction = _choice(r, f, "Direction", path, (IN, OUT))
    action = _choice(r, f, "Action", path, (ALLOW, DENY))
    peer_kind, peer = _peer(r, f, path, direction)
    protocol = _protocol(r, f, path)
    port_lo = port_hi = None
    if f.get("Port") not in (None, ""):
        port_lo, port_hi = _port(r, f["Port"], f"{path}.Port")
        if protocol not in ("tcp", "udp"):
            r.problems.append(f'{path}.Port: ports need Protocol tcp or udp (got '
                              f'{protocol or "none"})')
    if len(r.problems) > before:
        return None
    return RuleConfig(id=rid or 0, priority=prio or 0, direction=direction or IN,
                      action=action or DENY, peer_kind=peer_kind, peer=peer,
                      protocol=protocol, port_lo=port_lo, port_hi=port_hi)


def _choice(r: Reader, f: dict, key: str, path: str, allowed: tuple[str, ...]) -> str | None:
    value = r.string(f, key, path, required=True)
    if value is None:
        return None
    if value.lower() not in allowed:
        r.problems.append(f'{path}.{key} "{value}": expected {" or ".join(allowed)}')
        return None
    return value.lower()


def _peer(r: Reader, f: dict, path: str, direction: str | None) -> tuple[str | None, str | None]:
    given = [(side, key, kind) for side, _d in PEERS for key, kind in PEER_KEYS.items()
             if f.get(side + key) not in (None, "")]
    if not given:
        return None, None
    if len(given) > 1:
        names = ", ".join(side + key for side, key, _ in given)
        r.problems.append(f"{path}: at most one peer per rule (got {names})")
        return None, None
    side, key, kind = given[0]
    want = dict(PEERS)[side]
    if direction is not None and direction != want:
        other = "To" if side == "From" else "From"
        r.problems.append(f"{path}.{side}{key}: a peer of {want} rules (this rule is "
                          f"{direction}; use {other}{key})")
        return None, None
    value = r.string(f, side + key, path)
    if value is None:
        return None, None
    if kind == PEER_IP:
        from intent.validate import ipv4, ipv4_net

        net = ipv4_net(value) or (ipv4(value) and ipv4_net(value + "/32"))
        if net is None:
            r.problems.append(f'{path}.{side}{key} "{value}": not an IPv4 CIDR like '
                              f'"11.1.0.0/24"')
            return None, None
        if net.network != net.ip:
            r.problems.append(f'{path}.{side}{key} "{value}": host bits set (did you mean '
                              f'"{net.cidr}"?)')
            return None, None
        return kind, str(net.cidr)
    why = name_problem(value)
    if why:
        r.problems.append(f'{path}.{side}{key} "{value}": {why}')
        return None, None
    return kind, value


def _protocol(r: Reader, f: dict, path: str) -> str | None:
    value = f.get("Protocol")
    if value in (None, ""):
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
    elif isinstance(value, str):
        text = value.strip().lower()
    else:
        r.problems.append(f"{path}.Protocol: expected tcp, udp, icmp or a number, got {value!r}")
        return None
    if text in PROTOCOLS:
        return text
    if DIGITS.fullmatch(text) and 0 <= int(text) <= 255:
        number = int(text)
        return {v: k for k, v in PROTOCOLS.items()}.get(number, str(number))
    r.problems.append(f'{path}.Protocol "{value}": expected tcp, udp, icmp or an IP protocol '
                      f"number 0-255")
    return None


def _port(r: Reader, value: Any, path: str) -> tuple[int | None, int | None]:
    text = str(value).strip() if isinstance(value, (int, str)) and not isinstance(
        value, bool) else None
    parts = text.split("-") if text else []
    if not parts or len(parts) > 2 or not all(DIGITS.fullmatch(p.strip()) for p in parts):
        r.problems.append(f"{path} {value!r}: expected a port number or a range like "
                          f'"5000-5010"')
        return None, None
    lo, hi = int(parts[0]), int(parts[-1])
    if not 1 <= lo <= hi <= 65535:
        r.problems.append(f"{path} {value!r}: ports are 1-65535, the range start not above "
                          f"its end")
        return None, None
    return lo, hi


# --------------------------------------------------------------------------- checks


def check_policy(policy: PolicyConfig, label: str, add: Add, groups: set[str] | None,
                 networks: set[str] | None) -> None:
    """A policy's name, unique rule ids, and its peers' existence (``None``: unknown)."""
    why = name_problem(policy.name)
    if why:
        add(f'{label}.Name "{policy.name}": {why}')
    seen: dict[int, int] = {}
    for i, rule in enumerate(policy.rules or ()):
        where = f"{label}.Rules[{i}]"
        if rule.id in seen:
            add(f"{where}.Id {rule.id}: rule id used twice in policy \"{policy.name}\" (also "
                f"{label}.Rules[{seen[rule.id]}])")
        seen.setdefault(rule.id, i)
        side = "From" if rule.direction == IN else "To"
        if rule.peer_kind == PEER_GROUP and groups is not None and rule.peer not in groups:
            add(f'{where}.{side}EndpointGroup "{rule.peer}": no such endpoint group in '
                f'tenant "{policy.tenant}"')
        if rule.peer_kind == PEER_NETWORK and networks is not None and rule.peer not in networks:
            add(f'{where}.{side}Network "{rule.peer}": no such network in tenant '
                f'"{policy.tenant}"')


def check_group(group: EndpointGroupConfig, label: str, add: Add,
                policies: set[str] | None) -> None:
    """A group's name and that the policies it applies exist (``None``: unknown)."""
    why = name_problem(group.name)
    if why:
        add(f'{label}.Name "{group.name}": {why}')
    for i, p in enumerate(group.policies or ()):
        if policies is not None and p not in policies:
            add(f'{label}.Policies[{i}] "{p}": no such policy in tenant "{group.tenant}"')
