"""``make demo``: the product tour on a real test bed, in one command.

Brings up the hosts of an example (OVS per host, etcd, controller, agents), loads its intent with
netdcli, starts its containers and a physical machine (``run-external``: a plain namespace on the
first VLAN network's VLAN), prints an isolation matrix (every endpoint pings every other), the
TTL of a routed pair, and one host's flows with the intent object behind each, then tears
everything down (also on Ctrl-C or an error; ``--keep`` leaves the bed running).  Exit code 0
when the matrix is as the intent says: reachable exactly within a network (the physical machine
included), and between the networks of one router.  The default example puts two tenants (a
VLAN, a VXLAN network) in the same subnet, and a router between the VLAN network and a VXLAN one;
between networks every container knows the other endpoints' MACs (static ARP), so a leak would
show as a reply.

    python -m topologies.tour [--config FILE] [--workdir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from netaddr import IPNetwork

from intent.model import VLAN, EndpointSpec, ResolvedIntent
from intent.resolved import read_resolved
from topologies import bed, containers, externals
from topologies.matrix import Pin, plan_matrix
from topologies.plan import Ports, default_ports, external_netns, load_config_hosts, make_plan

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_CONFIG = ROOT / "examples" / "two_tenants_router.json"  # VLAN + VXLAN, one subnet, router
PHYSICAL = "phys1"
OK, NO = "✓", "✗"


def step(msg: str) -> None:
    print(f"\n== {msg}", flush=True)


def say(msg: str) -> None:
    print(f"   {msg}", flush=True)


def load_intent(etcd: str, config: Path) -> None:
    """``netdcli -cfg FILE -wait``, showing its output."""
    cmd = [sys.executable, "-m", "netdcli.cli", "-etcd", etcd, "-cfg", str(config), "-wait"]
    say("$ netdcli -cfg " + config.name + " -wait")
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    for line in (res.stdout + res.stderr).splitlines():
        say("  " + line)
    if res.returncode != 0:
        raise bed.BedError(f"netdcli failed (exit {res.returncode})")


def read_intent(etcd: str) -> ResolvedIntent:
    from intent.store_etcd import EtcdStore
    store = EtcdStore(etcd)
    try:
        return read_resolved(store)
    finally:
        store.close()


def start_containers(workdir: Path, intent: ResolvedIntent) -> dict[str, str]:
    """Run every bound endpoint's netns owner on its host; returns container -> netns."""
    owners = {e.netns_owner: e.host for e in intent.endpoints if e.host}
    for name, host in sorted(owners.items()):
        containers.run(workdir, host, name, wait=30, say=say)
    st = containers.status(workdir)
    return {c["name"]: c["netns"] for c in st["containers"]}


def start_physical(workdir: Path, intent: ResolvedIntent) -> EndpointSpec | None:
    """A physical machine on the first VLAN network with endpoints, at the subnet's last free
    host address; as a pseudo endpoint of that network (None: no VLAN network)."""
    used = {e.network for e in intent.endpoints if e.host}
    nets = sorted((n for n in intent.networks if n.net_type == VLAN and n.name in used),
                  key=lambda n: (n.tenant, n.name))
    if not nets:
        return None
    net = nets[0]
    taken = {e.ip for e in intent.endpoints if e.network == net.name} | {net.gateway}
    subnet = IPNetwork(net.subnet)
    ip = next(str(a) for a in reversed(list(subnet.iter_hosts())) if str(a) not in taken)
    rec = externals.run(workdir, PHYSICAL, [net.tag], [f"{ip}/{subnet.prefixlen}"], say=say)
    return EndpointSpec(f"{net.name}-{PHYSICAL}", net.name, PHYSICAL, None, ip,
                        rec["legs"][0]["mac"])


def label(ep: EndpointSpec, intent: ResolvedIntent) -> str:
    tenant = next((n.tenant for n in intent.networks if n.name == ep.network), "?")
    return f"{tenant}/{ep.network}/{ep.container}"


def pings(netns: str, ip: str) -> bool:
    for _ in range(3):  # a freshly plugged port may miss the very first packet
        res = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c1", "-W1", ip],
                             capture_output=True, timeout=10)
        if res.returncode == 0:
            return True
    return False


def _ifname_of(netns: str, ip: str) -> str:
    res = subprocess.run(["ip", "-n", netns, "-j", "addr", "show"], capture_output=True,
                         text=True, timeout=10)
    for link in json.loads(res.stdout or "[]"):
        if any(a.get("local") == ip for a in link.get("addr_info", [])):
            return link["ifname"]
    raise bed.BedError(f"no interface with {ip} in namespace {netns}")


