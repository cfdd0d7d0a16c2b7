"""The incremental engine: live indexes over intent and ports, and per-host desired tables kept
as fragments keyed by the intent object that owns them.

Each input change (:meth:`Engine.set_endpoint`, :meth:`~Engine.set_network`,
:meth:`~Engine.set_host`, :meth:`~Engine.set_host_ports`, :meth:`~Engine.set_port`) updates the
indexes in O(1) and marks the ``(owner, host)`` fragments it can change.  :meth:`Engine.refresh`
recomputes only those fragments (the producers of :mod:`ofctl.fragments`) and folds the
difference into the host's :class:`HostTable`, which remembers, per entry, what the switch held
before the first change since the last :meth:`HostTable.take` — so the delta sent to a switch is
exactly the entries that changed, however many events touched them in between.

The full recompute (:func:`ofctl.compute.compute_host`) is the oracle: after any sequence of
changes, ``engine.table(h).state()`` equals it (tested with hypothesis).

Every host also has an *input digest* (:meth:`Engine.digest`): an order-independent sum of the
hashes of everything its tables depend on, kept incrementally.  The controller stores it on the
switch in a marker entry; a controller that restarts with the same inputs (and the same code)
finds it there and knows the switch needs nothing.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from intent.model import EndpointSpec, HostSpec, NetworkSpec
from ofctl.digests import CODE_HASH, MASK64, h64, h64_memo
from ofctl.engine_mcast import McastIndex
from ofctl.engine_policy import PolicyIndex
from ofctl.engine_qos import QosIndex
from ofctl.engine_router import RouterIndex, router_owner
from ofctl.fragments import (
    EMPTY,
    PIPELINE_OWNER,
    Fragment,
    Owner,
    endpoint_fragment,
    network_fragment,
    static_fragment,
)
from ofctl.model import Flow, Group, Meter, SwitchState
from ofctl.pipeline import check_flow
from ofctl.topology import HostPorts

FEATURE_KINDS = frozenset({"qos", "mcastnet", "mcast"})


@dataclass
class EntryDelta:
    """What changed in one host's table since the last take: ``key -> (before, after)``."""

    flows: dict[tuple, tuple[Flow | None, Flow | None]] = field(default_factory=dict)
    groups: dict[int, tuple[Group | None, Group | None]] = field(default_factory=dict)
    meters: dict[int, tuple[Meter | None, Meter | None]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.flows) + len(self.groups) + len(self.meters)


_KEYS = (lambda f: (f.table, f.priority, f.match), lambda g: g.group_id, lambda m: m.meter_id)


