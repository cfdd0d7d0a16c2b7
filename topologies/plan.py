"""The test bed's plan: names, addresses and ports, computed from a config file and a work dir.

Pure functions only (no I/O besides reading nothing): everything ``up`` creates is named here, so
``down`` and a second test bed in another work dir can never collide with it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DEFAULT_UPLINK = "eth2"  # the seed's examples name this uplink
UNDERLAY_IF = "ul0"  # the host's NIC in br-phy (VXLAN underlay)
PHY_BRIDGE = "br-phy"
UNDERLAY_MTU = 1600
ALLOC_VTEP_NET = "172.30.0.0/24"  # VTEP addresses when the config gives none (inside namespaces)
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
IFNAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")


class PlanError(ValueError):
    """The config or the command line cannot be turned into a test bed."""


@dataclass(frozen=True)
class HostPlan:
    """One simulated host."""

    name: str
    index: int
    netns: str
    vtep_ip: str
    vtep_prefixlen: int
    uplink: str
    phy_mac: str  # br-phy's MAC (fixed, so peers can pre-seed tnl/neigh)
    ul_vx: str  # underlay-side veth ends (in the underlay namespace)
    ul_vl: str


@dataclass(frozen=True)
class Ports:
    etcd: int
    etcd_peer: int
    ofp: int
    rest: int
    # (client, peer) ports of the etcd members after the first (``up --etcd-members N``)
    etcd_members: tuple[tuple[int, int], ...] = ()
    # (OpenFlow, REST) ports of the controllers after the first (``up --controllers N``)
    controllers: tuple[tuple[int, int], ...] = ()

    @property
    def etcd_clients(self) -> list[int]:
        """Client ports of every etcd member, the first member's first."""
        return [self.etcd] + [c for c, _p in self.etcd_members]

    @property
    def controller_ports(self) -> list[tuple[int, int]]:
        """(OpenFlow, REST) ports of every controller, the first one's first."""
        return [(self.ofp, self.rest), *self.controllers]


@dataclass(frozen=True)
class BedPlan:
    workdir: str
    prefix: str
    underlay_ns: str
    ports: Ports
    hosts: tuple[HostPlan, ...] = field(default_factory=tuple)
    tls: bool = False  # etcd, REST and OpenFlow over TLS with the bed's own CA (``up --tls``)

    @property
    def etcd_members(self) -> int:
        return 1 + len(self.ports.etcd_members)

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def controllers(self) -> list[str]:
        """The controllers' names (``controller``, ``controller2`` …), as ``status`` shows them."""
        return [controller_name(i) for i in range(len(self.ports.controller_ports))]

    def host(self, name: str) -> HostPlan:
        for h in self.hosts:
            if h.name == name:
                return h
        raise PlanError(f"no host {name!r} in this test bed (hosts: "
                        f"{', '.join(h.name for h in self.hosts) or 'none'})")


def controller_name(index: int) -> str:
    """The name of the test bed's controller number ``index`` (from 0)."""
    return "controller" if index == 0 else f"controller{index + 1}"


def prefix_for(workdir: str | Path) -> str:
    """A short name prefix unique to a work dir (``nb`` + 4 hex digits)."""
    digest = hashlib.sha1(str(Path(workdir).resolve()).encode()).hexdigest()
    return "nb" + digest[:4]


def default_ports(workdir: str | Path) -> Ports:
    """Four consecutive ports derived from the work dir (override them on the command line)."""
    digest = int(hashlib.sha1(str(Path(workdir).resolve()).encode()).hexdigest(), 16)
    base = 21000 + (digest % 1000) * 4
    return Ports(etcd=base, etcd_peer=base + 1, ofp=base + 2, rest=base + 3)


def container_netns(prefix: str, container: str) -> str:
    return f"{prefix}-c-{container}"


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.match(name):
        raise PlanError(f"bad {kind} name {name!r}: use letters, digits, '_', '.', '-' "
                        "(at most 63 characters, starting with a letter or digit)")
    return name


def _ci(obj: Any, key: str) -> Any:
    """Case-insensitive lookup of ``key`` in a JSON object (the seed's keys are)."""
    if not isinstance(obj, dict):
        return None
    for k, v in obj.items():
        if str(k).lower() == key.lower():
            return v
    return None


