"""Planning of QoS profiles and their references, and of multicast receivers (a mixin of
:class:`allocator.plan.Planner`).

The tenant index (``alloc/tenant/<t>``) lists the tenant's profiles (``"qosprofiles"``), so a
write checks a ``QosProfile`` reference without reading the tenant's other objects.  Users are
counted per profile (``alloc/qosusers/<t>/<p>``: endpoints, networks and endpoint groups that
name it): deleting a profile that something still uses is an error unless the users go (or
switch profile) in the same write.  Meters need no id from the store: a meter belongs to one
switch and takes the number of the port it polices (:mod:`ofctl.qos`).
"""

from __future__ import annotations

from typing import Any

from allocator.reads import UNKNOWN, load_json
from intent import codec, keys
from intent.mcast_doc import check_multicast
from intent.model import endpoint_id
from intent.qos_doc import check_profile


class QosPlanning:
    """Mixin: needs the Planner's ``d``, ``r``, ``problems``, ``_lookup``, ``_put``,
    ``_delete``, ``index``, ``tenant_of_network``."""

    d: Any
    r: Any
    problems: list[str]

    def final_profiles(self, tenant: str) -> set[str]:
        """The tenant's QoS profiles after this write."""
        names = set(self.index(tenant).get("qosprofiles", {}))
        for (t, p), (_old, new) in self.d.qos_profiles.items():
            if t == tenant:
                (names.discard if new is None else names.add)(p)
        return names

    def _tenant_goes(self, tenant: str) -> bool:
        return tenant in self.d.tenants and self.d.tenants[tenant][1] is None

    def plan_qos_profiles(self) -> None:
        """Check and write the profiles of the delta (before their users are planned)."""
        for (t, name), (_old, new) in sorted(self.d.qos_profiles.items()):
            idx = self.index(t).setdefault("qosprofiles", {})
            if new is None:
                self._delete(keys.qos_profile(t, name))
                idx.pop(name, None)
                continue
            if self.tenant(t) is None and not self._tenant_goes(t):
                if keys.tenant(t) not in self.need.keys:
                    self.problems.append(f'{self.d.label("QoS profile", f"{t}/{name}")}: '
                                         f'tenant "{t}" does not exist')
                continue
            check_profile(new, self.d.label("QoS profile", f"{t}/{name}"),
                          self.problems.append)
            self._put(keys.qos_profile(t, name), codec.dumps(new))
            idx[name] = {}

    def finish_qos(self) -> None:
        """Check every changed reference, count users, refuse deleting a used profile; check
        the declared multicast receivers of changed networks."""
        steps: dict[tuple[str, str], dict[str, int]] = {}
        refs: list[tuple[str, str | None, str | None, str, str]] = []  # tenant old new label kind
        for name, (old, new) in self.d.networks.items():
            t = (new or old).tenant
            refs.append((t, old and old.qos_profile, new and new.qos_profile,
                         self.d.label("network", name), "networks"))
        for (t, g), (old, new) in self.d.groups.items():
            refs.append((t, old and old.qos_profile, new and new.qos_profile,
                         self.d.label("endpoint group", f"{t}/{g}"), "endpoint groups"))
        for eid, (old, new) in self.d.endpoints.items():
            t_old = old and self.tenant_of_network(old.network)
            t_new = new and self.tenant_of_network(new.network)
            label = self.d.label("endpoint", eid)
            if t_old and t_old != t_new:
                refs.append((t_old, old.qos_profile, None, label, "endpoints"))
                old = None
            if t_new:
                refs.append((t_new, old and old.qos_profile, new.qos_profile, label,
                             "endpoints"))
        for t, old, new, label, kind in refs:
            if old == new or self._tenant_goes(t):
                continue
            if old:
                counts = steps.setdefault((t, old), {})
                counts[kind] = counts.get(kind, 0) - 1
            if new:
                counts = steps.setdefault((t, new), {})
                counts[kind] = counts.get(kind, 0) + 1
                if new not in self.final_profiles(t):
                    self.problems.append(f'{label}.QosProfile "{new}": no such QoS profile in '
                                         f'tenant "{t}"')
        for (t, p), (_old, new) in self.d.qos_profiles.items():
            if new is None:
                steps.setdefault((t, p), {})
        for (t, p), step in sorted(steps.items()):
            key = keys.qos_users(t, p)
            if self._lookup(key) is UNKNOWN:
                continue
            counts = load_json(self.r, key, {})
            for kind, n in step.items():
                counts[kind] = counts.get(kind, 0) + n
            counts = {k: n for k, n in sorted(counts.items()) if n > 0}
            deleted = (t, p) in self.d.qos_profiles and self.d.qos_profiles[(t, p)][1] is None
            if deleted and counts and not self._tenant_goes(t):
                users = ", ".join(f"{n} {k if n > 1 else k[:-1]}" for k, n in counts.items())
                self.problems.append(f'QoS profile "{p}" of tenant "{t}": still used by {users} '
                                     f"(remove the references in the same write)")
            if deleted or not counts or self._tenant_goes(t):
                self._delete(key)
            else:
                self._put(key, codec.dumps(counts))
        self._check_receivers()

    def _check_receivers(self) -> None:
        for name, (_old, new) in sorted(self.d.networks.items()):
            if new is None or new.multicast is None:
                continue
            wanted = {c for g in new.multicast.groups for c in g.receivers}
            have = set()
            for c in wanted:
                eid = endpoint_id(name, c)
                if eid in self.d.endpoints:
                    pair = self.d.endpoints[eid]
                    if pair[1] is not None and pair[1].network == name:
                        have.add(c)
                    continue
                kv = self._lookup(keys.endpoint(eid))
                if kv is UNKNOWN:
                    return
                if kv is not None:
                    have.add(c)
            check_multicast(new.multicast, self.d.label("network", name),
                            self.problems.append, have)
