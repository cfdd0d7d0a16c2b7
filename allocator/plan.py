"""Pure planning of one write: a :class:`~allocator.merge.Delta` plus what was read → keys to put
and delete, with every allocation made.

Only the objects of the delta are planned.  Global facts come from keys designed for them:
``alloc/ranges`` (every tenant's VLAN/VNI ranges), ``alloc/tenant/<t>`` (a tenant's networks
with their tags and subnets), ``alloc/pool/<net>`` (the lowest address of a network that may be
free: every address below it is taken) and the per-value owner keys ``alloc/vlan|vni|ip/…``.

Planning may need keys that were not read yet (a candidate address, the owner of a static tag,
the endpoints of a network whose subnet changes): it then returns a :class:`Need` and the writer
reads those and plans again.  Previous allocations are kept where still valid, explicit values
are checked against their owner keys, the rest is allocated lowest-first.
"""

from __future__ import annotations

from allocator.merge import Delta, strip
from allocator.plan_groups import GroupPlanning
from allocator.plan_ipam import IpamPlanning, address_fields
from allocator.plan_pools import PoolPlanning
from allocator.plan_qos import QosPlanning
from allocator.plan_routers import RouterPlanning
from allocator.pools import (
    default_gateway,
    ip_int,
    ip_str,
    next_free_id,
    next_free_subnet,
    subnet_bounds,
)
from allocator.reads import UNKNOWN, Need, Plan, Reads, load_json, owner_of
from intent import codec, keys
from intent.errors import ValidationError
from intent.model import (
    VXLAN,
    EndpointConfig,
    EndpointSpec,
    NetworkConfig,
    NetworkSpec,
    TenantConfig,
)
from intent.store import KeyValue
from intent.validate import (
    check_endpoint,
    check_host,
    check_network,
    check_static_ip,
    check_tenant,
    endpoint_collision,
    in_ranges,
    ipv4_net,
    range_overlaps,
)


def _owner(name: str) -> str:
    return codec.dumps({"owner": name})


def tag_key(net_type: str, tag: int) -> str:
    return keys.alloc_vni(tag) if net_type == VXLAN else keys.alloc_vlan(tag)