def hosts_from_config(data: dict[str, Any]) -> list[dict[str, str | None]]:
    """``Hosts[]`` of a seed config (name, intf, vtep_ip), else the hosts its endpoints name."""
    out: list[dict[str, str | None]] = []
    seen: set[str] = set()
    for raw in _ci(data, "Hosts") or []:
        name = _ci(raw, "Name")
        if not isinstance(name, str) or not name:
            raise PlanError(f"Hosts[]: entry without a Name: {json.dumps(raw)}")
        if name in seen:
            raise PlanError(f"Hosts[]: duplicate host {name!r}")
        seen.add(name)
        out.append({"name": name, "intf": _ci(raw, "Intf") or None,
                    "vtep_ip": _ci(raw, "VtepIp") or None})
    if out:
        return out
    for tenant in _ci(data, "Tenants") or []:
        for net in _ci(tenant, "Networks") or []:
            for ep in _ci(net, "Endpoints") or []:
                host = _ci(ep, "Host")
                if isinstance(host, str) and host and host not in seen:
                    seen.add(host)
                    out.append({"name": host, "intf": None, "vtep_ip": None})
    return out


def _vtep_addresses(given: list[str | None]) -> tuple[list[str], int]:
    """VTEP IPs for every host (given ones kept, the rest allocated) and one common prefix length.

    All VTEPs share one L2 segment, so the prefix length is the longest one (at most /24) that
    covers them all.
    """
    try:
        fixed = [ipaddress.IPv4Address(g) if g else None for g in given]
    except ValueError as exc:
        raise PlanError(f"bad VtepIp: {exc}") from None
    used = {a for a in fixed if a}
    if len(used) != len([a for a in fixed if a]):
        raise PlanError("two hosts have the same VtepIp")
    anchor = next((a for a in fixed if a), None)
    pool_net = (ipaddress.IPv4Network(f"{anchor}/24", strict=False) if anchor
                else ipaddress.IPv4Network(ALLOC_VTEP_NET))
    pool = (a for a in pool_net.hosts() if int(a) % 256 >= 10 and a not in used)
    addrs = [a if a else next(pool) for a in fixed]
    plen = 24
    while plen > 1 and len({ipaddress.IPv4Network(f"{a}/{plen}", strict=False)
                            for a in addrs}) > 1:
        plen -= 1
    return [str(a) for a in addrs], plen


def make_plan(workdir: str | Path, hosts: list[dict[str, str | None]],
              ports: Ports | None = None, tls: bool = False) -> BedPlan:
    """The whole test bed for ``hosts`` (dicts with name, intf, vtep_ip) in ``workdir``; an etcd
    cluster when ``ports`` has more than one member."""
    if not hosts:
        raise PlanError("no hosts: give a config with Hosts[] (or endpoints naming hosts), "
                        "or --hosts h1,h2")
    if len(hosts) > 200:
        raise PlanError("at most 200 hosts")
    wd = str(Path(workdir).resolve())
    prefix = prefix_for(wd)
    vteps, plen = _vtep_addresses([h.get("vtep_ip") for h in hosts])
    plans = []
    for i, (h, vtep) in enumerate(zip(hosts, vteps, strict=True)):
        name = check_name("host", str(h["name"]))
        uplink = h.get("intf") or DEFAULT_UPLINK
        if not IFNAME_RE.match(uplink) or uplink in (UNDERLAY_IF, PHY_BRIDGE, "lo", "br-int"):
            raise PlanError(f"host {name}: bad uplink interface name {uplink!r}")
        plans.append(HostPlan(
            name=name, index=i, netns=f"{prefix}-{name}", vtep_ip=vtep, vtep_prefixlen=plen,
            uplink=uplink, phy_mac=f"02:6e:62:00:{(i + 1) >> 8:02x}:{(i + 1) & 0xff:02x}",
            ul_vx=f"h{i}vx", ul_vl=f"h{i}vl"))
    ports = ports or default_ports(wd)
    every = [ports.etcd, ports.etcd_peer, ports.ofp, ports.rest,
             *(p for pair in ports.etcd_members for p in pair),
             *(p for pair in ports.controllers for p in pair)]
    if len(set(every)) != len(every):
        raise PlanError(f"the test bed's ports collide: {every}")
    return BedPlan(workdir=wd, prefix=prefix, underlay_ns=f"{prefix}-ul",
                   ports=ports, hosts=tuple(plans), tls=tls)


