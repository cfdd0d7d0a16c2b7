"""One reconcile pass: read intent + runtime registry + oper keys, read OVS, plan, act.

Used by the agent (whole host, on every watch event and periodically) and by the CNI plugin
(restricted to one container's netns with ``owner``).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field

from agent import plan as P
from agent.ipam import Backend, CniIpam, delegate_wanted, give_back, read_leases
from agent.netlink import PlumbingError, netns_exists
from agent.ovsdb import OvsdbError
from agent.plumb import Plugged, Plumber, host_lock
from intent import codec, keys
from intent.logfmt import logline
from intent.model import EndpointSpec, NetworkSpec
from intent.store import Store

LOG = logging.getLogger(__name__)


@dataclass
class Inputs:
    endpoints: dict[str, EndpointSpec]
    networks: dict[str, NetworkSpec]
    runtime: dict[str, P.RuntimeEntry]
    oper: dict[str, dict]
    revision: int = 0


@dataclass
class Report:
    plugged: list[Plugged] = field(default_factory=list)
    unplugged: list[str] = field(default_factory=list)  # endpoint ids
    problems: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)  # endpoint ids already plugged and correct
    revision: int = 0  # the store revision the intent and registry were read at
    plug_seconds: list[float] = field(default_factory=list)  # one per successful plug
    plug_failures: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def read_runtime(store: Store, host: str) -> dict[str, P.RuntimeEntry]:
    out = {}
    for kv in store.list(keys.runtime_prefix(host)):
        name = kv.key[len(keys.runtime_prefix(host)):]
        try:
            data = json.loads(kv.value)
            out[name] = P.RuntimeEntry(name, data["netns"], str(data.get("id", "")))
        except (ValueError, KeyError, TypeError):
            LOG.warning("runtime entry %s: bad value %r", kv.key, kv.value)
    return out


def read_inputs(store: Store, host: str) -> Inputs:
    """Everything the plan needs from the store (intent at one revision)."""
    snap = store.snapshot(keys.STATE)
    eps: dict[str, EndpointSpec] = {}
    nets: dict[str, NetworkSpec] = {}
    for k, kv in snap.items.items():
        try:
            if k.startswith(keys.STATE_ENDPOINTS):
                ep = codec.loads(EndpointSpec, kv.value)
                eps[ep.id] = ep
            elif k.startswith(keys.STATE_NETWORKS):
                net = codec.loads(NetworkSpec, kv.value)
                nets[net.name] = net
        except (ValueError, TypeError) as e:
            LOG.warning("intent %s: cannot decode: %s", k, e)
    oper = {}
    for kv in store.list(keys.OPER_ENDPOINTS):
        try:
            val = json.loads(kv.value)
        except ValueError:
            continue
        if isinstance(val, dict) and val.get("host") == host:
            oper[keys.last_segment(kv.key)] = val
    return Inputs(eps, nets, read_runtime(store, host), oper, snap.revision)


def reconcile(store: Store, plumber: Plumber, host: str, lock: str, owner: str | None = None,
              preferred_ifname: str | None = None, ipam: Backend | None = None) -> Report:
    """Bring OVS and the containers of ``host`` to the intent; ``owner`` limits it to one netns.

    Endpoints whose network's IPAM plugin gives their address get it before they are plugged
    (``ipam``: the plugins' runner); an address that does not end up plugged, and one whose
    endpoint is no longer plugged here, is given back."""
    report = Report()
    ipam = ipam or CniIpam()
    with host_lock(lock):
        inp = read_inputs(store, host)
        want, problems = P.desired_set(host, inp.endpoints, inp.networks, inp.runtime,
                                       netns_exists)
        actual = plumber.actual()
        oper = inp.oper
        links: frozenset[str] = plumber.leftover_links()
        if owner is not None:
            want = {k: w for k, w in want.items() if w.owner == owner}
            mine = {a.endpoint_id for a in actual if a.container == owner} | set(want)
            actual = [a for a in actual if a.endpoint_id in mine]
            oper = {k: v for k, v in oper.items() if v.get("container") == owner}
            links = frozenset()
            problems = [p for p in problems if owner in p.containers]
        report.problems += [p.message for p in problems]
        report.revision = inp.revision
        hold = frozenset(p.endpoint_id for p in problems if p.hold)
        leases = [lease for lease in read_leases(store, host) if not lease.driver and (
            owner is None or lease.container == owner)]
        want, obtained, found = delegate_wanted(store, ipam, host, want, inp.networks,
                                                {(x.network, x.endpoint): x for x in leases})
        report.problems += found
        actions = P.plan(host, want, actual, oper, links, hold)
        first = True
        for act in actions:
            _apply(act, store, plumber, host, report,
                   preferred_ifname if first and isinstance(act, P.Plug) else None)
            if isinstance(act, P.Plug):
                first = False
        report.kept = [a.endpoint_id for a in actual if a.endpoint_id in want and
                       a.endpoint_id not in {p.endpoint_id for p in report.plugged} and
                       a.endpoint_id not in report.unplugged]
        plugged = {p.endpoint_id for p in report.plugged} | set(report.kept)
        failed = {e for e in obtained if e not in plugged}  # nothing half-plugged stays
        leases = [x for x in read_leases(store, host) if not x.driver and (
            owner is None or x.container == owner)]
        give_back(store, ipam, [x for x in leases if x.endpoint in failed or (
            x.endpoint not in want and x.endpoint not in hold)], report.problems)
    for msg in report.problems:
        LOG.error("%s", logline("problem", host=host, error=msg))
    return report


def _apply(act: P.Action, store: Store, plumber: Plumber, host: str, report: Report,
           preferred_ifname: str | None) -> None:
    if isinstance(act, P.Unplug):
        LOG.info("%s", logline("unplug", host=host, endpoint=act.endpoint_id, port=act.port_name,
                               reason=act.reason))
        plumber.unplug(act.port_name)
        store.delete(keys.oper_endpoint(act.endpoint_id))
        report.unplugged.append(act.endpoint_id)
    elif isinstance(act, P.DeleteLink):
        LOG.info("%s", logline("delete-leftover-veth", host=host, link=act.name))
        plumber.links.delete_link(act.name)
    elif isinstance(act, P.Plug):
        t0 = time.monotonic()
        try:
            done = plumber.plug(act.want, preferred_ifname)
        except (PlumbingError, OvsdbError) as e:
            report.plug_failures += 1
            LOG.warning("%s", logline("plug-failed", host=host, endpoint=act.want.endpoint_id,
                                      error=str(e)))
            report.problems.append(str(e))
            return
        report.plug_seconds.append(time.monotonic() - t0)
        LOG.info("%s", logline("plug", host=host, endpoint=act.want.endpoint_id,
                               port=done.port_name, ofport=done.ofport, netns=done.netns,
                               ms=f"{report.plug_seconds[-1] * 1e3:.1f}"))
        store.put(keys.oper_endpoint(act.want.endpoint_id),
                  json.dumps(P.oper_value(host, act.want, done.ofport), sort_keys=True))
        report.plugged.append(done)
    elif isinstance(act, P.WriteOper):
        store.put(keys.oper_endpoint(act.endpoint_id), json.dumps(act.value, sort_keys=True))
    elif isinstance(act, P.DeleteOper):
        store.delete(keys.oper_endpoint(act.endpoint_id))
    elif isinstance(act, P.Problem):
        report.problems.append(act.message)
