"""The write path: read what a change names, merge, validate, allocate, compare-and-swap.

One write reads the keys of the objects it names and the allocation keys it needs (never the
whole store, except ``desired`` mode, which must find what the document no longer has), plans
(:mod:`allocator.plan`), and commits in one transaction whose conditions are exactly what it
read: keys it found unchanged, keys it found absent still absent, and no large write under way.
A writer that loses a race re-reads and re-plans.  A change too large for one etcd transaction
goes through :mod:`allocator.bulk` instead, still all-or-nothing.

Every write carries an id, recorded in the same transaction (``/netplugin/writes/<slot>``): a
write whose answer was lost (etcd unreachable mid-request) looks for its own record before it
tries again, so it is neither lost nor applied twice.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from allocator.bulk import TXN_BYTES, TXN_OPS, LargeWrite, LockHeld, holder_alive, op_bytes
from allocator.merge import (
    Delta,
    Stored,
    doc_labels,
    merge_add,
    merge_bindings,
    merge_delete,
    merge_desired,
)
from allocator.plan import Need, Plan, Reads, plan
from intent import codec, keys
from intent.errors import ConflictError, IntentError, NotFoundError, ValidationError
from intent.model import (
    Config,
    EndpointConfig,
    EndpointGroupConfig,
    HostConfig,
    NetworkConfig,
    PolicyConfig,
    QosProfileConfig,
    RouterConfig,
    TenantConfig,
)
from intent.store import (
    Compare,
    Delete,
    KeyValue,
    Put,
    Snapshot,
    Store,
    StoreError,
    StoreUnavailable,
)

LOG = logging.getLogger(__name__)

MAX_ATTEMPTS = 200
MAX_ROUNDS = 32  # read rounds of one planning pass
LARGE_OBJECTS = 40  # a change naming more objects than this goes straight to the large path
LANDED_WAIT = 30.0  # how long a write whose answer was lost looks for its own record


@dataclass(frozen=True)
class ApplyResult:
    """What a write did: ``changed`` is False when the store already held this intent."""

    changed: bool
    revision: int
    summary: list[str] = field(default_factory=list)
    write_id: str = ""


@dataclass(frozen=True)
class Change:
    """A requested change: ``mode`` add | delete | desired | bind | address | replace | create.

    ``address``: ``addresses`` records (or, with None, gives back) the address an endpoint's
    IPAM plugin gave it.  ``replace``: ``doc`` names one network with two endpoints, the first
    deleted and the second created in the same write (its address may be the first's).
    ``create``: ``endpoints`` are created in their (existing) networks; the write reads only
    them and their networks, not the networks' tenants."""

    mode: str
    doc: Config = Config()
    bindings: tuple[EndpointConfig, ...] = ()
    addresses: tuple[tuple[str, str | None], ...] = ()
    endpoints: tuple[EndpointConfig, ...] = ()
    create_only: frozenset[tuple[str, str]] = frozenset()
    paths: bool = True  # name objects by their JSON path in ``doc``

    def size(self) -> int:
        return (len(self.doc.hosts) + len(self.doc.tenants) + len(self.doc.networks())
                + len(self.doc.endpoints()) + len(self.bindings) + len(self.addresses)
                + len(self.endpoints))


def _decode(kv: KeyValue | None, cls: type):
    if kv is None:
        return None
    try:
        return codec.loads(cls, kv.value)
    except (ValueError, TypeError, AttributeError) as exc:
        LOG.warning("stored %s is unreadable (%s): a write replaces it", kv.key, exc)
        return None


def _stored(reads: Reads) -> Stored:
    def objects(prefix: str, cls: type) -> dict:
        out = {}
        for k, kv in reads.items.items():
            if k.startswith(prefix):
                obj = _decode(kv, cls)
                if obj is not None:
                    out[keys.last_segment(k)] = obj
        return out

    def scoped(prefix: str, cls: type) -> dict:
        out = {}
        for k, kv in reads.items.items():
            if k.startswith(prefix):
                obj = _decode(kv, cls)
                if obj is not None:
                    out[keys.tenant_and_name(k, prefix)] = obj
        return out

    return Stored(hosts=objects(keys.CONFIG_HOSTS, HostConfig),
                  tenants=objects(keys.CONFIG_TENANTS, TenantConfig),
                  networks=objects(keys.CONFIG_NETWORKS, NetworkConfig),
                  endpoints=objects(keys.CONFIG_ENDPOINTS, EndpointConfig),
                  groups=scoped(keys.CONFIG_GROUPS, EndpointGroupConfig),
                  policies=scoped(keys.CONFIG_POLICIES, PolicyConfig),
                  routers=scoped(keys.CONFIG_ROUTERS, RouterConfig),
                  qos_profiles=scoped(keys.CONFIG_QOS, QosProfileConfig))


def first_keys(change: Change) -> tuple[list[str], list[str]]:
    """(keys, prefixes) a change reads before it can merge."""
    if change.mode == "desired":
        return [keys.CONFIG_TXN, keys.CONFIG_REV], list(keys.INTENT_PREFIXES)
    names = [keys.CONFIG_TXN]
    if change.mode == "bind":
        return names, []
    if change.mode == "address":
        return names + [k for eid, _ in change.addresses
                        for k in (keys.endpoint(eid), keys.state_endpoint(eid))], []
    if change.mode == "create":
        return names + [k for e in change.endpoints for k in (
            keys.network(e.network), keys.state_network(e.network), keys.ip_pool(e.network),
            keys.endpoint(e.id), keys.state_endpoint(e.id))], []
    doc = change.doc
    names += [keys.host_config(h.name) for h in doc.hosts]
    if doc.tenants:
        names.append(keys.ALLOC_RANGES)
    for t in doc.tenants:
        names += [keys.tenant(t.name), keys.tenant_index(t.name)]
        for g in t.endpoint_groups:
            names += [keys.group(t.name, g.name), keys.state_group(t.name, g.name),
                      keys.members(t.name, g.name)]
        for p in t.policies:
            names.append(keys.policy(t.name, p.name))
        for q in t.qos_profiles:
            names += [keys.qos_profile(t.name, q.name), keys.qos_users(t.name, q.name)]
        for r in t.routers:
            names += [keys.router(t.name, r.name), keys.state_router(t.name, r.name)]
        for n in t.networks:
            names += [keys.network(n.name), keys.state_network(n.name), keys.ip_pool(n.name)]
            for e in n.endpoints:
                names += [keys.endpoint(e.id), keys.state_endpoint(e.id)]
    return names, []


class StoreCopy(Protocol):
    """A copy of the store's keys that may be behind (e.g. kept from a watch): reads by name
    come from it first; the transaction's compare-and-swap tells whether it was right."""

    def read(self, keys: Sequence[str] = (), prefixes: Sequence[str] = (),
             revision: int | None = None) -> Snapshot: ...

    def note_write(self, revision: int) -> None: ...


class Writer:
    """Carries out :class:`Change` s against a store."""

    def __init__(self, store: Store, sleep: Callable[[float], None] = time.sleep,
                 lock_wait: float = 60.0, copy: StoreCopy | None = None) -> None:
        self.store = store
        self.sleep = sleep
        self.lock_wait = lock_wait
        self.copy = copy  # a first guess at the keys (see StoreCopy), checked by the txn
        self._source: Store | StoreCopy = store

    # ------------------------------------------------------------------ reading and planning
    def _read(self, reads: Reads, names: list[str], prefixes: list[str] = ()) -> None:
        names = [k for k in dict.fromkeys(names) if k not in reads.items and k not in reads.absent]
        if names or prefixes:
            reads.add(self._source.read(keys=names, prefixes=prefixes), names, list(prefixes))

    def _check_lock(self, reads: Reads, holder: str | None) -> None:
        kv = reads.items.get(keys.CONFIG_TXN)
        if kv is None:
            return
        try:
            held_by = json.loads(kv.value).get("id")
        except (ValueError, AttributeError):
            held_by = None
        if holder is None or held_by != holder:
            raise LockHeld("a large write is under way")

    def plan(self, change: Change, holder: str | None = None, optimistic: bool = False
             ) -> tuple[Reads, Delta, Plan]:
        """Read and plan ``change`` (``holder``: the large write we are, if any;
        ``optimistic``: free-looking addresses are claimed unread, see :class:`Reads`)."""
        reads = Reads(optimistic=optimistic)
        names, prefixes = first_keys(change)
        self._read(reads, names, prefixes)
        self._check_lock(reads, holder)
        delta = self._merge(change, reads)
        for _ in range(MAX_ROUNDS):
            result = plan(delta, reads)
            if isinstance(result, Plan):
                return reads, delta, result
            self._satisfy(result, reads, delta)
        raise ConflictError("planning did not settle (the store keeps changing under it)")

    def _merge(self, change: Change, reads: Reads) -> Delta:
        if change.mode == "bind":
            _, names = self.store.key_names(keys.CONFIG_ENDPOINTS)
            wanted = {b.container for b in change.bindings}
            ids = [k for k in names if any(k.endswith("-" + c) for c in wanted)]
            self._read(reads, ids + [keys.state_endpoint(keys.last_segment(k)) for k in ids])
            by_container: dict[str, list[EndpointConfig]] = {}
            for e in _stored(reads).endpoints.values():
                if e.container in wanted:
                    by_container.setdefault(e.container, []).append(e)
            return merge_bindings(list(change.bindings), by_container)
        stored = _stored(reads)
        if change.mode == "address":
            return _address_delta(change, stored)
        if change.mode == "replace":
            return _replace_delta(change, stored)
        if change.mode == "create":
            return _create_delta(change, stored)
        if change.mode == "add":
            delta = merge_add(change.doc, stored, change.create_only)
        elif change.mode == "delete":
            delta, whole_nets, whole_tenants = merge_delete(change.doc, stored)
            self._expand_tenants(whole_tenants, reads, delta)
            self._expand_networks(whole_nets + [n for n, (_, new) in delta.networks.items()
                                                if new is None], reads, delta, delete=True)
        elif change.mode == "desired":
            delta = merge_desired(change.doc, stored)
        else:
            raise ValueError(f"unknown mode {change.mode!r}")
        if change.paths:
            delta.labels = doc_labels(change.doc)
        return delta

    def _expand_tenants(self, tenants: list[str], reads: Reads, delta: Delta) -> None:
        """Add every network, endpoint group and policy of ``tenants`` to ``delta`` as
        deleted."""
        for t in tenants:
            idx = json.loads(reads.value(keys.tenant_index(t)) or "{}")
            nets = sorted(idx.get("networks", {}))
            groups, policies = sorted(idx.get("groups", {})), sorted(idx.get("policies", {}))
            profiles = sorted(idx.get("qosprofiles", {}))
            routers = sorted(idx.get("routers", {}))
            self._read(reads, [k for n in nets for k in (keys.network(n), keys.state_network(n),
                                                          keys.ip_pool(n))]
                       + [k for g in groups for k in (keys.group(t, g), keys.state_group(t, g),
                                                       keys.members(t, g))]
                       + [keys.policy(t, p) for p in policies]
                       + [k for r in routers for k in (keys.router(t, r),
                                                       keys.state_router(t, r))]
                       + [k for q in profiles for k in (keys.qos_profile(t, q),
                                                         keys.qos_users(t, q))])
            for n in nets:
                old = _decode(reads.items.get(keys.network(n)), NetworkConfig)
                if old is not None:
                    delta.networks[n] = (old, None)
            for names, key_of, cls, out in (
                    (groups, keys.group, EndpointGroupConfig, delta.groups),
                    (policies, keys.policy, PolicyConfig, delta.policies),
                    (profiles, keys.qos_profile, QosProfileConfig, delta.qos_profiles),
                    (routers, keys.router, RouterConfig, delta.routers)):
                for name in names:
                    old = _decode(reads.items.get(key_of(t, name)), cls)
                    if old is not None:
                        out[(t, name)] = (old, None)

    def _expand_networks(self, networks: list[str], reads: Reads, delta: Delta,
                         delete: bool) -> None:
        """Add every endpoint of ``networks`` to ``delta`` (deleted, or to be re-planned)."""
        for n in dict.fromkeys(networks):
            prefix, pending = keys.alloc_ip_prefix(n), keys.alloc_delegated_prefix(n)
            self._read(reads, [], [prefix, pending])
            owners = []
            for kv in reads.under(prefix) + reads.under(pending):
                try:
                    owners.append(json.loads(kv.value)["owner"])
                except (ValueError, KeyError, TypeError):
                    continue
            self._read(reads, [k for e in owners for k in (keys.endpoint(e),
                                                          keys.state_endpoint(e))])
            for e in owners:
                if e in delta.endpoints:
                    continue
                old = _decode(reads.items.get(keys.endpoint(e)), EndpointConfig)
                if old is not None:
                    delta.endpoints[e] = (old, None if delete else old)
            delta.expanded.add(n)

    def _satisfy(self, need: Need, reads: Reads, delta: Delta) -> None:
        self._read(reads, sorted(need.keys), sorted(need.prefixes))
        if need.networks:
            self._expand_networks(sorted(need.networks), reads, delta, delete=False)

    # ------------------------------------------------------------------ committing
    @staticmethod
    def _ops(p: Plan) -> list[Put | Delete]:
        return [Put(k, v) for k, v in sorted(p.puts.items())] + [Delete(k)
                                                                  for k in sorted(p.deletes)]

    @staticmethod
    def _compares(change: Change, reads: Reads) -> list[Compare]:
        out = [Compare(keys.CONFIG_TXN, "version", "=", 0)]
        if change.mode == "desired":
            kv = reads.items.get(keys.CONFIG_REV)
            return out + [Compare(keys.CONFIG_REV, "mod", "=", kv.mod_revision if kv else 0)]
        for k in reads.requested:
            if k == keys.CONFIG_TXN:
                continue
            kv = reads.items.get(k)
            out.append(Compare(k, "mod", "=", kv.mod_revision) if kv
                       else Compare(k, "create", "=", 0))
        return out

    @staticmethod
    def _final(write_id: str) -> list[Put | Delete]:
        return [Put(keys.CONFIG_REV, codec.dumps({"write": write_id})),
                Put(keys.write_record(write_id), codec.dumps({"id": write_id}))]

    def apply(self, change: Change) -> ApplyResult:
        """Carry out ``change``; raises ValidationError, NotFoundError, ConflictError."""
        write_id = uuid.uuid4().hex
        large = change.size() > LARGE_OBJECTS or change.mode == "desired" and \
            change.size() > LARGE_OBJECTS // 2
        optimistic = True  # until a transaction fails: then every address is read first
        use_copy = self.copy is not None  # likewise: then every key is read from the store
        for attempt in range(MAX_ATTEMPTS):
            if large:
                return self._apply_large(change, write_id)
            self._source = self.copy if use_copy and self.copy is not None else self.store
            try:
                reads, _delta, p = self.plan(change, optimistic=optimistic)
            except IntentError as exc:
                if use_copy:  # decided on the copy: what does the store say?
                    use_copy = False
                    continue
                if isinstance(exc, LockHeld):
                    self._wait_for_lock()
                    continue
                raise
            finally:
                self._source = self.store
            ops = self._ops(p)
            if not ops and use_copy:
                use_copy = False
                continue
            if not ops:
                return ApplyResult(False, max((kv.mod_revision for kv in reads.items.values()),
                                              default=0),
                                   ["no change: the store already holds this intent"])
            ops += self._final(write_id)
            compares = self._compares(change, reads)
            if len(ops) > TXN_OPS or len(compares) > TXN_OPS or \
                    sum(op_bytes(o) for o in ops) > TXN_BYTES:
                large = True
                continue
            try:
                res = self.store.txn(compares, ops)
            except StoreUnavailable:
                landed = self._landed(write_id)
                if landed:
                    return ApplyResult(True, landed, p.summary, write_id)
                continue
            if res.succeeded:
                if self.copy is not None:
                    self.copy.note_write(res.revision)
                return ApplyResult(True, res.revision, p.summary, write_id)
            optimistic = use_copy = False
            self.sleep(random.uniform(0, min(0.05, 0.002 * (attempt + 1))))
        raise ConflictError(f"gave up after {MAX_ATTEMPTS} attempts: other writers keep "
                            f"changing the same objects")

    def _apply_large(self, change: Change, write_id: str) -> ApplyResult:
        with LargeWrite(self.store, write_id, wait=self.lock_wait, sleep=self.sleep) as lw:
            _reads, _delta, p = self.plan(change, holder=write_id)
            ops = self._ops(p)
            if not ops:
                return ApplyResult(False, lw.base_revision,
                                   ["no change: the store already holds this intent"])
            lw.write(ops)
            revision = lw.commit(self._final(write_id))
        return ApplyResult(True, revision, p.summary, write_id)

    def _wait_for_lock(self) -> None:
        """Wait until no live large write holds the lock (a dead one is rolled back)."""
        deadline = time.monotonic() + self.lock_wait
        while time.monotonic() < deadline:
            kv = self.store.get(keys.CONFIG_TXN)
            if kv is None:
                return
            if not holder_alive(self.store, kv):
                with LargeWrite(self.store, uuid.uuid4().hex, wait=self.lock_wait,
                                sleep=self.sleep) as lw:
                    lw.commit([])
                return
            self.sleep(0.05)
        raise LockHeld("a large write is still in progress; try again later")

    def _landed(self, write_id: str) -> int:
        """After a lost answer: the revision our write landed at, or 0 if it did not."""
        deadline = time.monotonic() + LANDED_WAIT
        while True:
            try:
                kv = self.store.get(keys.write_record(write_id))
                if kv is not None and json.loads(kv.value).get("id") == write_id:
                    return kv.mod_revision
                return 0
            except StoreError:
                if time.monotonic() > deadline:
                    raise
                self.sleep(0.2)


def _address_delta(change: Change, stored: Stored) -> Delta:
    delta = Delta()
    for eid, ip in change.addresses:
        ep = stored.endpoints.get(eid)
        if ep is None:
            raise NotFoundError(f'endpoint "{eid}" does not exist')
        delta.endpoints[eid] = (ep, ep)
        delta.delegated[eid] = ip
    return delta


def _create_delta(change: Change, stored: Stored) -> Delta:
    delta = Delta()
    for e in change.endpoints:
        if e.network not in stored.networks:
            raise NotFoundError(f'network "{e.network}" does not exist')
        old = stored.endpoints.get(e.id)
        if old is not None and (old.network, old.container) == (e.network, e.container):
            raise ConflictError(f'endpoint "{e.id}" exists already')
        delta.endpoints[e.id] = (None, e)  # an id held by another pair: the planner refuses it
    return delta


def _replace_delta(change: Change, stored: Stored) -> Delta:
    (tenant,) = change.doc.tenants
    (net,) = tenant.networks
    old, new = net.endpoints
    one = Config(tenants=(TenantConfig(name=tenant.name, networks=(
        NetworkConfig(name=net.name, tenant=tenant.name, endpoints=(old,)),)),))
    delta, _, _ = merge_delete(one, stored)
    added = merge_add(Config(tenants=(TenantConfig(name=tenant.name, networks=(
        NetworkConfig(name=net.name, tenant=tenant.name, endpoints=(new,)),)),)), stored,
        frozenset({("endpoint", new.id)}))
    delta.endpoints.update(added.endpoints)
    return delta


# --------------------------------------------------------------------------- entry points


def apply_config(store: Store, config: Config, mode: str = "desired", *,
                 create_only: frozenset[tuple[str, str]] = frozenset(),
                 paths: bool = True) -> ApplyResult:
    """Make the store hold ``config`` (``desired``), add it (``add``) or remove it
    (``delete``)."""
    if mode not in ("desired", "add", "delete"):
        raise ValueError(f"unknown mode {mode!r}")
    return Writer(store).apply(Change(mode, config, create_only=create_only, paths=paths))


def apply_bindings(store: Store, bindings: list[EndpointConfig]) -> ApplyResult:
    """Bind endpoints to hosts late (``-host-bindings-cfg``)."""
    return Writer(store).apply(Change("bind", bindings=tuple(bindings), paths=False))


def record_address(store: Store, ep_id: str, ip: str | None) -> ApplyResult:
    """Record the address endpoint ``ep_id``'s IPAM plugin gave it (None: it was given back
    and the endpoint waits for one again).  Refused (ValidationError naming both endpoints)
    when another endpoint of the network holds it."""
    return Writer(store).apply(Change("address", addresses=((ep_id, ip),), paths=False))


def create_endpoints(store: Store, endpoints: list[EndpointConfig],
                     copy: StoreCopy | None = None) -> ApplyResult:
    """Create ``endpoints`` in their networks (NotFoundError: a network does not exist;
    ConflictError: an endpoint does).  Reads only the endpoints and their networks (from
    ``copy`` first, when given)."""
    return Writer(store, copy=copy).apply(Change("create", endpoints=tuple(endpoints),
                                                 paths=False))


def replace_endpoint(store: Store, old: EndpointConfig, new: EndpointConfig) -> ApplyResult:
    """Delete endpoint ``old`` and create ``new`` (same network) in one write: ``new`` may take
    ``old``'s static address (a rename that keeps the address).  ConflictError if ``new``
    exists."""
    if old.network != new.network:
        raise ValidationError(f'endpoint "{new.id}": replaces "{old.id}" of another network')
    kv = store.get(keys.network(old.network))
    net = _decode(kv, NetworkConfig)
    if net is None:
        raise NotFoundError(f'network "{old.network}" does not exist')
    doc = Config(tenants=(TenantConfig(name=net.tenant, networks=(
        NetworkConfig(name=net.name, tenant=net.tenant, endpoints=(old, new)),)),))
    return Writer(store).apply(Change("replace", doc, paths=False))


def delete_object(store: Store, kind: str, name: str) -> ApplyResult:
    """Delete one tenant, network, endpoint (by id) or host by name."""
    if kind == "tenant":
        doc = Config(tenants=(TenantConfig(name=name),))
    elif kind == "network":
        net = _decode(store.get(keys.network(name)), NetworkConfig)
        if net is None:
            raise NotFoundError(f'network "{name}" does not exist')
        doc = Config(tenants=(TenantConfig(name=net.tenant, networks=(
            NetworkConfig(name=name, tenant=net.tenant),)),))
    elif kind == "endpoint":
        ep = _decode(store.get(keys.endpoint(name)), EndpointConfig)
        net = ep and _decode(store.get(keys.network(ep.network)), NetworkConfig)
        if ep is None or net is None:
            raise NotFoundError(f'endpoint "{name}" does not exist')
        doc = Config(tenants=(TenantConfig(name=net.tenant, networks=(
            NetworkConfig(name=net.name, tenant=net.tenant, endpoints=(ep,)),)),))
    elif kind == "host":
        doc = Config(hosts=(HostConfig(name=name),))
    else:
        raise ValidationError(f'unknown construct "{kind}" (tenant, network, endpoint or host)')
    return Writer(store).apply(Change("delete", doc, paths=False))