def load_config_hosts(path: str | Path) -> list[dict[str, str | None]]:
    """Read a config file and return its hosts (see :func:`hosts_from_config`)."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise PlanError(f"cannot read config {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise PlanError(f"config {path} is not JSON: {exc}") from None
    return hosts_from_config(data)


def plan_to_dict(plan: BedPlan) -> dict[str, Any]:
    import dataclasses
    return dataclasses.asdict(plan)


def plan_from_dict(data: dict[str, Any]) -> BedPlan:
    ports = dict(data["ports"])
    ports["etcd_members"] = tuple(tuple(p) for p in ports.get("etcd_members", ()))
    ports["controllers"] = tuple(tuple(p) for p in ports.get("controllers", ()))
    return BedPlan(workdir=data["workdir"], prefix=data["prefix"],
                   underlay_ns=data["underlay_ns"], ports=Ports(**ports),
                   hosts=tuple(HostPlan(**h) for h in data["hosts"]), tls=data.get("tls", False))


# ------------------------------------------------------------------ physical machines

ACCESS_BRIDGE = "access"  # the OVS bridge (underlay namespace) with the physical machines' ports
ACCESS_TRUNK = ("acc-trunk", "vl-acc")  # its trunk port and that veth's end in the "vl" hub


@dataclass(frozen=True)
class ExternalLeg:
    """One interface of a physical machine: an access port of ``vlan`` with ``cidr``."""

    ifname: str
    vlan: int
    cidr: str  # the machine's own address with its prefix length, e.g. 10.1.0.100/24
    mac: str  # stable per (bed, machine, interface): a machine started again keeps its MAC


@dataclass(frozen=True)
class ExternalPlan:
    """A physical machine (``run-external``): legs, default gateway, IP forwarding."""

    name: str
    netns: str
    legs: tuple[ExternalLeg, ...]
    gateway: str | None

    @property
    def forwarding(self) -> bool:
        """More than one leg: the machine routes between its VLANs."""
        return len(self.legs) > 1


def external_netns(prefix: str, name: str) -> str:
    return f"{prefix}-x-{name}"


def external_mac(prefix: str, name: str, leg: int) -> str:
    """A locally administered unicast MAC for leg ``leg`` of machine ``name``: the same each
    time the machine starts, so the neighbour caches of those it talked to stay right (an ARP
    answered by a switch's responder never reaches them to correct a changed MAC)."""
    d = hashlib.blake2b(f"{prefix}/{name}/{leg}".encode(), digest_size=5).digest()
    return "02:" + ":".join(f"{b:02x}" for b in d)


def plan_external(prefix: str, name: str, vlans: list[int], cidrs: list[str],
                  gateway: str | None = None) -> ExternalPlan:
    """Check ``run-external``'s arguments (``--vlan``/``--ip`` in pairs) and name the legs."""
    check_name("machine", name)
    if not vlans or len(vlans) != len(cidrs):
        raise PlanError(f"run-external {name}: give --vlan ID and --ip A.B.C.D/N in pairs, one "
                        f"pair per interface (got {len(vlans)} --vlan, {len(cidrs)} --ip)")
    legs: list[ExternalLeg] = []
    for i, (vlan, cidr) in enumerate(zip(vlans, cidrs, strict=True)):
        if not 1 <= vlan <= 4094:
            raise PlanError(f"--vlan {vlan}: a VLAN id is 1-4094")
        if vlan in (leg.vlan for leg in legs):
            raise PlanError(f"--vlan {vlan} given twice: one interface per VLAN")
        iface = _interface(cidr)
        for leg in legs:
            if iface.network.overlaps(ipaddress.IPv4Interface(leg.cidr).network):
                raise PlanError(f"--ip {cidr}: overlaps --ip {leg.cidr} of --vlan {leg.vlan}")
        legs.append(ExternalLeg(f"eth{i}", vlan, str(iface), external_mac(prefix, name, i)))
    if gateway is not None:
        try:
            gw = ipaddress.IPv4Address(gateway)
        except ValueError:
            raise PlanError(f"--gateway {gateway!r}: not an IPv4 address") from None
        nets = [ipaddress.IPv4Interface(leg.cidr) for leg in legs]
        if not any(gw in n.network for n in nets):
            raise PlanError(f"--gateway {gateway}: outside every --ip subnet "
                            f"({', '.join(str(n.network) for n in nets)})")
        if any(gw == n.ip for n in nets):
            raise PlanError(f"--gateway {gateway}: is the machine's own address")
    return ExternalPlan(name, external_netns(prefix, name), tuple(legs), gateway)


def _interface(cidr: str) -> ipaddress.IPv4Interface:
    if "/" not in cidr:
        raise PlanError(f"--ip {cidr!r}: give the prefix length too (A.B.C.D/N)")
    try:
        iface = ipaddress.IPv4Interface(cidr)
    except ValueError:
        raise PlanError(f"--ip {cidr!r}: not an IPv4 address with a prefix length") from None
    net = iface.network
    if net.prefixlen < 31 and iface.ip in (net.network_address, net.broadcast_address):
        raise PlanError(f"--ip {cidr}: the subnet's network or broadcast address, not a host's")
    return iface
