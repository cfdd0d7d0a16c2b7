"""Realized revisions in the store: how any reader tells which intent revision a host's switch
holds, though the controller rewrites a host's key only when the host falls behind or catches
up (not on every change made elsewhere).

``/netplugin/oper/realized/<host>`` = ``{"revision": R, "current": C, "by": I}``
``/netplugin/oper/applied/<I>``     = ``{"revision": A, "controller": NAME}``

``I`` is one controller process (a fresh id per start).  With ``current`` false the switch
holds every change up to ``R`` that affects it, and not yet the next one.  With ``current``
true it also holds every change process ``I`` has applied since: its realized revision is
``max(R, A)``.  The controller marks a host not current before it publishes an applied revision
that host has not realized, and marks it not current when its switch goes away; an applied key
that no longer exists counts as nothing (``R`` alone).  A value without ``current`` (an older
controller's) reads as not current.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from intent import keys
from intent.store import Snapshot


def realized_value(revision: int, current: bool, instance: str) -> str:
    """The value of a host's realized key."""
    return json.dumps({"revision": revision, "current": current, "by": instance})


def applied_value(revision: int, controller: str) -> str:
    """The value of a controller process's applied key."""
    return json.dumps({"revision": revision, "controller": controller})


def _load(value: str | None) -> dict[str, Any]:
    try:
        out = json.loads(value or "{}")
    except ValueError:
        return {}
    return out if isinstance(out, dict) else {}


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def applied_revisions(items: Mapping[str, str | None]) -> dict[str, int]:
    """``{process: applied revision}`` from ``{key: value}`` (other keys are ignored)."""
    return {keys.last_segment(k): _int(_load(v).get("revision")) for k, v in items.items()
            if k.startswith(keys.OPER_APPLIED)}


def realized_of(value: str | None, applied: Mapping[str, int]) -> int:
    """The revision a host realized, from its realized key's ``value`` (None: no key) and the
    applied revisions of the controller processes (:func:`applied_revisions`)."""
    v = _load(value)
    revision = _int(v.get("revision"))
    if v.get("current") is True:
        return max(revision, applied.get(str(v.get("by")), 0))
    return revision


def is_current(value: str | None) -> bool:
    """Whether a realized key's value says its host caught up (realized all its process
    applied)."""
    return _load(value).get("current") is True


def applied_controller(value: str | None) -> str | None:
    """The controller named by an applied key's value (None: unknown)."""
    name = _load(value).get("controller")
    return name if isinstance(name, str) else None


def written_by(value: str | None) -> str | None:
    """The controller process that wrote a realized key's value (None: unknown)."""
    by = _load(value).get("by")
    return by if isinstance(by, str) else None


def realized_hosts(items: Mapping[str, str | None]) -> dict[str, int]:
    """``{host: realized revision}`` from ``{key: value}`` holding the realized and applied
    prefixes (e.g. one read of both)."""
    applied = applied_revisions(items)
    return {keys.last_segment(k): realized_of(v, applied) for k, v in items.items()
            if k.startswith(keys.OPER_REALIZED)}


def realized_in(snap: Snapshot) -> dict[str, int]:
    """:func:`realized_hosts` of a store snapshot (one read of both prefixes)."""
    return realized_hosts({k: kv.value for k, kv in snap.items.items()})