class HostTable:
    """One host's desired entries, as the union of its fragments."""

    def __init__(self, host: str, check: bool = True) -> None:
        self.host = host
        self.check = check
        self.fragments: dict[Owner, Fragment] = {}
        self.flows: dict[tuple, Flow] = {}
        self.groups: dict[int, Group] = {}
        self.meters: dict[int, Meter] = {}
        self._before_f: dict[tuple, Flow | None] = {}
        self._before_g: dict[int, Group | None] = {}
        self._before_m: dict[int, Meter | None] = {}
        self._owner: tuple[dict, dict, dict] = ({}, {}, {})  # key -> owner of the entry
        self._shadow: tuple[dict, dict, dict] = ({}, {}, {})  # key -> {owner: entry}
        self.collisions = 0

    def set(self, owner: Owner, frag: Fragment) -> bool:
        """Replace ``owner``'s fragment; returns whether any entry changed."""
        old = self.fragments.get(owner, EMPTY)
        if old == frag:
            return False
        if frag:
            self.fragments[owner] = frag
        else:
            self.fragments.pop(owner, None)
        if old.flows != frag.flows:
            self._swap(owner, 0, old.flows, frag.flows)
        if old.groups != frag.groups:
            self._swap(owner, 1, old.groups, frag.groups)
        if old.meters != frag.meters:
            self._swap(owner, 2, old.meters, frag.meters)
        return True

    def _swap(self, owner: Owner, kind: int, old: Iterable, new: Iterable) -> None:
        table = (self.flows, self.groups, self.meters)[kind]
        before = (self._before_f, self._before_g, self._before_m)[kind]
        key = _KEYS[kind]
        new_by = {key(e): e for e in new}
        for e in old:
            k = key(e)
            if k not in new_by:
                self._put(table, before, kind, k, owner, None)
        check, holders, shadows = self.check and kind == 0, self._owner[kind], self._shadow[kind]
        for k, e in new_by.items():
            if check:
                check_flow(e)
            if k in holders or k in shadows:
                self._put(table, before, kind, k, owner, e)
            else:  # a key nobody holds (most of a full build): what _put would do
                before.setdefault(k, None)
                table[k], holders[k] = e, owner

    def _put(self, table: dict, before: dict, kind: int, k, owner: Owner, e) -> None:
        """``owner`` now wants ``e`` at key ``k`` (None: nothing).  When several owners want
        one key, the lowest owner's entry is installed; the others wait behind it."""
        shadow = self._shadow[kind].get(k)
        if shadow is None:
            holder = self._owner[kind].get(k)
            if holder is not None and holder != owner:
                if e is None:
                    return  # ``owner`` never held this key
                shadow = self._shadow[kind][k] = {holder: table[k]}
                self.collisions += 1
            else:
                self._install(table, before, kind, k, owner if e is not None else None, e)
                return
        if e is None:
            shadow.pop(owner, None)
        else:
            shadow[owner] = e
        if not shadow:
            del self._shadow[kind][k]
            self._install(table, before, kind, k, None, None)
            return
        winner = min(shadow)
        if len(shadow) == 1:
            del self._shadow[kind][k]
        self._install(table, before, kind, k, winner, shadow[winner])

    def _install(self, table: dict, before: dict, kind: int, k, owner: Owner | None,
                 e) -> None:
        cur = table.get(k)
        if cur == e and self._owner[kind].get(k) == owner:
            return
        if k not in before:
            before[k] = cur
        if e is None:
            table.pop(k, None)
            self._owner[kind].pop(k, None)
        else:
            table[k] = e
            self._owner[kind][k] = owner

    def take(self) -> EntryDelta:
        """Every entry that differs from what it was at the previous take (then forget)."""
        d = EntryDelta()
        for k, b in self._before_f.items():
            a = self.flows.get(k)
            if a != b:
                d.flows[k] = (b, a)
        for k, b in self._before_g.items():
            a = self.groups.get(k)
            if a != b:
                d.groups[k] = (b, a)
        for k, b in self._before_m.items():
            a = self.meters.get(k)
            if a != b:
                d.meters[k] = (b, a)
        self._before_f, self._before_g, self._before_m = {}, {}, {}
        return d

    @property
    def pending(self) -> bool:
        return bool(self._before_f or self._before_g or self._before_m)

    @staticmethod
    def _baseline(current: dict, before: dict) -> dict:
        out = dict(current)
        for k, b in before.items():
            if b is None:
                out.pop(k, None)
            else:
                out[k] = b
        return out

    def baseline_flows(self) -> dict[tuple, Flow]:
        """The flows as of the last take (what the switch holds if every send succeeded)."""
        return self._baseline(self.flows, self._before_f)

    def baseline_groups(self) -> dict[int, Group]:
        return self._baseline(self.groups, self._before_g)

    def baseline_meters(self) -> dict[int, Meter]:
        return self._baseline(self.meters, self._before_m)

    def state(self) -> SwitchState:
        return SwitchState(frozenset(self.flows.values()), frozenset(self.groups.values()),
                           frozenset(self.meters.values()))


