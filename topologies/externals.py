"""Physical machines on the VLAN trunk (``run-external``): ordinary machines, no OVS, no agent.

A physical machine is a network namespace whose interfaces are *access ports* of a VLAN: it
sends and receives untagged frames, the trunk carries them tagged.  This kernel has no 8021q
module and no bridge VLAN filtering, so the tagging is done by a small Open vSwitch (userspace
datapath) in the underlay namespace, started with the first machine::

    host uplinks ── "vl" (Linux bridge, a hub) ── vl-acc ═ acc-trunk ── OVS "access" (NORMAL)
                                                              tag=100 ── xe0l0 ═ eth0 machine m1
                                                              tag=300 ── xe0l1 ═ eth1 machine m1

The hosts' side stays the hub it was (frames between hosts never touch this OVS); the access
switch learns MACs only between its trunk port and the machines' ports, so a container MAC that
moves from one host to another (all behind the trunk port) never sends a frame astray.  A
machine with more than one leg forwards IPv4 between them (it can play a physical router).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from topologies import ovs, proc
from topologies.bed import BedError, Say, load_plan
from topologies.plan import (
    ACCESS_BRIDGE,
    ACCESS_TRUNK,
    UNDERLAY_MTU,
    BedPlan,
    ExternalPlan,
    plan_external,
)
from topologies.state import BedState, locked

TRUNK = "underlay"  # the access switch's processes are recorded as ``<daemon>:underlay``


def access_paths(workdir: Path) -> ovs.OvsPaths:
    """Where the underlay's access switch keeps its files."""
    return ovs.OvsPaths(workdir / "underlay")


def run(workdir: Path, name: str, vlans: list[int], cidrs: list[str],
        gateway: str | None = None, say: Say = print) -> dict[str, Any]:
    """Start physical machine ``name``: one access port per (VLAN, address) pair."""
    with locked(workdir):
        state = BedState.load(workdir)
        plan = load_plan(state)
        ext = plan_external(plan.prefix, name, vlans, cidrs, gateway)
        if name in state.externals or name in state.containers:
            kind = "machine" if name in state.externals else "container"
            raise BedError(f"{name} already runs (a {kind}): stop it first or pick another name")
        if any(h.name == name for h in plan.hosts) or name == "underlay":
            raise BedError(f"{name!r} is a host name: pick another machine name")
        ensure_access_switch(workdir, plan, state, say)
        seq = next(i for i in range(len(state.externals) + 1)
                   if all(r["seq"] != i for r in state.externals.values()))
        rec = {"seq": seq, "netns": ext.netns, "gateway": ext.gateway,
               "forwarding": ext.forwarding,
               "legs": [{"ifname": leg.ifname, "vlan": leg.vlan, "cidr": leg.cidr,
                         "mac": leg.mac, "port": f"xe{seq}l{i}"}
                        for i, leg in enumerate(ext.legs)]}
        proc.netns_add(ext.netns)
        state.add_netns(ext.netns)
        state.externals[name] = rec
        state.save()
        try:
            _plumb(workdir, plan, ext, rec)
        except (proc.CommandError, BedError) as exc:
            _remove(workdir, plan, state, name)
            raise BedError(f"run-external {name}: {exc}") from None
    legs = "; ".join(f"{leg['ifname']} {leg['cidr']} vlan {leg['vlan']}" for leg in rec["legs"])
    say(f"{name} running on the VLAN trunk (netns {ext.netns}): {legs}"
        + (f", default via {ext.gateway}" if ext.gateway else "")
        + (", IP forwarding on" if ext.forwarding else ""))
    return rec


def _plumb(workdir: Path, plan: BedPlan, ext: ExternalPlan, rec: dict[str, Any]) -> None:
    ul, ns, paths = plan.underlay_ns, ext.netns, access_paths(workdir)
    for leg, port in zip(ext.legs, (r["port"] for r in rec["legs"]), strict=True):
        proc.run(["ip", "link", "add", "name", leg.ifname, "address", leg.mac, "netns", ns,
                  "type", "veth", "peer", "name", port, "netns", ul])
        proc.run(["ip", "-n", ul, "link", "set", port, "up"])
        ovs.vsctl(paths, "add-port", ACCESS_BRIDGE, port, f"tag={leg.vlan}")
        _check_port(paths, port)
        proc.run(["ip", "-n", ns, "addr", "add", leg.cidr, "dev", leg.ifname])
        proc.run(["ip", "-n", ns, "link", "set", leg.ifname, "up"])
        # the userspace datapath forwards what it reads as is: the sender must checksum
        proc.run(proc.ns_cmd(ns, ["ethtool", "-K", leg.ifname, "tx", "off"]))
    if ext.gateway:
        proc.run(["ip", "-n", ns, "route", "add", "default", "via", ext.gateway])
    if ext.forwarding:
        proc.run(proc.ns_cmd(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]))