class Planner(GroupPlanning, RouterPlanning, QosPlanning, IpamPlanning, PoolPlanning):
    """One planning pass; :meth:`run` returns a :class:`Plan` or a :class:`Need`."""

    def __init__(self, delta: Delta, reads: Reads) -> None:
        self.d = delta
        self.r = reads
        self.need = Need()
        self.problems: list[str] = []
        self.puts: dict[str, str] = {}
        self.deletes: set[str] = set()
        self.specs: dict[str, NetworkSpec | None] = {}  # planned network specs
        self._stable: set[str] = set()  # networks not planned again (see _stable_networks)
        self.tenant_idx: dict[str, dict] = {}
        self.claimed_tags: dict[str, set[int]] = {}
        self.explicit_tags: dict[str, set[int]] = {}
        self.claimed_subnets: dict[str, list[str]] = {}
        self.pools: dict[str, dict] = {}  # network -> pool index being updated
        self.taken: dict[str, set[int]] = {}  # network -> addresses claimed by this write
        self.released: dict[str, set[int]] = {}

    # ------------------------------------------------------------------ helpers
    def _lookup(self, key: str) -> KeyValue | None:
        kv = self.r.lookup(key)
        if kv is UNKNOWN:
            self.need.keys.add(key)
        return kv

    def _put(self, key: str, value: str) -> None:
        self.deletes.discard(key)
        if self.r.value(key) != value or self.r.lookup(key) is UNKNOWN:
            self.puts[key] = value
        else:
            self.puts.pop(key, None)

    def _delete(self, key: str) -> None:
        self.puts.pop(key, None)
        if self.r.lookup(key) is not None:
            self.deletes.add(key)

    def tenant(self, name: str) -> TenantConfig | None:
        if name in self.d.tenants:
            return self.d.tenants[name][1]
        kv = self._lookup(keys.tenant(name))
        return None if kv in (None, UNKNOWN) else _load(TenantConfig, kv)

    def network_config(self, name: str) -> NetworkConfig | None:
        if name in self.d.networks:
            return self.d.networks[name][1]
        kv = self._lookup(keys.network(name))
        return None if kv in (None, UNKNOWN) else _load(NetworkConfig, kv)

    def network_spec(self, name: str) -> NetworkSpec | None:
        if name in self.specs:
            return self.specs[name]
        kv = self._lookup(keys.state_network(name))
        return None if kv in (None, UNKNOWN) else _load(NetworkSpec, kv)

    def index(self, tenant: str) -> dict:
        if tenant not in self.tenant_idx:
            if self._lookup(keys.tenant_index(tenant)) is UNKNOWN:
                return {"networks": {}, "groups": {}, "policies": {}, "routers": {}}
            idx = load_json(self.r, keys.tenant_index(tenant), {})
            for part in ("networks", "groups", "policies", "routers"):
                idx.setdefault(part, {})
            self.tenant_idx[tenant] = idx
        return self.tenant_idx[tenant]

    def final_networks(self, tenant: str) -> dict[str, dict]:
        """The tenant's networks after this write (its index, once networks are planned)."""
        return self.index(tenant)["networks"]

    def tenant_of_network(self, name: str) -> str | None:
        if name in self.d.networks:
            return (self.d.networks[name][1] or self.d.networks[name][0]).tenant
        cfg = self.network_config(name)
        return cfg.tenant if cfg else None

    # ------------------------------------------------------------------ run
    def run(self) -> Plan | Need:
        self._hosts()
        self._tenants()
        self._networks()
        self.plan_routers()
        self.plan_qos_profiles()
        self.plan_groups_and_policies()
        self._endpoints()
        self.finish_members()
        self.finish_qos()
        self._finish_pools()
        for t, idx in self.tenant_idx.items():
            if t in self.d.tenants and self.d.tenants[t][1] is None:
                self._delete(keys.tenant_index(t))
            elif any(idx.values()) or self.r.value(keys.tenant_index(t)) is not None:
                self._put(keys.tenant_index(t), codec.dumps(idx))
        if self.need:
            return self.need
        if self.problems:
            raise ValidationError(self.problems)
        return Plan(self.puts, self.deletes, self._summary())

    # ------------------------------------------------------------------ hosts and tenants
    def _hosts(self) -> None:
        for name, (_old, new) in sorted(self.d.hosts.items()):
            if new is None:
                self._delete(keys.host_config(name))
            else:
                check_host(new, self.d.label("host", name), self.problems.append)
                self._put(keys.host_config(name), codec.dumps(new))

    def _tenants(self) -> None:
        if not self.d.tenants:
            return
        ranges_kv = self._lookup(keys.ALLOC_RANGES)
        if ranges_kv is UNKNOWN:
            return
        registry = load_json(self.r, keys.ALLOC_RANGES, {})
        for name, (_old, new) in sorted(self.d.tenants.items()):
            if new is None:
                registry.pop(name, None)
                self._delete(keys.tenant(name))
                self.index(name)
                continue
            label = self.d.label("tenant", name)
            check_tenant(new, label, self.problems.append)
            for field_name, kind in (("Vlans", "vlans"), ("Vxlans", "vxlans")):
                others = [(tuple(tuple(r) for r in v.get(kind, ())), f'tenant "{t}"')
                          for t, v in sorted(registry.items()) if t != name]
                range_overlaps(label, field_name, getattr(new, kind) or (), others,
                               self.problems.append)
            registry[name] = {"vlans": [list(r) for r in new.vlans or ()],
                              "vxlans": [list(r) for r in new.vxlans or ()]}
            self._put(keys.tenant(name), codec.dumps(strip(new)))
        if registry:
            self._put(keys.ALLOC_RANGES, codec.dumps(registry))
        else:
            self._delete(keys.ALLOC_RANGES)

    # ------------------------------------------------------------------ networks
    def _networks(self) -> None:
        """Plan every network of the delta: explicit values first, then the previous
        allocations that are still valid, then new allocations (lowest free)."""
        todo: list[tuple[str, NetworkConfig, NetworkSpec | None, TenantConfig, str]] = []
        self._stable = self._stable_networks()
        for name in sorted(self.d.networks):
            item = self._network_inputs(name)
            if item is not None:
                todo.append(item)
        for _name, new, _old, tenant, _label in todo:
            if new.pkt_tag is not None:
                self.explicit_tags.setdefault(new.pkt_tag_type or "vlan", set()).add(
                    new.pkt_tag)
            if new.subnet_cidr:
                self.claimed_subnets.setdefault(tenant.name, []).append(
                    str(ipv4_net(new.subnet_cidr).cidr))  # type: ignore[union-attr]
        tags: dict[str, int | None] = {}
        subnets: dict[str, str | None] = {}
        for name, new, old, tenant, label in todo:  # explicit and kept values
            tags[name] = self._tag(tenant, new, old, label, allocate=False)
            subnets[name] = self._subnet(tenant, new, old, allocate=False, label=label)
        for name, new, old, tenant, label in todo:  # new allocations
            if tags[name] is None:
                tags[name] = self._tag(tenant, new, old, label, allocate=True)
            if subnets[name] is None:
                subnets[name] = self._subnet(tenant, new, old, allocate=True)
        for name, new, old, tenant, _label in todo:
            self._network_keys(name, new, old, tenant, tags[name], subnets[name])

    def _network_inputs(self, name: str):
        """(name, config, previous spec, tenant, label) of a network to plan, or None when it
        is deleted, invalid, or waits for keys."""
        old, new = self.d.networks[name]
        tenant_name = (new or old).tenant
        old_spec_kv = self._lookup(keys.state_network(name))
        self.specs[name] = None
        if old_spec_kv is UNKNOWN:
            return None
        old_spec = _load(NetworkSpec, old_spec_kv)
        idx = self.index(tenant_name)
        if new is None:
            for key in (keys.network(name), keys.state_network(name), keys.ip_pool(name)):
                self._delete(key)
            if old_spec is not None:
                self._delete(tag_key(old_spec.net_type, old_spec.tag))
                self._delete(keys.alloc_subnet(tenant_name, old_spec.subnet))
                if old_spec.zone:
                    self.release_id("zone", old_spec.zone)
            idx["networks"].pop(name, None)
            return None
        label = self.d.label("network", name)
        if old_spec is not None and name in self._stable:
            self.specs[name] = old_spec  # planned before, and nothing it depends on changes
            return None
        if old is not None and old.tenant != new.tenant:
            self.problems.append(f'{label}.Name "{name}": duplicate network name (also network '
                                 f'"{name}" of tenant "{old.tenant}"; names are global)')
            return None
        tenant = self.tenant(tenant_name)
        if tenant is None:
            if keys.tenant(tenant_name) not in self.need.keys:
                self.problems.append(f'{label}: tenant "{tenant_name}" does not exist')
            return None
        found = len(self.problems)
        check_network(tenant, new, label, self.problems.append)
        if len(self.problems) > found:
            return None
        return name, new, old_spec, tenant, label

    def _stable_networks(self) -> set[str]:
        """The networks of the delta left as planned before, when that holds for every one of
        them (then no allocation happens in this write, and their stored specs and owner keys
        stand: an endpoint add neither re-reads nor re-writes them); else none."""
        stable = {n for n, (_old, new) in self.d.networks.items()
                  if new is not None and self._unchanged_network(n, new)}
        return stable if len(stable) == len(self.d.networks) else set()

    def _unchanged_network(self, name: str, new: NetworkConfig) -> bool:
        """Whether the write leaves network ``name`` as stored: its config and its tenant's are
        byte-equal to what was read, and it has a valid stored spec."""
        spec_kv = self.r.lookup(keys.state_network(name))
        if spec_kv is UNKNOWN or spec_kv is None or name in self.d.expanded:
            return False
        old_spec = _load(NetworkSpec, spec_kv)
        if old_spec is None or old_spec.tenant != new.tenant:
            return False
        if self.r.value(keys.network(name)) != codec.dumps(strip(new)):
            return False
        pair = self.d.tenants.get(new.tenant)
        if pair is None:
            return True
        return pair[1] is not None and \
            self.r.value(keys.tenant(new.tenant)) == codec.dumps(strip(pair[1]))

    def _network_keys(self, name: str, new: NetworkConfig, old_spec: NetworkSpec | None,
                      tenant: TenantConfig, tag: int | None, subnet: str | None) -> None:
        if tag is None or subnet is None:
            return
        gateway = new.default_gw or default_gateway(subnet)
        zone = self.global_id("zone", name, old_spec.zone if old_spec else None)
        if zone is None:
            return
        spec = NetworkSpec(name=name, tenant=tenant.name, net_type=new.pkt_tag_type or "vlan",
                           tag=tag, subnet=subnet, gateway=gateway, zone=zone,
                           qos_profile=new.qos_profile or None, multicast=new.multicast,
                           ipam=new.ipam if new.ipam and new.ipam.delegated else None)
        self.specs[name] = spec
        if old_spec is not None and (old_spec.subnet, old_spec.gateway) != (subnet, gateway) \
                and name not in self.d.expanded:
            self.need.networks.add(name)  # every endpoint must be re-addressed
        self._put(keys.network(name), codec.dumps(strip(new)))
        self._put(keys.state_network(name), codec.dumps(spec))
        if old_spec is not None and (old_spec.net_type, old_spec.tag) != (spec.net_type, tag):
            self._delete(tag_key(old_spec.net_type, old_spec.tag))
        self._put(tag_key(spec.net_type, tag), _owner(name))
        if old_spec is not None and old_spec.subnet != subnet:
            self._delete(keys.alloc_subnet(tenant.name, old_spec.subnet))
            self.pools[name] = {"next": 0}  # a new subnet: its pool starts afresh
        self._put(keys.alloc_subnet(tenant.name, subnet), _owner(name))
        self.index(tenant.name)["networks"][name] = {"type": spec.net_type, "tag": tag,
                                                     "subnet": subnet, "gateway": gateway}

    def _tag(self, tenant: TenantConfig, net: NetworkConfig, old: NetworkSpec | None,
             label: str, allocate: bool) -> int | None:
        typ = net.pkt_tag_type or "vlan"
        claimed = self.claimed_tags.setdefault(typ, set())
        if net.pkt_tag is not None:
            if allocate:
                return None  # the explicit tag was refused in the first pass
            kv = self._lookup(tag_key(typ, net.pkt_tag))
            if kv is UNKNOWN:
                return None
            owner = owner_of(kv)
            if owner not in (None, net.name) or net.pkt_tag in claimed:
                self.problems.append(f"{label}.PktTag {net.pkt_tag}: {typ} tag used by network "
                                     f'"{owner or "another network of this write"}"')
                return None
            claimed.add(net.pkt_tag)
            return net.pkt_tag
        ranges = (tenant.vxlans if typ == VXLAN else tenant.vlans) or ()
        explicit = self.explicit_tags.get(typ, set())
        if not allocate:
            if old is not None and old.net_type == typ and in_ranges(old.tag, ranges) and \
                    old.tag not in claimed and old.tag not in explicit:
                claimed.add(old.tag)
                return old.tag
            return None
        others = self.index(tenant.name)["networks"]
        used = {v["tag"] for n, v in others.items() if v.get("type") == typ and n != net.name}
        used |= claimed | explicit
        pool = f'tenant "{tenant.name}" {"Vxlans" if typ == VXLAN else "Vlans"}'
        while True:
            candidate = next_free_id(ranges, used, pool)
            kv = self._lookup(tag_key(typ, candidate))
            if kv is UNKNOWN:  # held for this pass, so the next network asks for the next one
                claimed.add(candidate)
                return None
            if owner_of(kv) in (None, net.name):
                claimed.add(candidate)
                return candidate
            used.add(candidate)  # a leftover owner key: skip it

    def _subnet(self, tenant: TenantConfig, net: NetworkConfig, old: NetworkSpec | None,
                allocate: bool, label: str = "") -> str | None:
        claimed = self.claimed_subnets.setdefault(tenant.name, [])
        if net.subnet_cidr:
            if allocate:
                return None
            cidr = str(ipv4_net(net.subnet_cidr).cidr)  # type: ignore[union-attr]
            # overlapping subnets are fine; the very same one twice is not: its allocation key
            # (alloc/subnet/<tenant>/<cidr>) can name one owner only
            holder = next((n for n, v in sorted(self.index(tenant.name)["networks"].items())
                           if n != net.name and n not in self.d.networks and v["subnet"] == cidr),
                          None)
            if holder is not None or claimed.count(cidr) > 1:
                other = f'network "{holder}"' if holder else "another network of this write"
                self.problems.append(f'{label}.SubnetCIDR {cidr}: {other} of tenant '
                                     f'"{tenant.name}" has this subnet already')
                return None
            return cidr
        others = [v["subnet"] for n, v in self.index(tenant.name)["networks"].items()
                  if n != net.name and n not in self.d.networks]
        taken = others + claimed
        if not allocate:
            if old is not None and _keep_subnet(old.subnet, tenant) and \
                    not any(_overlap(old.subnet, s) for s in taken):
                claimed.append(old.subnet)
                return old.subnet
            return None
        pool = f'tenant "{tenant.name}" SubnetPool {tenant.subnet_pool}'
        subnet = next_free_subnet(tenant.subnet_pool or "", tenant.alloc_subnet_len or 0,
                                  taken, pool)
        claimed.append(subnet)
        return subnet

    # ------------------------------------------------------------------ endpoints
    def _endpoints(self) -> None:
        """Plan every endpoint: static addresses first, then kept ones, then new ones."""
        todo = []
        for eid in sorted(self.d.endpoints):
            item = self._endpoint_inputs(eid)
            if item is not None:
                todo.append(item)
        later = []
        for item in todo:  # static addresses are reserved before anything is allocated
            if item[0].ip_address:
                self._endpoint_keys(item, self._static(*item))
            else:
                later.append(item)
        auto = []
        for item in list(later):
            if item[3].ipam is not None or item[0].id in self.d.delegated:
                # the network's IPAM plugin gives the address
                later.remove(item)
                self.delegated_endpoint(item)
        for item in later:
            ip = self._kept(*item)
            if ip is None:
                auto.append(item)
            else:
                self._endpoint_keys(item, ip)
        for item in auto:
            self._endpoint_keys(item, self._auto(*item))

    def _endpoint_inputs(self, eid: str):
        """(config, previous spec, network config, network spec, label), or None."""
        old, new = self.d.endpoints[eid]
        old_kv = self._lookup(keys.state_endpoint(eid))
        if old_kv is UNKNOWN:
            return None
        old_spec = _load(EndpointSpec, old_kv)
        if new is None:
            self._delete(keys.endpoint(eid))
            self._delete(keys.state_endpoint(eid))
            if old_spec is not None:
                self.release_endpoint(old_spec)
                tenant = self.tenant_of_network(old_spec.network)
                if tenant and old_spec.group:
                    self.member_change(tenant, old_spec.group, None)
            return None
        label = self.d.label("endpoint", eid)
        found = len(self.problems)
        check_endpoint(new, label, self.problems.append)
        tenant = self.tenant_of_network(new.network)
        if tenant is not None:
            self.check_endpoint_group(tenant, new.endpoint_group, label)
        if len(self.problems) > found or old is None and not self._id_free(new, label):
            return None
        net_cfg = self.network_config(new.network)
        spec = self.network_spec(new.network)
        if net_cfg is None or spec is None:
            if new.network in self.specs or keys.network(new.network) in self.need.keys or \
                    keys.state_network(new.network) in self.need.keys:
                return None  # the network's own problem is reported, or keys are pending
            self.problems.append(f'{label}: network "{new.network}" does not exist')
            return None
        return new, old_spec, net_cfg, spec, label

    def _endpoint_keys(self, item, ip: int | None, pending: bool = False) -> None:
        if ip is None and not pending:
            return
        new, old = item[0], item[1]
        address, mac = address_fields(ip)
        state = EndpointSpec(id=new.id, network=new.network, container=new.container,
                             host=new.host, ip=address, mac=mac,
                             attach_uuid=new.attach_uuid, group=new.endpoint_group or None,
                             qos_profile=new.qos_profile or None)
        tenant = item[3].tenant
        old_group = old.group if old is not None and old.network == new.network else None
        if old is not None and old.network != new.network:
            self.member_change(self.tenant_of_network(old.network) or tenant, old.group, None)
        self.member_change(tenant, old_group, state.group)
        self._put(keys.endpoint(new.id), codec.dumps(new))
        self._put(keys.state_endpoint(new.id), codec.dumps(state))

    def _id_free(self, ep: EndpointConfig, label: str) -> bool:
        kv = self._lookup(keys.endpoint(ep.id))
        if kv is UNKNOWN or kv is None:
            return kv is None
        other = _load(EndpointConfig, kv)
        if other is None:
            return True  # unreadable: this write replaces it
        if (other.network, other.container) != (ep.network, ep.container):
            self.problems.append(f"{label}: " + endpoint_collision(
                ep, other.network, other.container, f'stored endpoint "{other.id}"'))
            return False
        return True

    def _static(self, ep: EndpointConfig, old: EndpointSpec | None, net: NetworkConfig,
                spec: NetworkSpec, label: str) -> int | None:
        subnet = ipv4_net(net.subnet_cidr or "")
        ip = check_static_ip(net, ep, label, subnet.cidr if subnet else None,
                             self.problems.append)
        return None if ip is None else self._claim(spec.name, ip, ep, label, old)

    def _kept(self, ep: EndpointConfig, old: EndpointSpec | None, net: NetworkConfig,
              spec: NetworkSpec, label: str) -> int | None:
        """The endpoint's previous address when it is still valid (None: allocate one)."""
        if old is None or old.network != spec.name or not old.ip:
            return None
        first, last = subnet_bounds(spec.subnet)
        ip = ip_int(old.ip)
        if not first < ip < last or old.ip == spec.gateway or \
                ip in self.taken.setdefault(spec.name, set()):
            return None
        kv = self._lookup(keys.alloc_ip(spec.name, old.ip))
        if kv is UNKNOWN or owner_of(kv) not in (None, ep.id):
            return None
        return self._claim(spec.name, ip, ep, label, old)

    def _claim(self, network: str, ip: int, ep: EndpointConfig, label: str,
               old: EndpointSpec | None) -> int | None:
        kv = self._lookup(keys.alloc_ip(network, ip_str(ip)))
        if kv is UNKNOWN:
            return None
        owner = owner_of(kv)
        taken = self.taken.setdefault(network, set())
        if (owner not in (None, ep.id) and ip not in self.released.get(network, ())) or \
                ip in taken:
            self.problems.append(f'{label}.IpAddress "{ip_str(ip)}": used by endpoint '
                                 f'"{owner or "another endpoint of this write"}" in network '
                                 f'"{network}"')
            return None
        taken.add(ip)
        if old is not None and (old.network, old.ip) != (network, ip_str(ip)):
            self.release_endpoint(old)
        self._put(keys.alloc_ip(network, ip_str(ip)), _owner(ep.id))
        return ip

    # ------------------------------------------------------------------ summary
    def _summary(self) -> list[str]:
        lines = []
        for prefix, what in ((keys.CONFIG_TENANTS, "tenant"), (keys.CONFIG_NETWORKS, "network"),
                             (keys.CONFIG_ENDPOINTS, "endpoint"), (keys.CONFIG_HOSTS, "host"),
                             (keys.CONFIG_GROUPS, "endpoint group"),
                             (keys.CONFIG_POLICIES, "policy"), (keys.CONFIG_ROUTERS, "router")):
            for k in sorted(k for k in self.puts if k.startswith(prefix)):
                verb = "updated" if self.r.value(k) is not None else "created"
                lines.append(f"{verb} {what} {k[len(prefix):]}")
            for k in sorted(k for k in self.deletes if k.startswith(prefix)):
                lines.append(f"deleted {what} {k[len(prefix):]}")
        touched = {keys.last_segment(k) for k in self.puts if k.startswith(keys.CONFIG_ENDPOINTS)}
        lines += [f"re-resolved endpoint {keys.last_segment(k)}"
                  for k in sorted(self.puts) if k.startswith(keys.STATE_ENDPOINTS)
                  and keys.last_segment(k) not in touched and self.r.value(k) is not None]
        return lines