def apply_pin(netns: str, pin: Pin) -> None:
    """The permanent neighbour entry (and /32 route) of ``pin`` in ``netns``."""
    dev = _ifname_of(netns, pin.own_ip)
    cmds = [["ip", "-n", netns, "neigh", "replace", pin.peer_ip, "lladdr", pin.peer_mac,
             "dev", dev, "nud", "permanent"]]
    if pin.route:
        cmds.insert(0, ["ip", "-n", netns, "route", "replace", f"{pin.peer_ip}/32", "dev", dev,
                        "src", pin.own_ip])
    for cmd in cmds:
        subprocess.run(cmd, check=True, capture_output=True, timeout=10)


def isolation_matrix(intent: ResolvedIntent, netns: dict[str, str],
                     physical: tuple[EndpointSpec, ...] = ()) -> tuple[list[str], bool]:
    """The printed matrix (row pings column) and whether it matches the intent; ``physical``:
    pseudo endpoints of physical machines (their ``netns`` entries under their names).

    Between networks, each side knows the other's real MAC (``topologies.matrix``), so a reply
    means the switch let a frame through that isolation must stop.
    """
    plan = plan_matrix([*(e for e in intent.endpoints if e.host and e.netns_owner in netns),
                        *physical], {n.name: n for n in intent.networks}, intent.routers,
                       [p.id for p in physical])
    for pin in plan.pins:
        apply_pin(netns[pin.container], pin)
    eps = plan.endpoints
    pairs = [k for k, v in plan.expect.items() if v is not None]
    owner = {e.id: e.netns_owner for e in eps}
    ip = {e.id: e.ip for e in eps}
    with ThreadPoolExecutor(max_workers=8) as pool:
        got = dict(zip(pairs, pool.map(lambda p: pings(netns[owner[p[0]]], ip[p[1]]), pairs),
                       strict=True))
    width = max(len(label(e, intent)) + len(e.ip) + 3 for e in eps)
    lines = [f"{'':>{width + 4}}" + "".join(f"{i + 1:>3}" for i in range(len(eps)))]
    good = True
    for i, a in enumerate(eps):
        cells = ""
        for b in eps:
            if a.id == b.id:
                cells += f"{'·':>3}"
                continue
            expect = plan.expect[(a.id, b.id)]
            if expect is None:
                cells += f"{'=':>3}"
                continue
            good &= got[(a.id, b.id)] == expect
            mark = (OK if got[(a.id, b.id)] else NO) + ("" if got[(a.id, b.id)] == expect
                                                         else "!")
            cells += f"{mark:>3}"
        lines.append(f"{i + 1:>3} {label(a, intent) + ' (' + a.ip + ')':<{width}}{cells}")
    if plan.pins:
        lines.append(f"({len(plan.pins)} static ARP entries: between networks each side knows "
                     "the other's real MAC, so only isolation can stop a frame)")
    for p in physical:
        lines.append(f"({p.container}: a physical machine on the VLAN of {p.network}, no OVS, no "
                     "agent; a router routes only to endpoints)")
    if any(v is None for v in plan.expect.values()):
        lines.append("(= not testable by ping from that container: same container, or an "
                     "address its own networks use)")
    return lines, good


def routed_pairs(intent: ResolvedIntent, netns: dict[str, str]) -> list[str]:
    """For every router: one endpoint pings one of another network, and the reply's TTL is
    compared with a ping inside the network (routing decrements it by exactly one)."""
    lines = []
    for r in intent.routers:
        eps = [e for e in intent.endpoints if e.host and e.network in r.networks
               and e.netns_owner in netns]
        src = next((e for e in eps if any(x.network == e.network and x.id != e.id
                                           for x in eps)), None)
        dst = next((e for e in eps if src and e.network != src.network), None)
        peer = next((e for e in eps if src and e.network == src.network and e.id != src.id),
                    None)
        if src is None or dst is None or peer is None:
            continue
        routed, switched = ttl_of(netns[src.netns_owner], dst.ip), \
            ttl_of(netns[src.netns_owner], peer.ip)
        ok = routed is not None and switched is not None and routed == switched - 1
        lines.append(f"router {r.tenant}/{r.name}: {src.container} ({src.network}) -> "
                     f"{dst.container} ({dst.network}) ttl={routed}, inside {src.network} "
                     f"ttl={switched} {OK if ok else NO + '!'}")
    return lines


def ttl_of(netns: str, ip: str) -> int | None:
    for _ in range(3):
        res = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c1", "-W1", ip],
                             capture_output=True, text=True, timeout=10)
        if "ttl=" in res.stdout:
            return int(res.stdout.split("ttl=")[1].split()[0])
    return None


