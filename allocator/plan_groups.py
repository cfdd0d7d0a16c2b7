"""Planning of endpoint groups, policies, group membership and global id pools (a mixin of
:class:`allocator.plan.Planner`).

The tenant index (``alloc/tenant/<t>``) knows the tenant's groups (id and applied policies) and
policies (the groups and networks their rules name), so a write checks every reference of the
tenant without reading its other objects.  Group membership is counted per group
(``alloc/members/<t>/<g>``): a group still used by endpoints cannot go, unless they go (or move)
in the same write.  Group ids and conntrack zones come from global pools: an owner key per id
and a hint of the lowest maybe-free id (``alloc/next/<pool>``).
"""

from __future__ import annotations

from typing import Any

from allocator.reads import UNKNOWN, load_json
from intent import codec, keys
from intent.errors import PoolExhausted
from intent.model import PEER_GROUP, PEER_NETWORK, EndpointGroupSpec, EndpointSpec
from intent.policy_doc import check_group, check_policy

POOLS = {"groupid": (keys.alloc_group_id, 1, 0xFFFF), "zone": (keys.alloc_zone, 1, 0xFFFF)}


class GroupPlanning:
    """Mixin: needs the Planner's ``d``, ``r``, ``need``, ``problems``, ``_lookup``, ``_put``,
    ``_delete``, ``index``."""

    d: Any
    r: Any
    need: Any
    problems: list[str]

    # ------------------------------------------------------------------ global pools
    def global_id(self, pool: str, owner: str, old: int | None) -> int | None:
        """Keep ``old`` when ``owner`` holds it, else the lowest free id of ``pool``."""
        key_of, lo, hi = POOLS[pool]
        claimed = self.__dict__.setdefault("_claimed_ids", {}).setdefault(pool, set())
        if old:
            kv = self._lookup(key_of(old))
            if kv is UNKNOWN:  # assumed kept for this pass (it asks for the key anyway), so
                claimed.add(old)  # what depends on it asks for its own keys in the same round
                return old
            if _owner(kv) in (None, owner) and old not in claimed:
                claimed.add(old)
                self._put(key_of(old), codec.dumps({"owner": owner}))
                return old
        hint_key = keys.pool_hint(pool)
        if self._lookup(hint_key) is UNKNOWN:
            return None
        hints = self.__dict__.setdefault("_hints", {})
        hint = hints.setdefault(pool, load_json(self.r, hint_key, {"next": lo}))
        candidate = max(lo, hint.get("next", lo))
        while candidate <= hi:
            if candidate in claimed:
                candidate += 1
                continue
            kv = self._lookup(key_of(candidate))
            if kv is UNKNOWN:  # held for this pass, so the next owner asks for the next one
                claimed.add(candidate)
                return None
            if kv is None:
                claimed.add(candidate)
                hint["next"] = candidate + 1
                self._put(key_of(candidate), codec.dumps({"owner": owner}))
                self._hint(pool, hint)
                return candidate
            candidate += 1
        raise PoolExhausted(f"global {pool} pool")

    def release_id(self, pool: str, value: int) -> None:
        key_of, lo, _hi = POOLS[pool]
        self._delete(key_of(value))
        hint_key = keys.pool_hint(pool)
        if self._lookup(hint_key) is UNKNOWN:
            return
        hints = self.__dict__.setdefault("_hints", {})
        hint = hints.setdefault(pool, load_json(self.r, hint_key, {"next": lo}))
        hint["next"] = min(hint.get("next", value), value)
        self._hint(pool, hint)

    def _hint(self, pool: str, hint: dict) -> None:
        """Write a pool's hint; at the pool's start it says nothing, so it goes."""
        if hint.get("next", 0) <= POOLS[pool][1]:
            self._delete(keys.pool_hint(pool))
        else:
            self._put(keys.pool_hint(pool), codec.dumps(hint))

    # ------------------------------------------------------------------ final tenant views
    def final_groups(self, tenant: str) -> dict[str, dict]:
        """The tenant's groups after this write (name -> index entry)."""
        groups = dict(self.index(tenant).get("groups", {}))
        for (t, g), (_old, new) in self.d.groups.items():
            if t == tenant:
                if new is None:
                    groups.pop(g, None)
                else:
                    groups[g] = {**groups.get(g, {}), "policies": list(new.policies or ())}
        return groups

    def final_policies(self, tenant: str) -> dict[str, dict]:
        """The tenant's policies after this write (name -> the groups/networks they name)."""
        policies = dict(self.index(tenant).get("policies", {}))
        for (t, p), (_old, new) in self.d.policies.items():
            if t == tenant:
                if new is None:
                    policies.pop(p, None)
                else:
                    policies[p] = _refs(new)
        return policies

    # ------------------------------------------------------------------ groups and policies
    def plan_groups_and_policies(self) -> None:
        tenants = {t for t, _ in self.d.groups} | {t for t, _ in self.d.policies}
        for t in sorted(tenants):
            if self.d.tenants.get(t, (None, True))[1] is None:
                continue  # the tenant goes with all of it
            policies, groups = self.final_policies(t), self.final_groups(t)
            networks = set(self.final_networks(t))
            for (tt, p), (_old, new) in sorted(self.d.policies.items()):
                if tt == t and new is not None:
                    check_policy(new, self.d.label("policy", f"{t}/{p}"), self.problems.append,
                                 set(groups), networks)
            for (tt, g), (_old, new) in sorted(self.d.groups.items()):
                if tt == t and new is not None:
                    check_group(new, self.d.label("endpoint group", f"{t}/{g}"),
                                self.problems.append, set(policies))
            for (tt, p), (_old, new) in self.d.policies.items():
                if tt == t and new is None:
                    users = sorted(g for g, v in groups.items() if p in v.get("policies", ()))
                    if users:
                        self.problems.append(
                            f'policy "{p}" of tenant "{t}": still applied by endpoint group '
                            f'"{users[0]}"' + (f" and {len(users) - 1} more" if users[1:] else ""))
            for (tt, g), (_old, new) in self.d.groups.items():
                if tt == t and new is None:
                    users = sorted(p for p, refs in policies.items()
                                   if g in refs.get("groups", ()))
                    if users:
                        self.problems.append(f'endpoint group "{g}" of tenant "{t}": named by a '
                                             f'rule of policy "{users[0]}"')
        for (t, name), (_old, new) in sorted(self.d.policies.items()):
            idx = self.index(t)
            if new is None:
                self._delete(keys.policy(t, name))
                idx.setdefault("policies", {}).pop(name, None)
            else:
                self._put(keys.policy(t, name), codec.dumps(new))
                idx.setdefault("policies", {})[name] = _refs(new)
        for (t, name), (_old, new) in sorted(self.d.groups.items()):
            self._group(t, name, new)

    def _group(self, tenant: str, name: str, new) -> None:
        idx = self.index(tenant)
        old_spec_kv = self._lookup(keys.state_group(tenant, name))
        if old_spec_kv is UNKNOWN:
            return
        old_id = _load_id(old_spec_kv)
        if new is None:
            self._delete(keys.group(tenant, name))
            self._delete(keys.state_group(tenant, name))
            if old_id:
                self.release_id("groupid", old_id)
            idx.setdefault("groups", {}).pop(name, None)
            return
        gid = self.global_id("groupid", f"{tenant}/{name}", old_id)
        if gid is None:
            return
        spec = EndpointGroupSpec(tenant=tenant, name=name, id=gid,
                                 policies=tuple(new.policies or ()),
                                 qos_profile=new.qos_profile or None)
        self._put(keys.group(tenant, name), codec.dumps(new))
        self._put(keys.state_group(tenant, name), codec.dumps(spec))
        idx.setdefault("groups", {})[name] = {"id": gid, "policies": list(spec.policies)}

    # ------------------------------------------------------------------ membership
    def member_change(self, tenant: str, old: str | None, new: str | None) -> None:
        """An endpoint of ``tenant`` leaves group ``old`` and joins ``new``."""
        if old == new:
            return
        counts = self.__dict__.setdefault("_member_delta", {})
        for g, step in ((old, -1), (new, 1)):
            if g:
                counts[(tenant, g)] = counts.get((tenant, g), 0) + step

    def check_endpoint_group(self, tenant: str, group: str | None, label: str) -> bool:
        if not group:
            return True
        if group in self.final_groups(tenant):
            return True
        self.problems.append(f'{label}.EndpointGroup "{group}": no such endpoint group in '
                             f'tenant "{tenant}"')
        return False

    def finish_members(self) -> None:
        """Write the member counts; refuse to delete a group that keeps members."""
        for (t, g), step in sorted(self.__dict__.get("_member_delta", {}).items()):
            key = keys.members(t, g)
            if self._lookup(key) is UNKNOWN:
                continue
            count = load_json(self.r, key, {"count": 0}).get("count", 0) + step
            gone = self.d.groups.get((t, g), (None, True))[1] is None
            if gone or count <= 0:
                self._delete(key)
            else:
                self._put(key, codec.dumps({"count": count}))
        for (t, g), (old, new) in self.d.groups.items():
            if new is None and old is not None:
                key = keys.members(t, g)
                if self._lookup(key) is UNKNOWN:
                    continue
                count = load_json(self.r, key, {"count": 0}).get("count", 0) + \
                    self.__dict__.get("_member_delta", {}).get((t, g), 0)
                if count > 0:
                    self.problems.append(f'endpoint group "{g}" of tenant "{t}": still used by '
                                         f"{count} endpoint{'s' if count > 1 else ''} (move or "
                                         f"delete them in the same write)")
                self._delete(key)

    def endpoint_group_of(self, spec: EndpointSpec | None) -> str | None:
        return spec.group if spec is not None else None


def _refs(policy) -> dict:
    return {"groups": sorted({r.peer for r in policy.rules or () if r.peer_kind == PEER_GROUP}),
            "networks": sorted({r.peer for r in policy.rules or ()
                                if r.peer_kind == PEER_NETWORK})}


def _owner(kv) -> str | None:
    if kv is None:
        return None
    try:
        return codec.json.loads(kv.value).get("owner")
    except (ValueError, AttributeError):
        return "?"


def _load_id(kv) -> int | None:
    if kv is None:
        return None
    try:
        return int(codec.json.loads(kv.value).get("id") or 0) or None
    except (ValueError, AttributeError, TypeError):
        return None
