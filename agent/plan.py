"""Pure planning: what this host should have plugged vs what OVS has -> a list of actions.

No I/O here.  The agent (and the CNI plugin) gather the inputs (intent from the store, the runtime
registry, the ports OVS holds, the oper keys), call :func:`plan`, and carry out the actions in
order: unplugs first, then plugs, then oper-key writes and deletes.

A plug is described by a :class:`Desired` whose ``sig`` (a digest of everything the plumbing sets)
is stored on the OVS interface: a port whose signature differs from the desired one (new netns,
container restarted, address changed) is unplugged and plugged again.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from netaddr import IPNetwork

from intent.model import VXLAN, EndpointSpec, NetworkSpec

MTU_VXLAN = 1450
MTU_DEFAULT = 1500
PORT_PREFIX = "np"
PORT_RE = re.compile(r"^np[0-9a-f]{12}$")
MIN_ID_PREFIX = 12  # the short container id Docker and podman show
ID_PREFIX_RE = re.compile(rf"^[0-9a-f]{{{MIN_ID_PREFIX},}}$")


@dataclass(frozen=True)
class RuntimeEntry:
    """A running container as the runtime registry records it."""

    container: str
    netns: str
    id: str = ""


@dataclass(frozen=True)
class Desired:
    """One endpoint that must be plugged here, with every value the plumbing sets."""

    endpoint_id: str
    network: str
    container: str  # the endpoint's container (its name in the intent)
    owner: str  # the container whose netns is used (attach_uuid or container)
    netns: str
    container_id: str
    ip: str
    prefixlen: int
    mac: str
    mtu: int
    gateway: str | None

    @property
    def port_name(self) -> str:
        return port_name(self.endpoint_id)

    @property
    def sig(self) -> str:
        data = [self.endpoint_id, self.netns, self.container_id, self.ip, self.prefixlen,
                self.mac.lower(), self.mtu, self.gateway or ""]
        return hashlib.sha1(json.dumps(data).encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Actual:
    """A port on br-int that carries ``external_ids:endpoint-id``."""

    port_name: str
    endpoint_id: str
    sig: str = ""
    ofport: int = -1
    healthy: bool = True  # ofport assigned and the host-side veth exists
    ip: str = ""
    netns: str = ""
    container: str = ""
    container_id: str = ""
    driver: str = ""  # external_ids:np-driver: another driver's port (e.g. "docker")


@dataclass(frozen=True)
class Plug:
    want: Desired


@dataclass(frozen=True)
class Unplug:
    port_name: str
    endpoint_id: str
    reason: str


@dataclass(frozen=True)
class DeleteLink:
    """A leftover host-side veth (no OVS port): deleting it removes its container end too."""

    name: str


@dataclass(frozen=True)
class WriteOper:
    endpoint_id: str
    value: dict


@dataclass(frozen=True)
class DeleteOper:
    endpoint_id: str


@dataclass(frozen=True)
class Problem:
    """A desired endpoint that cannot be plugged; ``message`` names it.

    ``containers`` are the runtime registry names involved; ``hold`` asks :func:`plan` to leave
    the endpoint's port as it is (the intent is unclear, not absent: never unplug on a guess).
    """

    endpoint_id: str
    message: str
    containers: tuple[str, ...] = ()
    hold: bool = False


Action = Plug | Unplug | DeleteLink | WriteOper | DeleteOper | Problem


def port_name(endpoint_id: str) -> str:
    """The host-side veth / OVS port name of an endpoint (fits IFNAMSIZ)."""
    return PORT_PREFIX + hashlib.sha1(endpoint_id.encode()).hexdigest()[:12]


def network_mtu(net: NetworkSpec) -> int:
    return MTU_VXLAN if net.net_type == VXLAN else MTU_DEFAULT


def desired_for(ep: EndpointSpec, net: NetworkSpec, rt: RuntimeEntry) -> Desired:
    """The plug of ``ep`` into the netns of ``rt`` (the endpoint's netns owner, by its name)."""
    return Desired(
        endpoint_id=ep.id, network=ep.network, container=ep.container, owner=rt.container,
        netns=rt.netns, container_id=rt.id, ip=ep.ip, prefixlen=IPNetwork(net.subnet).prefixlen,
        mac=ep.mac, mtu=network_mtu(net), gateway=net.gateway)


def refers_to(ref: str, name: str, container_id: str) -> bool:
    """Whether an endpoint's ``AttachUUID`` (or container) ``ref`` names this container.

    By name, by full id, or by an id prefix of at least 12 hex digits (as ``docker ps`` shows).
    """
    return ref == name or (bool(container_id) and (
        ref == container_id or (ID_PREFIX_RE.match(ref) is not None
                                and container_id.startswith(ref))))


def find_containers(ref: str, runtime: Mapping[str, RuntimeEntry]) -> list[RuntimeEntry]:
    """The running containers ``ref`` names, in Docker's order: full id, then name, then a
    unique id prefix.  More than one entry means ``ref`` is ambiguous."""
    by_id = [rt for rt in runtime.values() if rt.id and rt.id == ref]
    if by_id:
        return sorted(by_id, key=lambda rt: rt.container)
    if ref in runtime:
        return [runtime[ref]]
    if ID_PREFIX_RE.match(ref) is None:
        return []
    return sorted((rt for rt in runtime.values() if rt.id.startswith(ref)),
                  key=lambda rt: rt.container)


def desired_set(host: str, endpoints: Mapping[str, EndpointSpec],
                networks: Mapping[str, NetworkSpec], runtime: Mapping[str, RuntimeEntry],
                netns_exists=lambda path: True) -> tuple[dict[str, Desired], list[Problem]]:
    """Endpoints bound to ``host`` whose netns owner runs here (and whose netns exists).

    The owner (``AttachUUID``, else the container) is looked up by id or name
    (:func:`find_containers`); an ambiguous one is a :class:`Problem` naming the candidates.
    """
    want: dict[str, Desired] = {}
    problems: list[Problem] = []
    for ep in sorted(endpoints.values(), key=lambda e: e.id):
        if ep.host != host:
            continue
        found = find_containers(ep.netns_owner, runtime)
        if len(found) > 1:
            names = tuple(rt.container for rt in found)
            listed = ", ".join(f"{rt.container} (id {rt.id})" for rt in found)
            problems.append(Problem(
                ep.id, f"endpoint {ep.id}: AttachUUID {ep.netns_owner} is ambiguous on host "
                       f"{host}: it names {listed}; give more of the id", names, hold=True))
            continue
        rt = found[0] if found else None
        if rt is None or not netns_exists(rt.netns):
            continue
        net = networks.get(ep.network)
        if net is None:
            problems.append(Problem(ep.id, f"endpoint {ep.id}: network {ep.network} not resolved",
                                    (rt.container,)))
            continue
        want[ep.id] = desired_for(ep, net, rt)
    return want, problems


def oper_value(host: str, want: Desired, ofport: int) -> dict:
    """The JSON of /netplugin/oper/endpoints/<id> (contract shape)."""
    return {"host": host, "ofport": ofport, "port_name": want.port_name,
            "container": want.owner, "netns": want.netns}


def plan(host: str, want: Mapping[str, Desired], actual: list[Actual],
         oper: Mapping[str, dict], host_links: frozenset[str] = frozenset(),
         hold: frozenset[str] = frozenset()) -> list[Action]:
    """Actions that take this host from ``actual`` to ``want``.

    ``oper`` maps endpoint id -> oper value for the keys this host wrote; ``host_links`` are the
    names of host-side veths (``np…``) present in the host namespace; the ports and oper keys of
    the endpoints in ``hold`` are left as they are.  Ports and oper keys that another driver owns
    (``Actual.driver``, an oper value's ``"driver"``: the Docker driver's) are left alone too, and
    their endpoints are never plugged by the agent.
    """
    in_ovs = {a.port_name for a in actual}
    foreign = ({a.endpoint_id for a in actual if a.driver} |
               {e for e, v in oper.items() if v.get("driver")})
    actual = [a for a in actual if not a.driver]
    oper = {e: v for e, v in oper.items() if not v.get("driver")}
    want = {e: w for e, w in want.items() if e not in foreign}
    unplugs: list[Action] = []
    plugs: list[Action] = []
    opers: list[Action] = []
    kept: dict[str, Actual] = {}
    seen: set[str] = set()
    for a in sorted(actual, key=lambda a: a.port_name):
        if a.endpoint_id in hold:
            continue
        w = want.get(a.endpoint_id)
        if a.endpoint_id in seen:
            reason = "duplicate port"
        elif w is None:
            reason = "not desired on this host"
        elif a.port_name != w.port_name or a.sig != w.sig:
            reason = "plug changed"
        elif not a.healthy:
            reason = "port broken"
        else:
            kept[a.endpoint_id] = a
            seen.add(a.endpoint_id)
            continue
        unplugs.append(Unplug(a.port_name, a.endpoint_id, reason))
    for name in sorted(host_links - in_ovs):
        if PORT_RE.match(name):
            unplugs.append(DeleteLink(name))
    # IPs held by ports that stay: a new plug may not reuse one in the same netns-less host scope.
    held = {(want[e].network, a.ip or want[e].ip): e for e, a in kept.items()}
    for eid, w in sorted(want.items()):
        if eid in kept:
            a = kept[eid]
            val = oper_value(host, w, a.ofport)
            if oper.get(eid) != val:
                opers.append(WriteOper(eid, val))
            continue
        other = held.get((w.network, w.ip))
        if other is not None and other != eid:
            plugs.append(Problem(eid, f"endpoint {eid}: IP {w.ip} already in use on host {host} "
                                      f"by endpoint {other}"))
            continue
        held[(w.network, w.ip)] = eid
        plugs.append(Plug(w))
    for eid in sorted(oper):
        if eid not in kept and eid not in want and eid not in hold:
            opers.append(DeleteOper(eid))
    return unplugs + plugs + opers