def _load(cls: type, kv: KeyValue | None):
    """A stored object, or None when it is absent or unreadable (a write then replaces it)."""
    if kv is None:
        return None
    try:
        return codec.loads(cls, kv.value)
    except (ValueError, TypeError, AttributeError):
        return None


def _overlap(a: str, b: str) -> bool:
    a0, a1 = subnet_bounds(a)
    b0, b1 = subnet_bounds(b)
    return a0 <= b1 and b0 <= a1


def _keep_subnet(subnet: str, tenant: TenantConfig) -> bool:
    if not tenant.subnet_pool or not tenant.alloc_subnet_len or ipv4_net(
            tenant.subnet_pool) is None:
        return False
    length = int(subnet.split("/")[1])
    p0, p1 = subnet_bounds(str(ipv4_net(tenant.subnet_pool).cidr))  # type: ignore[union-attr]
    s0, s1 = subnet_bounds(subnet)
    return length == tenant.alloc_subnet_len and p0 <= s0 and s1 <= p1


def plan(delta: Delta, reads: Reads) -> Plan | Need:
    """Plan ``delta`` over ``reads``; see :class:`Planner`."""
    return Planner(delta, reads).run()


__all__ = ["Need", "Plan", "Planner", "Reads", "UNKNOWN", "plan"]