class BaseEngine(PolicyIndex, RouterIndex):
    """Indexes + per-host tables; see the module docstring.  Implements ``fragments.World``."""

    def __init__(self, check: bool = True) -> None:
        self._init_policy()
        self._init_routers()
        self.check = check
        self.networks: dict[str, NetworkSpec] = {}
        self.hosts: dict[str, HostSpec] = {}
        self.endpoints: dict[str, EndpointSpec] = {}
        self._members: dict[str, dict[str, EndpointSpec]] = {}  # net -> bound endpoints
        self._bound: dict[str, Counter[str]] = {}  # net -> host -> bound endpoints
        self._on_host: dict[str, set[str]] = {}  # host -> endpoint ids bound to it
        self._plugged: dict[str, dict[str, int]] = {}  # host -> endpoint id -> ofport
        self._local: dict[str, dict[str, dict[str, int]]] = {}  # net -> host -> {id: ofport}
        self._hp: dict[str, HostPorts] = {}
        self._member_sum: dict[str, int] = {}  # net -> sum of member hashes
        self._local_sum: dict[tuple[str, str], int] = {}  # (net, host) -> sum of plug hashes
        self.tables: dict[str, HostTable] = {}
        self._dirty: dict[str, set[Owner]] = {}

    # ------------------------------------------------------------------ World
    def members(self, network: str) -> Iterable[EndpointSpec]:
        return self._members.get(network, {}).values()

    def local(self, network: str, host: str) -> list[tuple[EndpointSpec, int]]:
        return [(self.endpoints[e], p) for e, p in self._local.get(network, {}).get(
            host, {}).items()]

    def present(self, network: str, host: str) -> bool:
        return bool(self._local.get(network, {}).get(host))

    def port(self, host: str, endpoint_id: str) -> int | None:
        return self._plugged.get(host, {}).get(endpoint_id)

    def remote_hosts(self, network: str, host: str) -> list[str]:
        return [h for h in self._bound.get(network, ()) if h != host]

    def ports(self, host: str) -> HostPorts:
        hp = self._hp.get(host)
        if hp is None:
            hp = self._hp[host] = HostPorts(host)
        return hp

    def present_hosts(self, network: str) -> list[str]:
        return list(self._local.get(network, {}))

    def present_networks(self, host: str) -> list[str]:
        return [n for n, hosts in self._local.items() if hosts.get(host)]

    # ------------------------------------------------------------------ marking
    def _mark(self, host: str, owner: Owner) -> None:
        if host in self.tables:
            self._dirty.setdefault(host, set()).add(owner)

    def _mark_network_everywhere(self, net: str, hosts: Iterable[str]) -> None:
        members = list(self._members.get(net, {}))
        for h in hosts:
            self._mark(h, ("network", net))
            for e in members:
                self._mark(h, ("endpoint", e))

    def dirty_hosts(self) -> set[str]:
        """Hosts with fragments to recompute."""
        return {h for h, owners in self._dirty.items() if owners}

    # ------------------------------------------------------------------ index upkeep
    def _unindex(self, ep: EndpointSpec) -> None:
        if ep.host is None:
            return
        self._members.get(ep.network, {}).pop(ep.id, None)
        self._member_sum[ep.network] = (self._member_sum.get(ep.network, 0) - _ep_hash(ep)) \
            & MASK64
        c = self._bound.get(ep.network)
        if c is not None:
            c[ep.host] -= 1
            if c[ep.host] <= 0:
                del c[ep.host]
        self._on_host.get(ep.host, set()).discard(ep.id)
        self._unlocal(ep.network, ep.host, ep.id)

    def _index(self, ep: EndpointSpec) -> None:
        if ep.host is None:
            return
        self._members.setdefault(ep.network, {})[ep.id] = ep
        self._member_sum[ep.network] = (self._member_sum.get(ep.network, 0) + _ep_hash(ep)) \
            & MASK64
        self._bound.setdefault(ep.network, Counter())[ep.host] += 1
        self._on_host.setdefault(ep.host, set()).add(ep.id)
        port = self._plugged.get(ep.host, {}).get(ep.id)
        if port is not None:
            self._tolocal(ep.network, ep.host, ep.id, port)

    def _tolocal(self, net: str, host: str, eid: str, port: int) -> None:
        hosts = self._local.setdefault(net, {})
        if host not in hosts:
            hosts[host] = {eid: port}
            self._presence_flipped(net, host)
            self._domain_flipped(net, host)
        hosts[host][eid] = port
        key = (net, host)
        self._local_sum[key] = (self._local_sum.get(key, 0) + h64("port", eid, port)) & MASK64

    def _unlocal(self, net: str, host: str, eid: str) -> None:
        hosts = self._local.get(net)
        if not hosts or eid not in hosts.get(host, {}):
            return
        port = hosts[host].pop(eid)
        key = (net, host)
        self._local_sum[key] = (self._local_sum.get(key, 0) - h64("port", eid, port)) & MASK64
        if not hosts[host]:
            del hosts[host]
            self._local_sum.pop(key, None)
            self._presence_flipped(net, host)
            self._domain_flipped(net, host)

    # ------------------------------------------------------------------ changes
    def set_endpoint(self, eid: str, new: EndpointSpec | None) -> None:
        """An endpoint's resolved state (None: gone)."""
        old = self.endpoints.get(eid)
        if old == new:
            return
        nets = {e.network for e in (old, new) if e is not None}
        present_before = {n: set(self._local.get(n, {})) for n in nets}
        bound_before = {n: set(self._bound.get(n, ())) for n in nets}
        if old is not None:
            self._unindex(old)
        if new is None:
            self.endpoints.pop(eid, None)
        else:
            self.endpoints[eid] = new
            self._index(new)
        self._member_moved(self._tenant_of(old), old, self._tenant_of(new), new)
        for n in nets:
            now = set(self._local.get(n, {}))
            for h in present_before[n] | now:
                self._mark(h, ("endpoint", eid))
            for h in present_before[n] ^ now:  # presence flipped: the whole network there
                self._mark_network_everywhere(n, [h])
            if bound_before[n] != set(self._bound.get(n, ())):
                for h in now:
                    self._mark(h, ("network", n))
                self._mark_tunnel_peers(self.router_of(n))
        for e in (old, new):
            if e is not None and e.host is not None:
                self._mark(e.host, ("endpoint", eid))
                self._mark(e.host, ("network", e.network))
        for n in nets:
            self._mark_routed_endpoint(n, eid)

    def set_port(self, host: str, eid: str, ofport: int | None) -> None:
        """Endpoint ``eid`` plugged into ``ofport`` of ``host`` (None: unplugged)."""
        plugged = self._plugged.setdefault(host, {})
        if plugged.get(eid) == ofport:
            return
        if ofport is None:
            plugged.pop(eid, None)
        else:
            plugged[eid] = ofport
        ep = self.endpoints.get(eid)
        if ep is None or ep.host != host:
            return  # a port for an endpoint not bound here: no entries
        was = self.present(ep.network, host)
        self._unlocal(ep.network, host, eid)
        if ofport is not None:
            self._tolocal(ep.network, host, eid, ofport)
        if was != self.present(ep.network, host):
            self._mark_network_everywhere(ep.network, [host])
        else:
            self._mark(host, ("endpoint", eid))
            self._mark(host, ("network", ep.network))

    def _tenant_of(self, ep: EndpointSpec | None) -> str | None:
        net = ep and self.networks.get(ep.network)
        return net.tenant if net else None

    def set_network(self, name: str, spec: NetworkSpec | None) -> None:
        """A network's resolved state (None: gone)."""
        old = self.networks.get(name)
        if old == spec:
            return
        if spec is None:
            self.networks.pop(name, None)
        else:
            self.networks[name] = spec
        self._network_tenant_changed(name, old, spec)
        self._mark_network_everywhere(name, self.present_hosts(name))
        self._network_routing_changed(name)
        if (old and old.tenant) != (spec and spec.tenant):
            for h in self.present_hosts(name):
                for t in {x.tenant for x in (old, spec) if x}:
                    self._mark_tenant_rules(t, [h])
            tenants = {x.tenant for x in (old, spec) if x}
            for eid in self._members.get(name, {}):  # group membership is per tenant
                ep = self.endpoints[eid]
                for t in tenants:
                    self._members_of.get((t, ep.group or ""), set()).discard(eid)
                if spec is not None and ep.group:
                    self._members_of.setdefault((spec.tenant, ep.group), set()).add(eid)

    def set_host(self, name: str, spec: HostSpec | None) -> None:
        """A host's registration merged with its config (None: gone)."""
        old = self.hosts.get(name)
        if old == spec:
            return
        if spec is None:
            self.hosts.pop(name, None)
        else:
            self.hosts[name] = spec
        if (old and old.vtep_ip) == (spec and spec.vtep_ip):
            return
        nets = set()
        for eid in self._on_host.get(name, ()):
            ep = self.endpoints[eid]
            nets.add(ep.network)
            for h in self.present_hosts(ep.network):
                if h != name:
                    self._mark(h, ("endpoint", eid))
            self._mark_routed_endpoint(ep.network, eid)
        for n in nets:
            for h in self.present_hosts(n):
                self._mark(h, ("network", n))
        for r in list(self.routers.values()):
            if name in self.router_senders(r):
                self._mark_tunnel_peers(r)

    def set_host_ports(self, host: str, vxlan_port: int | None, uplink_port: int | None) -> None:
        """The tunnel and uplink ofports of ``host``'s br-int."""
        hp = self.ports(host)
        if (hp.vxlan_port, hp.uplink_port) == (vxlan_port, uplink_port):
            return
        self._hp[host] = HostPorts(host, (), vxlan_port, uplink_port)
        self._mark_network_everywhere_on(host)
        self._mark_routers_on(host)

    def _mark_network_everywhere_on(self, host: str) -> None:
        for n in self.present_networks(host):
            self._mark_network_everywhere(n, [host])

    # ------------------------------------------------------------------ tables
    def table(self, host: str, pause: Callable[[], None] | None = None,
              every: int = 500) -> HostTable:
        """``host``'s table, built in full the first time it is asked for (calling ``pause``
        every ``every`` fragments, so that a caller can yield; changes made meanwhile are
        marked as usual and picked up by the next :meth:`refresh`)."""
        t = self.tables.get(host)
        if t is None:
            t = self.tables[host] = HostTable(host, self.check)
            self._dirty.pop(host, None)
            t.set(PIPELINE_OWNER, static_fragment())
            done = 0
            present = self.present_networks(host)
            for n in sorted(present):
                t.set(("network", n), network_fragment(self, n, host))
            for n in sorted(set(present) | self.routed_visible_networks(host)):
                for e in list(self._members.get(n, {}).values()):
                    t.set(("endpoint", e.id), endpoint_fragment(self, e, host))
                    done += 1
                    if pause is not None and done % every == 0:
                        pause()
            for r in self.visible_routers(host):
                t.set(router_owner(r), self.router_fragment_of(router_owner(r)[1], host))
            for kind, name in self.policy_owners(host):
                t.set((kind, name), self.policy_fragment(kind, name, host))
            for kind, name in self.feature_owners(host):
                t.set((kind, name), self.feature_fragment(kind, name, host))
            if self._dirty.get(host):
                self.refresh(host)
        return t

    def drop_table(self, host: str) -> None:
        """Forget ``host``'s table (its switch is gone); it is rebuilt when asked for again."""
        self.tables.pop(host, None)
        self._dirty.pop(host, None)

    def refresh(self, host: str) -> HostTable:
        """Recompute ``host``'s dirty fragments; returns its table."""
        t = self.table(host)
        owners = self._dirty.pop(host, set())
        for kind, name in sorted(owners):
            if kind == "endpoint":
                ep = self.endpoints.get(name)
                frag = endpoint_fragment(self, ep, host) if ep is not None else EMPTY
            elif kind == "network":
                frag = network_fragment(self, name, host)
            elif kind == "rule" or name == "policy":
                frag = self.policy_fragment(kind, name, host)
            elif kind in FEATURE_KINDS:
                frag = self.feature_fragment(kind, name, host)
            elif kind == "router":
                frag = self.router_fragment_of(name, host)
            else:
                frag = static_fragment()
            t.set((kind, name), frag)
        return t

    # ------------------------------------------------------------------ digest
    def digest(self, host: str) -> int:
        """The input digest of ``host``'s tables (see the module docstring)."""
        hp = self.ports(host)
        total = CODE_HASH + h64_memo("ports", host, hp.vxlan_port, hp.uplink_port)
        present = set(self.present_networks(host))
        for n in present | self.routed_visible_networks(host):
            spec = self.networks.get(n)
            total += h64_memo("net", spec) + self._member_sum.get(n, 0)
            if n in present:
                total += self._local_sum.get((n, host), 0)
            for g in self.tunnel_peers(n, host):  # ⊇ remote_hosts
                hs = self.hosts.get(g)
                total += h64_memo("remote", n, g, hs.vtep_ip if hs else None)
        for r in self.visible_routers(host):
            if r.external_network:
                total += h64_memo("external", self.networks.get(r.external_network))
        return (total + self.policy_digest(host) + self.router_digest(host)
                + self.feature_digest(host)) & MASK64

    # ------------------------------------------------------------------ QoS and multicast
    def feature_owners(self, host: str) -> list[Owner]:
        """Every QoS and multicast owner that may have entries on ``host`` (a full build)."""
        out: list[Owner] = []
        for n in sorted(self.present_networks(host)):
            out += [("qos", e) for e in sorted(self._local[n][host])]
            out += self.mcast_owners(n)
        return out

    def feature_fragment(self, kind: str, name: str, host: str) -> Fragment:
        if kind == "qos":
            return self.qos_owner_fragment(name, host)
        return self.mcast_owner_fragment(kind, name, host)

    def feature_digest(self, host: str) -> int:
        nets = self.present_networks(host)
        tenants = {self.networks[n].tenant for n in nets if n in self.networks}
        return self.qos_digest(tenants) + self.mcast_digest(nets)


