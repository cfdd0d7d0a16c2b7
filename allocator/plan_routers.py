"""Planning of routers (a mixin of :class:`allocator.plan.Planner`).

A router gets an id from the global ``router`` pool: its routing domain, carried in metadata.
The tenant index records each router's networks, so a write checks "one network on one router"
and that a network on a router is not deleted from under it, without reading other routers.
"""

from __future__ import annotations

from typing import Any

from allocator.plan_groups import POOLS, _load_id
from allocator.reads import UNKNOWN
from intent import codec, keys
from intent.model import RouterConfig, RouterSpec
from intent.router_doc import check_router

POOLS.setdefault("router", (keys.alloc_router_id, 1, 0xFFFF))


class RouterPlanning:
    """Mixin: needs the Planner's ``d``, ``problems``, ``index``, ``global_id``, ``_put``..."""

    d: Any
    problems: list[str]

    def final_routers(self, tenant: str) -> dict[str, dict]:
        routers = dict(self.index(tenant).get("routers", {}))
        for (t, r), (_old, new) in self.d.routers.items():
            if t == tenant:
                if new is None:
                    routers.pop(r, None)
                else:
                    routers[r] = {**routers.get(r, {}), "networks": list(new.networks or ()),
                                  "external_network": new.external_network}
        return routers

    def plan_routers(self) -> None:
        tenants = {t for t, _ in self.d.routers} | {
            (new or old).tenant for old, new in self.d.networks.values() if new is None}
        for t in sorted(tenants):
            if self.d.tenants.get(t, (None, True))[1] is None:
                continue
            networks = self.final_networks(t)
            routers = self.final_routers(t)
            taken = {n: name for name, v in sorted(routers.items()) for n in v["networks"]}
            for (tt, name), (_old, new) in sorted(self.d.routers.items()):
                if tt == t and new is not None:
                    others = {n: other for other, v in sorted(routers.items())
                              if other != name for n in v["networks"]}
                    for other, v in routers.items():
                        ext = v.get("external_network")
                        if other != name and ext and ext in (new.networks or ()):
                            self.problems.append(
                                f'{self.d.label("router", f"{t}/{name}")}.Networks "{ext}": is '
                                f'the external network of router "{other}"')
                    check_router(new, self.d.label("router", f"{t}/{name}"),
                                 self.problems.append, networks, others)
            gone = {n for n, (old, new) in self.d.networks.items()
                    if new is None and old is not None and old.tenant == t}
            for n in sorted(gone):
                if n in taken:
                    self.problems.append(f'network "{n}" of tenant "{t}": is on router '
                                         f'"{taken[n]}" (take it off the router in the same '
                                         f"write)")
                for name, v in routers.items():
                    if v.get("external_network") == n:
                        self.problems.append(f'network "{n}" of tenant "{t}": is the external '
                                             f'network of router "{name}"')
        for (t, name), (_old, new) in sorted(self.d.routers.items()):
            self._router(t, name, new)

    def _router(self, tenant: str, name: str, new: RouterConfig | None) -> None:
        idx = self.index(tenant)
        kv = self._lookup(keys.state_router(tenant, name))
        if kv is UNKNOWN:
            return
        old_id = _load_id(kv)
        if new is None:
            self._delete(keys.router(tenant, name))
            self._delete(keys.state_router(tenant, name))
            if old_id:
                self.release_id("router", old_id)
            idx.setdefault("routers", {}).pop(name, None)
            return
        rid = self.global_id("router", f"{tenant}/{name}", old_id)
        if rid is None:
            return
        spec = RouterSpec(tenant=tenant, name=name, id=rid, networks=tuple(new.networks or ()),
                          external_network=new.external_network, external_ip=new.external_ip,
                          gateway_host=new.gateway_host)
        self._put(keys.router(tenant, name), codec.dumps(new))
        self._put(keys.state_router(tenant, name), codec.dumps(spec))
        idx.setdefault("routers", {})[name] = {"id": rid, "networks": list(spec.networks),
                                               "external_network": spec.external_network}
