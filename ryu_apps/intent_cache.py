"""The controller's in-memory view of the store: resolved intent plus the agents' oper keys.

Pure (no I/O): fed with a snapshot, then with watch events.  Each event reports which hosts it
can change, so only those are recomputed.  ``None`` means "every host".
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass

from intent import keys
from intent.codec import loads
from intent.model import EndpointSpec, ResolvedIntent
from intent.resolved import resolved_from_snapshot
from intent.store import Event, KeyValue, Snapshot

LOG = logging.getLogger(__name__)

# Keys whose changes the controller ignores entirely (its own output, or not intent at all):
# they neither advance the intent revision nor trigger recomputation.
IGNORED_PREFIXES = (keys.OPER_REALIZED,)
# Keys the resolved intent is built from (see ``intent.apply.resolved_from_snapshot``).
KEPT_PREFIXES = (keys.STATE, keys.CONFIG_HOSTS, keys.OPER_HOSTS)


@dataclass(frozen=True)
class Ports:
    """A host's port numbers as its agent reported them (the input of ``HostPorts``)."""

    endpoint_ports: tuple[tuple[str, int], ...]
    vxlan_port: int | None
    uplink_port: int | None


class IntentCache:
    """State networks/endpoints, config tenants, oper hosts/endpoints, and the revision."""

    def __init__(self) -> None:
        self.revision = 0
        self.items: dict[str, KeyValue] = {}
        self.endpoints: dict[str, EndpointSpec] = {}
        self.hosts: dict[str, dict] = {}  # oper registration JSON
        self.plugged: dict[str, dict] = {}  # oper endpoint JSON
        self._net_hosts: dict[str, Counter[str]] = {}
        self._resolved: ResolvedIntent | None = None

    # ------------------------------------------------------------------ loading

    def load(self, snap: Snapshot) -> None:
        """Replace everything with a snapshot of the whole ``/netplugin/`` prefix."""
        self.__init__()  # type: ignore[misc]
        for kv in snap.items.values():
            self._set(kv.key, kv.value)
        self.revision = snap.revision

    def apply(self, ev: Event) -> set[str] | None:
        """Apply one watch event; returns the hosts it affects (``None``: all of them)."""
        if ev.key.startswith(IGNORED_PREFIXES):
            return set()
        self.revision = max(self.revision, ev.mod_revision)
        before = self._touching(ev.key)
        if before is None:
            affected = None
        else:
            self._set(ev.key, ev.value if ev.type == "put" else None)
            after = self._touching(ev.key)
            affected = None if after is None else before | after
        if affected is None:
            self._set(ev.key, ev.value if ev.type == "put" else None)
        return affected

    def _touching(self, key: str) -> set[str] | None:
        """Hosts whose switch depends on ``key`` as the cache holds it now."""
        name = keys.last_segment(key)
        if key.startswith(keys.STATE_NETWORKS):
            return None  # a network may have flows on every host (uplink, BUM)
        if key.startswith(keys.STATE_ENDPOINTS):
            ep = self.endpoints.get(name)
            if ep is None:
                return set()
            out = set(self._net_hosts.get(ep.network, ()))
            if ep.host:
                out.add(ep.host)
            return out
        if key.startswith((keys.OPER_HOSTS, keys.CONFIG_HOSTS)):
            out = {name}
            for hosts in self._net_hosts.values():
                if name in hosts:
                    out |= set(hosts)
            return out
        if key.startswith(keys.OPER_ENDPOINTS):
            p = self.plugged.get(name)
            return {p["host"]} if p and p.get("host") else set()
        return set()

    def _set(self, key: str, value: str | None) -> None:
        name = keys.last_segment(key)
        if key.startswith(KEPT_PREFIXES):
            self._store(self.items, key, value and KeyValue(key, value))
            self._resolved = None
        try:
            if key.startswith(keys.STATE_ENDPOINTS):
                old = self.endpoints.get(name)
                if old and old.host:
                    self._net_hosts[old.network][old.host] -= 1
                    if self._net_hosts[old.network][old.host] <= 0:
                        del self._net_hosts[old.network][old.host]
                new = value and loads(EndpointSpec, value)
                if new and new.host:
                    self._net_hosts.setdefault(new.network, Counter())[new.host] += 1
                self._store(self.endpoints, name, new)
            elif key.startswith(keys.OPER_HOSTS):
                self._store(self.hosts, name, value and json.loads(value))
            elif key.startswith(keys.OPER_ENDPOINTS):
                self._store(self.plugged, name, value and json.loads(value))
            else:
                return
        except (ValueError, TypeError, KeyError) as exc:
            LOG.warning("ignoring malformed value at %s: %s", key, exc)
            return
        self._resolved = None

    @staticmethod
    def _store(d: dict, name: str, value: object) -> None:
        if value:
            d[name] = value
        else:
            d.pop(name, None)

    # ------------------------------------------------------------------ queries

    def resolved(self) -> ResolvedIntent:
        """The resolved intent at :attr:`revision` (memoised until the next change)."""
        if self._resolved is None or self._resolved.revision != self.revision:
            self._resolved = resolved_from_snapshot(Snapshot(self.revision, dict(self.items)))
        return self._resolved

    def ports(self, host: str) -> Ports:
        """Port numbers of ``host`` from its registration and its plugged endpoints."""
        reg = self.hosts.get(host, {})
        eps = tuple(sorted((ep_id, int(p["ofport"])) for ep_id, p in self.plugged.items()
                           if p.get("host") == host and p.get("ofport") is not None))
        return Ports(eps, reg.get("vxlan_ofport"), reg.get("uplink_ofport"))

    def host_for_dpid(self, dpid: int) -> str | None:
        """The host whose agent registered datapath id ``dpid``."""
        for name, reg in self.hosts.items():
            if reg.get("dpid") == dpid:
                return name
        return None