class Engine(McastIndex, QosIndex, BaseEngine):
    """The engine with its feature mixins (multicast, QoS: issue 13), which wrap the change
    methods to mark their own owners as well."""

    def __init__(self, check: bool = True) -> None:
        super().__init__(check)
        self._init_qos()
        self._init_mcast()


def _ep_hash(ep: EndpointSpec) -> int:
    return h64("ep", ep.id, ep.network, ep.host, ep.ip, ep.mac, ep.group, ep.qos_profile)


def engine_from(intent, ports: dict[str, HostPorts], check: bool = True) -> Engine:
    """An engine holding ``intent`` (a ResolvedIntent) and every host's ``ports``."""
    e = Engine(check)
    for n in intent.networks:
        e.set_network(n.name, n)
    for h in intent.hosts:
        e.set_host(h.name, h)
    for p in ports.values():
        e.set_host_ports(p.host, p.vxlan_port, p.uplink_port)
        for eid, port in p.endpoint_ports:
            e.set_port(p.host, eid, port)
    for ep in intent.endpoints:
        e.set_endpoint(ep.id, ep)
    for g in intent.groups:
        e.set_group(g.tenant, g.name, g)
    for p in intent.policies:
        e.set_policy(p.tenant, p.name, p)
    for q in intent.qos_profiles:
        e.set_qos_profile(q.tenant, q.name, q)
    for m in intent.learned:
        e.set_learned(m.network, m.address, m.endpoint, True)
    for r in intent.routers:
        e.set_router(r.tenant, r.name, r)
    return e
