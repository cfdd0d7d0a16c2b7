"""Planning of automatic endpoint addresses through each network's pool index (a mixin of
:class:`allocator.plan.Planner`).

``alloc/pool/<net>`` holds ``next``: every address below it is taken (or reserved), so an
allocation reads the owner keys of a few candidates from there, never the network's whole set
of used addresses; the network's ``Reserved`` ranges are skipped whole.  A released address
lowers ``next`` again.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from allocator.pools import ip_int, ip_str, subnet_bounds
from allocator.reads import UNKNOWN, load_json
from intent import codec, keys
from intent.errors import PoolExhausted
from intent.ipam_doc import reserved_end, reserved_ranges
from intent.model import EndpointConfig, EndpointSpec, NetworkConfig, NetworkSpec

CANDIDATES = 8  # addresses read beyond those a write needs, for a lucky single round trip
SCAN_ABOVE = 64  # more auto addresses than this in one network: read its whole IP prefix


class PoolPlanning:
    """Mixin: needs the Planner's ``d``, ``r``, ``need``, ``pools``, ``taken``, ``released``,
    ``_lookup``, ``_put``, ``_delete``, ``_claim``."""

    d: Any
    r: Any
    need: Any
    pools: dict[str, dict]
    taken: dict[str, set[int]]
    released: dict[str, set[int]]

    def _pool(self, network: str, first: int) -> dict:
        if network not in self.pools:
            if self._lookup(keys.ip_pool(network)) is UNKNOWN:
                return {"next": first + 1}
            self.pools[network] = load_json(self.r, keys.ip_pool(network), {"next": first + 1})
        pool = self.pools[network]
        if pool.get("next", 0) <= first:
            pool["next"] = first + 1
        return pool

    def _pending_autos(self) -> dict[str, int]:
        """Endpoints of the delta that need an address, per network (counted once a pass)."""
        counts = self.__dict__.get("_pending_counts")
        if counts is None:
            counts = Counter(e[1].network for e in self.d.endpoints.values()
                             if e[1] is not None and not e[1].ip_address)
            self.__dict__["_pending_counts"] = counts
        return counts

    def _auto(self, ep: EndpointConfig, old: EndpointSpec | None, net: NetworkConfig,
              spec: NetworkSpec, label: str) -> int | None:
        first, last = subnet_bounds(spec.subnet)
        gateway = ip_int(spec.gateway) if spec.gateway else None
        pool = self._pool(spec.name, first)
        taken = self.taken.setdefault(spec.name, set())
        released = self.released.get(spec.name, set())
        prefix = keys.alloc_ip_prefix(spec.name)
        candidate = pool["next"]
        wanted: set[str] = set()
        reserved = reserved_ranges(net.reserved)
        while candidate < last:
            if candidate == gateway or candidate in taken:
                candidate += 1
                continue
            end = reserved_end(reserved, candidate) if reserved else None
            if end is not None:  # never handed out: skip the whole range
                candidate = end + 1
                continue
            key = prefix + ip_str(candidate)
            kv = self.r.lookup(key)
            if kv is UNKNOWN and self.r.optimistic:
                # every address from ``next`` on is usually free: claim it unread, on the
                # condition (compared in the transaction) that its owner key is still absent
                self.r.assume_absent(key)
                kv = None
            if kv is UNKNOWN:
                wanted.add(key)
                break
            if kv is None or candidate in released:
                pool["next"] = candidate + 1  # everything below is taken now
                return self._claim(spec.name, candidate, ep, label, old)
            candidate += 1
        else:
            raise PoolExhausted(f'network "{spec.name}" subnet {spec.subnet}')
        asked = self.__dict__.setdefault("_asked_pools", set())
        if spec.name in asked:  # this pass already asked for the network's candidates
            return None
        asked.add(spec.name)
        pending = self._pending_autos().get(spec.name, 0)
        if pending > SCAN_ABOVE:
            self.need.prefixes.add(prefix)
        else:
            self.need.keys.update(prefix + ip_str(a) for a in
                                  range(candidate, min(last, candidate + pending + CANDIDATES)))
        return None

    def _release(self, network: str, ip: str) -> None:
        self._delete(keys.alloc_ip(network, ip))
        self.released.setdefault(network, set()).add(ip_int(ip))
        if self._network_goes(network):
            return
        if network not in self.pools:
            if self._lookup(keys.ip_pool(network)) is UNKNOWN:
                return
            self.pools[network] = load_json(self.r, keys.ip_pool(network), {})
        pool = self.pools[network]
        pool["next"] = min(pool.get("next", ip_int(ip)), ip_int(ip))

    def _network_goes(self, network: str) -> bool:
        return network in self.d.networks and self.d.networks[network][1] is None

    def _finish_pools(self) -> None:
        """Advance each pool's ``next`` past the addresses this write took; write it."""
        for network, pool in self.pools.items():
            if self._network_goes(network) or "next" not in pool:
                continue
            taken = self.taken.get(network, set())
            nxt = pool.get("next", 0)
            while nxt in taken:
                nxt += 1
            self._put(keys.ip_pool(network), codec.dumps({"next": nxt}))
