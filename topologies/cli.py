"""Command line of the test bed: ``python -m topologies up|run|stop|exec|status|down``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from topologies import bed, containers, externals, restart
from topologies.plan import PlanError, Ports, default_ports, load_config_hosts, make_plan
from topologies.proc import CommandError, free_port

DEFAULT_WORKDIR = "/tmp/netplugin-bed"

EPILOG = f"""\
examples:
  python -m topologies up --config examples/two_hosts_multiple_vxlan_nets.json
  python -m topologies up --hosts host1,host2 --no-controller --no-agent --workdir /tmp/b1
  python -m topologies run host1 myContainer1
  python -m topologies exec myContainer1 -- ip addr
  python -m topologies run-external phys1 --vlan 100 --ip 10.1.0.100/24 --gateway 10.1.0.1
  python -m topologies exec phys1 -- ping -c3 10.1.0.2
  python -m topologies exec host1 -- ovs-ofctl -O OpenFlow13 dump-flows br-int
  python -m topologies status
  python -m topologies up --config examples/two_hosts_vxlan.json --etcd-members 3 --tls
  python -m topologies restart ovs-vswitchd --host host1     # after a kill -9, say
  python -m topologies down

The work dir (--workdir, or $NETPLUGIN_BED, default {DEFAULT_WORKDIR}) holds every file,
log and the record of what was started; names of namespaces carry a prefix derived from it, so
two test beds in two work dirs run side by side.  Needs root.
"""


def _examples(*lines: str) -> str:
    prog = "python -m topologies"
    return "example" + ("s" if len(lines) > 1 else "") + ":\n" + "\n".join(
        f"  {ln}" if prog in ln else f"  {prog} {ln}" for ln in lines)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m topologies", epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="A multi-host netplugin test bed on one machine: every host a network "
                    "namespace with its own Open vSwitch (userspace datapath), an underlay, "
                    "etcd, the controller and one agent per host; containers are namespaces.")
    workdir_help = f"the test bed's directory (default: $NETPLUGIN_BED or {DEFAULT_WORKDIR})"
    p.add_argument("--workdir", default=os.environ.get("NETPLUGIN_BED", DEFAULT_WORKDIR),
                   help=workdir_help)
    # --workdir after the command works too (``up --workdir DIR``): it then wins
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--workdir", default=argparse.SUPPRESS, help=workdir_help)
    sub = p.add_subparsers(dest="cmd", required=True, metavar="COMMAND")

    def command(name: str, help_: str, examples: tuple[str, ...], **kw) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_, parents=[common], epilog=_examples(*examples),
                              formatter_class=argparse.RawDescriptionHelpFormatter, **kw)

    u = command("up", "bring the test bed up", (
        "up --config examples/two_hosts_multiple_vxlan_nets.json",
        "up --hosts host1,host2 --no-controller --no-agent --workdir /tmp/b1",
        "up --config examples/two_hosts_vxlan.json --etcd-members 3 --tls",
        "up --config examples/two_hosts_vxlan.json --controllers 3 --workdir /tmp/b3"),
        description="Start hosts (OVS in namespaces), the underlay, etcd, the "
                    "controller and the agents; health-check each.")
    src = u.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", metavar="FILE",
                     help="intent JSON: its Hosts[] (Name, Intf, VtepIp), else the hosts its "
                          "endpoints name (the intent itself is not loaded: use netdcli)")
    src.add_argument("--hosts", metavar="H1,H2", help="host names, instead of a config")
    u.add_argument("--etcd-port", type=int, help="etcd client port (peer port: +1)")
    u.add_argument("--ofp-port", type=int, help="controller OpenFlow port")
    u.add_argument("--rest-port", type=int, help="controller REST port")
    u.add_argument("--no-controller", action="store_true", help="do not start the controller")
    u.add_argument("--controllers", type=int, default=1, metavar="N",
                   help="start N controllers (default 1); every switch connects to all, and "
                        "they elect one master per switch through etcd")
    u.add_argument("--master-lease-ttl", type=int, default=None, metavar="SEC",
                   help="the controllers' election lease TTL (default: 3 with several "
                        "controllers, the controller's own default with one)")
    u.add_argument("--no-agent", action="store_true", help="do not start the agents")
    u.add_argument("--verbose-controller", action="store_true",
                   help="start the controller with --verbose")
    u.add_argument("--etcd-members", type=int, default=1, metavar="N",
                   help="run etcd as a cluster of N members (default 1); every component is "
                        "given every member's URL")
    u.add_argument("--tls", action="store_true",
                   help="generate a CA and certificates (in WORKDIR/tls) and run etcd, the REST "
                        "API and OpenFlow over TLS only")

    rs = command("restart", "start a recorded process again with its recorded command line", (
        "restart controller", "restart ovs-vswitchd --host host1", "restart etcd2"),
        description="Restart a process of this test bed (stopping it first if it still runs): "
                    "etcd (etcd1..N in a cluster), controller, agent, ovsdb-server, "
                    "ovs-vswitchd, relays.  Returns once it is ready again.")
    rs.add_argument("name", help="process name, as `status` shows it")
    rs.add_argument("--host", help="the host, for per-host processes (agent, OVS daemons)")

    r = command("run", "start a container on a host", (
        "run host1 myContainer1 --wait 20",
        "run host2 pod1-infra --id \"$(openssl rand -hex 32)\""),
        description="Create a network namespace for CONTAINER and register it in HOST's "
                    "runtime registry (name, netns, id); the agent plugs it.")
    r.add_argument("host")
    r.add_argument("container")
    r.add_argument("--id", help="container id stored in the registry (default: a random "
                                "64-hex-digit id, as Docker makes)")
    r.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                   help="wait until the container has an IPv4 address")

    x = command("run-external", "start a physical machine (a plain namespace) on the VLAN "
                "trunk", (
        "run-external phys1 --vlan 100 --ip 10.1.0.100/24",
        "run-external phys2 --vlan 100 --ip 10.1.0.101/24 --gateway 10.1.0.1",
        "run-external router1 --vlan 300 --ip 10.9.0.1/24 --vlan 400 --ip 10.20.0.1/24"),
        description="An ordinary machine (no OVS, no agent): one interface (eth0, eth1, ...) "
                    "per --vlan/--ip pair, each an access port of that VLAN on the trunk the "
                    "hosts' uplinks share.  With more than one pair it forwards IPv4 between "
                    "them (a physical router).  `exec NAME`, `status`, `stop NAME` and `down` "
                    "work on it.")
    x.add_argument("name")
    x.add_argument("--vlan", type=int, action="append", default=[], required=True,
                   metavar="ID", help="VLAN id of the next interface's access port (repeatable)")
    x.add_argument("--ip", action="append", default=[], required=True, metavar="A.B.C.D/N",
                   help="that interface's address (one per --vlan, in the same order)")
    x.add_argument("--gateway", metavar="G", help="default route via G (inside one --ip subnet)")

    stop = command("stop", "stop a container or a physical machine", (
        "stop myContainer1", "stop phys1"),
        description="Deregister CONTAINER (the agent unplugs it) and delete its namespace; or "
                    "remove the physical machine NAME (its access ports and namespace).")
    stop.add_argument("container", metavar="NAME")

    e = command("exec", "run a command in a container, a host or the underlay", (
        "exec myContainer1 -- ping -c3 11.1.0.2",
        "exec host1 -- ovs-ofctl -O OpenFlow13 dump-flows br-int",
        "exec underlay -- ip link"),
        description="Run CMD in the namespace of a container, a physical machine, a host (with "
                    "OVS_RUNDIR set, so ovs-vsctl/ovs-ofctl work) or 'underlay' (OVS_RUNDIR of "
                    "its access switch). The command's exit code is returned.")
    e.add_argument("name")
    e.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ...")

    st = command("status", "hosts, containers, addresses, realized revisions",
                 ("status", "status --json --workdir /tmp/b1"))
    st.add_argument("--json", action="store_true", help="machine-readable output")

    command("down", "stop everything this test bed started and delete its namespaces "
                    "(idempotent)", ("down", "down --workdir /tmp/b1"))
    command("env", "print export lines for the running test bed",
            ('eval "$(python -m topologies env --workdir /tmp/b1)"',))
    return p


def _ports(args: argparse.Namespace, workdir: Path) -> Ports:
    d = default_ports(workdir)
    etcd = args.etcd_port or d.etcd
    if not 1 <= args.etcd_members <= 7:
        raise PlanError("--etcd-members: between 1 and 7")
    members = tuple((free_port(), free_port()) for _ in range(args.etcd_members - 1))
    if not 1 <= args.controllers <= 7:
        raise PlanError("--controllers: between 1 and 7")
    ctls = tuple((free_port(), free_port()) for _ in range(args.controllers - 1))
    return Ports(etcd=etcd, etcd_peer=etcd + 1, ofp=args.ofp_port or d.ofp,
                 rest=args.rest_port or d.rest, etcd_members=members, controllers=ctls)


def _exec_workdir(args: argparse.Namespace) -> None:
    """``exec NAME --workdir DIR -- CMD``: the option between NAME and ``--`` is exec's own."""
    cmd = args.command
    while cmd[:1] and (cmd[0] == "--workdir" or cmd[0].startswith("--workdir=")):
        if cmd[0] == "--workdir":
            if len(cmd) < 2:
                raise SystemExit("error: exec: --workdir needs a directory")
            args.workdir, cmd = cmd[1], cmd[2:]
        else:
            args.workdir, cmd = cmd[0].split("=", 1)[1], cmd[1:]
    args.command = cmd


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.cmd == "exec":
        _exec_workdir(args)
    workdir = Path(args.workdir).resolve()
    if os.geteuid() != 0 and args.cmd in ("up", "run", "run-external", "stop", "exec",
                                              "down", "restart"):
        print("error: the test bed needs root (network namespaces)", file=sys.stderr)
        return 2
    try:
        return _dispatch(args, workdir)
    except (bed.BedError, PlanError, CommandError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _dispatch(args: argparse.Namespace, workdir: Path) -> int:
    if args.cmd == "up":
        hosts = (load_config_hosts(args.config) if args.config else
                 [{"name": n.strip(), "intf": None, "vtep_ip": None}
                  for n in args.hosts.split(",") if n.strip()])
        plan = make_plan(workdir, hosts, _ports(args, workdir), tls=args.tls)
        bed.up(workdir, plan, controller=not args.no_controller, agent=not args.no_agent,
               verbose_controller=args.verbose_controller, say=_say,
               lease_ttl=args.master_lease_ttl)
    elif args.cmd == "down":
        bed.down(workdir, say=_say)
    elif args.cmd == "restart":
        restart.restart(workdir, args.name, args.host, say=_say)
    elif args.cmd == "run":
        containers.run(workdir, args.host, args.container, args.id, args.wait, say=_say)
    elif args.cmd == "run-external":
        externals.run(workdir, args.name, args.vlan, args.ip, args.gateway, say=_say)
    elif args.cmd == "stop":
        if args.container in bed.BedState.load(workdir).externals:
            externals.stop(workdir, args.container, say=_say)
        else:
            containers.stop(workdir, args.container, say=_say)
    elif args.cmd == "exec":
        cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
        containers.exec_in(workdir, args.name, cmd)
    elif args.cmd == "status":
        st = containers.status(workdir)
        print(json.dumps(st, indent=1) if args.json else containers.format_status(st))
    elif args.cmd == "env":
        plan = bed.load_plan(bed.BedState.load(workdir))
        print("\n".join(bed.env_lines(plan)))
    return 0


def _say(msg: str) -> None:
    print(msg, flush=True)
