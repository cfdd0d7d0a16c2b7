"""QoS profiles in an intent document: reading and checking.

A tenant may carry ``QosProfiles``: ``{"Name": "gold", "Bandwidth": 10000, "Burst": 1000,
"Dscp": 46}``.  ``Bandwidth`` is in kbit/s (a number, or text like ``"10mbps"``, ``"500kbps"``,
``"1gbps"``), ``Burst`` in kbit (it needs a Bandwidth), ``Dscp`` 0-63; each is optional but a
profile sets Bandwidth or Dscp.  A profile is attached with ``"QosProfile": "gold"`` on an
endpoint group, a network or an endpoint (of the same tenant); the most specific wins
(endpoint, then its group, then its network).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from intent.model import QosProfileConfig
from intent.names import name_problem
from intent.reader import Reader

BANDWIDTH_MAX = 100_000_000  # kbit/s (100 Gbit/s)
BURST_MAX = 100_000_000  # kbit
DSCP_MAX = 63
UNITS = {"kbps": 1, "mbps": 1000, "gbps": 1000_000}
RATE = re.compile(r"([0-9]{1,12})\s*(kbps|mbps|gbps)?", re.IGNORECASE)
Add = Callable[[str], None]


def parse_profiles(r: Reader, fields: dict[str, Any], tenant: str,
                   path: str) -> tuple[QosProfileConfig, ...]:
    """The tenant's ``QosProfiles`` (problems recorded with their paths)."""
    out = []
    for i, raw in enumerate(r.items(fields, "QosProfiles", path)):
        ppath = f"{path}.QosProfiles[{i}]"
        f = r.fields(raw, "qosprofile", ppath)
        out.append(QosProfileConfig(name=r.string(f, "Name", ppath, required=True) or "",
                                    tenant=tenant,
                                    bandwidth=bandwidth(r, f.get("Bandwidth"),
                                                        f"{ppath}.Bandwidth"),
                                    burst=_number(r, f, "Burst", ppath),
                                    dscp=_number(r, f, "Dscp", ppath)))
    return tuple(out)


def bandwidth(r: Reader, value: Any, path: str) -> int | None:
    """``value`` in kbit/s: an integer, or ``"<n>kbps|mbps|gbps"``."""
    if value is None or value == "":
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str):
        m = RATE.fullmatch(value.strip())
        if m:
            return int(m.group(1)) * UNITS[(m.group(2) or "kbps").lower()]
    r.problems.append(f'{path} {value!r}: expected kbit/s as a number or text like "10mbps" '
                      f'or "500kbps"')
    return None


def _number(r: Reader, f: dict, key: str, path: str) -> int | None:
    value = f.get(key)
    if isinstance(value, int) and not isinstance(value, bool) and value < 0:
        r.problems.append(f"{path}.{key} {value}: must not be negative")
        return None
    return r.integer(f, key, path)


def parse_ref(r: Reader, fields: dict[str, Any], path: str) -> str | None:
    """An object's ``QosProfile`` reference: None when not given, "" when explicitly none."""
    if "QosProfile" not in fields:
        return None
    return r.string(fields, "QosProfile", path) or ""


# --------------------------------------------------------------------------- checks


def check_profile(p: QosProfileConfig, label: str, add: Add, complete: bool = True) -> None:
    """A profile's name and values (one of Bandwidth and Dscp required; a partial document may
    leave both to the stored profile)."""
    why = name_problem(p.name)
    if why:
        add(f'{label}.Name "{p.name}": {why}')
    if complete and p.bandwidth is None and p.dscp is None:
        add(f'{label}: QoS profile "{p.name}" sets neither Bandwidth nor Dscp (give at least '
            f"one)")
    if p.bandwidth is not None and not 1 <= p.bandwidth <= BANDWIDTH_MAX:
        add(f"{label}.Bandwidth {p.bandwidth}: must be 1-{BANDWIDTH_MAX} kbit/s")
    if p.burst is not None:
        if p.bandwidth is None and complete:
            add(f"{label}.Burst {p.burst}: a burst needs a Bandwidth")
        elif not 1 <= p.burst <= BURST_MAX:
            add(f"{label}.Burst {p.burst}: must be 1-{BURST_MAX} kbit")
    if p.dscp is not None and not 0 <= p.dscp <= DSCP_MAX:
        add(f"{label}.Dscp {p.dscp}: must be 0-{DSCP_MAX}")


def check_ref(profile: str | None, label: str, tenant: str, known: set[str] | None,
              add: Add) -> None:
    """A ``QosProfile`` reference names a profile of ``tenant`` (``known`` None: unknown)."""
    if not profile:
        return
    why = name_problem(profile)
    if why:
        add(f'{label}.QosProfile "{profile}": {why}')
    elif known is not None and profile not in known:
        add(f'{label}.QosProfile "{profile}": no such QoS profile in tenant "{tenant}"')