def _check_port(paths: ovs.OvsPaths, port: str) -> None:
    """``add-port`` exits 0 even when the port failed: look at its ofport."""
    ofport = ovs.vsctl(paths, "get", "interface", port, "ofport")
    if not ofport.lstrip("-").isdigit() or int(ofport) <= 0:
        err = ovs.vsctl(paths, "get", "interface", port, "error", check=False)
        raise BedError(f"OVS port {port} of the access switch failed: {err or ofport}")


def ensure_access_switch(workdir: Path, plan: BedPlan, state: BedState, say: Say) -> None:
    """The underlay's access switch, its trunk port in the "vl" hub (started once; repaired
    if an earlier start stopped half-way)."""
    paths = access_paths(workdir)
    daemons = [state.pid_of(f"{d}:{TRUNK}") for d in ("ovsdb-server", "ovs-vswitchd")]
    if not any(daemons):
        say(f">> underlay {plan.underlay_ns}: OVS access switch {ACCESS_BRIDGE!r} on the VLAN "
            "trunk")
        for dname, pid in ovs.start_daemons(paths, plan.underlay_ns).items():
            state.add_pid(f"{dname}:{TRUNK}", pid, None,
                          launch=ovs.daemon_launch(paths, plan.underlay_ns, dname))
    elif not all(r and proc.alive(r["pid"], r["start"]) for r in daemons):
        raise BedError("the underlay's access switch is down: `python -m topologies restart "
                       "ovsdb-server:underlay` and `... restart ovs-vswitchd:underlay`")
    ours, hub = ACCESS_TRUNK
    ul = plan.underlay_ns
    if proc.run(["ip", "-n", ul, "link", "show", ours], check=False).returncode != 0:
        proc.run(["ip", "-n", ul, "link", "add", "name", ours, "mtu", str(UNDERLAY_MTU), "type",
                  "veth", "peer", "name", hub, "mtu", str(UNDERLAY_MTU)])
    proc.run(["ip", "-n", ul, "link", "set", hub, "master", "vl", "up"])
    proc.run(["ip", "-n", ul, "link", "set", ours, "up"])
    ovs.vsctl(paths, "--may-exist", "add-br", ACCESS_BRIDGE,
              "--", "set", "bridge", ACCESS_BRIDGE, "datapath_type=netdev",
              "fail_mode=standalone",
              "--", "--may-exist", "add-port", ACCESS_BRIDGE, ours, "vlan_mode=trunk",
              "--", "set", "interface", ours, f"mtu_request={UNDERLAY_MTU}")
    _check_port(paths, ours)


def stop(workdir: Path, name: str, say: Say = print) -> None:
    """Remove physical machine ``name``: its access ports and its namespace."""
    with locked(workdir):
        state = BedState.load(workdir)
        plan = load_plan(state)
        if name not in state.externals:
            raise BedError(f"no machine {name} (running: "
                           f"{', '.join(sorted(state.externals)) or 'none'})")
        _remove(workdir, plan, state, name)
    say(f"{name} stopped")


def _remove(workdir: Path, plan: BedPlan, state: BedState, name: str) -> None:
    rec = state.externals[name]
    vswitchd = state.pid_of(f"ovs-vswitchd:{TRUNK}")
    for leg in rec["legs"]:
        if vswitchd and proc.alive(vswitchd["pid"], vswitchd["start"]):
            ovs.vsctl(access_paths(workdir), "--if-exists", "del-port", ACCESS_BRIDGE,
                      leg["port"], check=False)
        proc.run(["ip", "-n", plan.underlay_ns, "link", "del", leg["port"]], check=False)
    proc.netns_delete(rec["netns"])
    del state.externals[name]
    if rec["netns"] in state.netns:
        state.netns.remove(rec["netns"])
    state.save()