def show_flows(rest: str, host: str) -> list[str]:
    """The controller's desired flows of ``host``, each with the intent object behind it."""
    with urllib.request.urlopen(f"{rest}/api/v1/hosts/{host}/flows", timeout=10) as resp:
        data = json.load(resp)
    lines = [f"{'table':>5} {'prio':>5}  {'match':<58} intent object"]
    for f in data["flows"]:
        match = ",".join(f"{k}={v}" for k, v in f["match"].items()) or "*"
        lines.append(f"{f['table']:>5} {f['priority']:>5}  {match[:58]:<58} {f['owner']}")
    for g in data.get("groups", []):
        lines.append(f"group {g['group_id']:#x} ({len(g['buckets'])} buckets) {g['owner']}")
    return lines


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m topologies.tour", description=__doc__.split(
        "\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter, epilog="""examples:
  python -m topologies.tour                       # what `make demo` runs
  python -m topologies.tour --config examples/two_hosts_multiple_vxlan_nets.json --keep""")
    p.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="example intent "
                   f"(default: examples/{DEFAULT_CONFIG.name})")
    p.add_argument("--workdir", type=Path, default=Path("/tmp/netplugin-tour"))
    p.add_argument("--keep", action="store_true", help="leave the test bed up at the end")
    p.add_argument("--flows-host", help="whose flows to show (default: the first host)")
    for name in ("etcd", "ofp", "rest"):
        p.add_argument(f"--{name}-port", type=int, help=f"{name} port (default: per work dir)")
    return p


def tour(args: argparse.Namespace) -> int:
    workdir = args.workdir.resolve()
    d = default_ports(workdir)
    etcd_port = args.etcd_port or d.etcd
    ports = Ports(etcd=etcd_port, etcd_peer=etcd_port + 1, ofp=args.ofp_port or d.ofp,
                  rest=args.rest_port or d.rest)
    plan = make_plan(workdir, load_config_hosts(args.config), ports)
    etcd, rest = bed.etcd_url(plan), bed.rest_url(plan)

    step(f"1/5 test bed: {len(plan.hosts)} hosts from {args.config.name} (one OVS each), "
         "etcd, controller, agents")
    bed.down(workdir, say=lambda m: None)
    bed.up(workdir, plan, say=say)

    step("2/5 intent: tenants, networks, endpoints written to etcd; IPs/VLANs/VNIs allocated")
    load_intent(etcd, args.config)
    intent = read_intent(etcd)
    for n in sorted(intent.networks, key=lambda n: (n.tenant, n.name)):
        say(f"tenant {n.tenant:<14} network {n.name:<10} {n.net_type:<5} {n.tag:<6} {n.subnet}")

    step("3/5 containers: each a namespace registered with its host; the agent plugs it; and a "
         "physical machine on the VLAN trunk")
    netns = start_containers(workdir, intent)
    phys = start_physical(workdir, intent)
    physical = (phys,) if phys else ()
    if phys:
        netns[phys.container] = external_netns(plan.prefix, phys.container)

    step(f"4/5 isolation matrix: row pings column ({OK} reply, {NO} none; '!' = not as intended)")
    t0 = time.monotonic()
    lines, good = isolation_matrix(intent, netns, physical)
    for line in lines:
        print(line, flush=True)
    say(f"({time.monotonic() - t0:.1f}s) " + ("as intended: reachable exactly within a "
        "network, and between the networks of one router" if good else
        "NOT as intended: see the cells marked '!'"))
    for line in routed_pairs(intent, netns):
        say(line)
        good &= line.endswith(OK)

    host = args.flows_host or plan.hosts[0].name
    step(f"5/5 flows of {host}'s switch, each with the intent object behind it")
    for line in show_flows(rest, host):
        print("   " + line, flush=True)
    return 0 if good else 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if os.geteuid() != 0:
        print("error: the tour needs root (network namespaces, OVS)", file=sys.stderr)
        return 2
    rc = 1
    signal.signal(signal.SIGINT, signal.default_int_handler)  # even if started in background
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        rc = tour(args)
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        rc = 130
    except Exception as exc:  # report, then still tear down
        print(f"error: {type(exc).__name__}: {exc}", file=sys.stderr)
    finally:
        if args.keep and rc == 0:
            print(f"\nkept running: python -m topologies --workdir {args.workdir} status|down")
        else:
            step("tear down")
            bed.down(args.workdir.resolve(), say=say)
    return rc


if __name__ == "__main__":
    sys.exit(main())
