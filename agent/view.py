"""The agent's live view of the intent: read once, then kept current by the watch.

A reconcile pass used to read every endpoint and network of the store, and every watch event
(of any host) started one, so each change cost every agent the whole store.  The view holds
the decoded state and this host's oper keys; an event updates one entry and says whether it
concerns this host (an endpoint bound here now or before, a network one of them is in, an oper
key of this host), so only those start a pass.

Unknown is not absent: a value that cannot be decoded makes its endpoint (or every endpoint of
its network) *unknown*: the plan leaves what is plugged for it as it is, and a value that can be
decoded again heals it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from intent import codec, keys
from intent.model import EndpointSpec, NetworkSpec
from intent.store import Event, KeyValue

LOG = logging.getLogger(__name__)
PREFIXES = (keys.STATE_ENDPOINTS, keys.STATE_NETWORKS, keys.OPER_ENDPOINTS)


@dataclass
class Decoded:
    """State decoded from store keys: endpoints, networks, and what could not be decoded."""

    endpoints: dict[str, EndpointSpec] = field(default_factory=dict)
    networks: dict[str, NetworkSpec] = field(default_factory=dict)
    bad_endpoints: set[str] = field(default_factory=set)
    bad_networks: set[str] = field(default_factory=set)

    def set(self, key: str, value: str | None) -> None:
        name = keys.last_segment(key)
        if key.startswith(keys.STATE_ENDPOINTS):
            table, bad, cls = self.endpoints, self.bad_endpoints, EndpointSpec
        elif key.startswith(keys.STATE_NETWORKS):
            table, bad, cls = self.networks, self.bad_networks, NetworkSpec
        else:
            return
        bad.discard(name)
        if value is None:
            table.pop(name, None)
            return
        try:
            table[name] = codec.loads(cls, value)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            if name not in bad:
                LOG.warning("intent %s: cannot decode: %s (what it had stays as it is)", key, exc)
            bad.add(name)

    def unknown(self) -> frozenset[str]:
        """Endpoint ids whose intent is unreadable (their own value, or their network's)."""
        return frozenset(self.bad_endpoints) | frozenset(
            e.id for e in self.endpoints.values() if e.network in self.bad_networks)


def oper_of(value: str | None, host: str) -> dict | None:
    """An oper endpoint value when it says the endpoint is plugged on ``host``."""
    try:
        val = json.loads(value or "null")
    except ValueError:
        return None
    return val if isinstance(val, dict) and val.get("host") == host else None


class IntentView:
    """What this host's reconcile passes plan from; see the module docstring."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.state = Decoded()
        self.oper: dict[str, dict] = {}
        self.revision = 0  # the newest revision applied
        self._mine: Counter[str] = Counter()  # network -> this host's endpoints in it

    def load(self, items: Iterable[KeyValue], revision: int) -> None:
        """Start afresh from a snapshot of :data:`PREFIXES` taken at ``revision``."""
        self.state, self.oper, self._mine = Decoded(), {}, Counter()
        for kv in items:
            self._set(kv.key, kv.value)
        self.revision = revision

    def apply(self, ev: Event) -> bool:
        """One watch event (of a watch that follows the snapshot, through a
        :class:`~intent.consistent.WatchGate`); True when it concerns this host."""
        self.revision = max(self.revision, ev.mod_revision)
        return self._set(ev.key, ev.value if ev.type == "put" else None)

    def passed(self, revision: int) -> None:
        """The watch delivered everything up to ``revision`` (other keys included)."""
        self.revision = max(self.revision, revision)

    def _set(self, key: str, value: str | None) -> bool:
        name = keys.last_segment(key)
        if key.startswith(keys.OPER_ENDPOINTS):
            mine = oper_of(value, self.host)
            self.oper.pop(name, None)
            if mine is not None:
                self.oper[name] = mine
            return False  # this host's agent wrote it (or is told by its own next pass)
        if key.startswith(keys.STATE_NETWORKS):
            bad = name in self.state.bad_networks
            self.state.set(key, value)
            return bool(self._mine[name]) or bad or name in self.state.bad_networks
        if not key.startswith(keys.STATE_ENDPOINTS):
            return False
        old = self.state.endpoints.get(name)
        was_bad = name in self.state.bad_endpoints
        self.state.set(key, value)
        new = self.state.endpoints.get(name)
        for ep, step in ((old, -1), (new, 1)):
            if ep is not None and ep.host == self.host:
                self._mine[ep.network] += step
        here = any(ep is not None and ep.host == self.host for ep in (old, new))
        return here or was_bad or name in self.state.bad_endpoints
