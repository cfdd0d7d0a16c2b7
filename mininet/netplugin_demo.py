#!/usr/bin/env python3
"""netplugin in Mininet: simulated hosts as Mininet nodes with their own OVS, containers as
Mininet hosts plugged by the agent, then Mininet's CLI (``pingall``, ``c1 ping c2``, ...).

    .venv/bin/python mininet/netplugin_demo.py --config examples/two_hosts_multiple_vxlan_nets.json
    mininet> pingall                  # the containers only: exactly the intent's reachability
    mininet> myContainer1 ping -c1 myContainer3
    .venv/bin/python mininet/netplugin_demo.py --hosts host1,host2 --smoke   # CI smoke test
    .venv/bin/python mininet/netplugin_demo.py --config FILE --cli-script CMDS  # CLI commands

It re-runs itself inside ``unshare --net --pid --fork --mount-proc --mount`` with a private /tmp
and /run/netns: Mininet kills and deletes things by name machine-wide when it cleans up, so it
must never see the real machine.  Everything (etcd, controller, agents, OVS) ends with the sandbox.
``--smoke`` runs without a terminal and exits 0 only if every check passed: the underlay between
the hosts and, when the intent, controller and agent are in the checkout, each container pair
reaching exactly the containers it shares a network with.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SANDBOX_FLAG = "NETPLUGIN_MN_SANDBOX"
WORKDIR = Path("/tmp/np-mn")  # inside the sandbox's private /tmp


def _reexec_in_sandbox(argv: list[str]) -> int:
    """Run this script again in fresh network, pid and mount namespaces."""
    if os.geteuid() != 0:
        print("error: needs root (namespaces)", file=sys.stderr)
        return 2
    probe = subprocess.run([sys.executable, "-c", "import mininet.net"], capture_output=True)
    if probe.returncode != 0:
        print(f"error: {sys.executable} cannot import Mininet: use the project's .venv "
              "(Debian python with system site packages) and `apt-get install mininet`",
              file=sys.stderr)
        return 2
    cmd = ["unshare", "--net", "--pid", "--fork", "--mount-proc", "--mount",
           "--propagation", "private", "--", sys.executable, str(Path(__file__).resolve()),
           *argv]
    return subprocess.run(cmd, env={**os.environ, SANDBOX_FLAG: "1"}).returncode


def _prepare_sandbox() -> None:
    """Private /tmp and /run/netns; a checkout that lives under /tmp stays visible."""
    def mount(*args: str) -> None:
        subprocess.run(["mount", *args], check=True)

    for path in ("/run/netns", "/tmp"):
        Path(path).mkdir(parents=True, exist_ok=True)
    mount("-t", "tmpfs", "tmpfs", "/run/netns")
    keep = ROOT if Path("/tmp") in ROOT.parents else None
    if keep is not None:  # park the checkout, hide /tmp, put the checkout back
        parked = Path("/run/netns/.np-root")
        parked.mkdir()
        mount("--bind", str(keep), str(parked))
    mount("-t", "tmpfs", "tmpfs", "/tmp")
    if keep is not None:
        keep.mkdir(parents=True)
        mount("--bind", str(parked), str(keep))
        subprocess.run(["umount", str(parked)], check=True)
        parked.rmdir()
    subprocess.run(["ip", "link", "set", "lo", "up"], check=True)


EXAMPLES = """examples:
  .venv/bin/python mininet/netplugin_demo.py --config examples/two_hosts_multiple_vxlan_nets.json
  .venv/bin/python mininet/netplugin_demo.py --config examples/two_hosts_vlan.json --smoke
  printf 'pingall\\nmyContainer1 ping -c1 myContainer3\\n' > /root/cmds
  .venv/bin/python mininet/netplugin_demo.py --config examples/two_hosts_multiple_vxlan_nets.json \\
      --cli-script /root/cmds
"""


def _parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netplugin_demo.py", description=__doc__.split("\n\n")[0],
                                epilog=EXAMPLES,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--config", help="intent JSON (hosts, and the intent loaded into etcd)")
    src.add_argument("--hosts", help="host names (underlay only, no intent)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--smoke", action="store_true", help="run the checks and exit (no CLI)")
    mode.add_argument("--cli-script", metavar="FILE",
                      help="run the Mininet CLI commands in FILE (one a line, e.g. pingall) "
                           "instead of the interactive CLI, then exit")
    p.add_argument("--no-controller", action="store_true")
    p.add_argument("--no-agent", action="store_true")
    args = p.parse_args(argv)
    for name in ("config", "cli_script"):
        path = getattr(args, name)
        if path is not None:
            if not Path(path).is_file():
                p.error(f"--{name.replace('_', '-')} {path}: no such file")
            setattr(args, name, str(Path(path).resolve()))
    return args


def _containers(config: dict) -> dict[str, tuple[str, set[str]]]:
    """container -> (host, networks) from a seed config (bound endpoints only)."""
    from topologies.plan import _ci

    out: dict[str, tuple[str, set[str]]] = {}
    for tenant in _ci(config, "Tenants") or []:
        for net in _ci(tenant, "Networks") or []:
            for ep in _ci(net, "Endpoints") or []:
                name, host = _ci(ep, "AttachUUID") or _ci(ep, "Container"), _ci(ep, "Host")
                if name and host:
                    out.setdefault(name, (host, set()))[1].add(
                        f"{_ci(tenant, 'Name')}/{_ci(net, 'Name')}")
    return out


def _endpoint_count(config: dict, container: str) -> int:
    """How many endpoints (so IPv4 addresses) the agent gives ``container``."""
    from topologies.plan import _ci

    return sum(1 for t in _ci(config, "Tenants") or [] for n in _ci(t, "Networks") or []
               for e in _ci(n, "Endpoints") or []
               if (_ci(e, "AttachUUID") or _ci(e, "Container")) == container and _ci(e, "Host"))


def _load_intent(config: dict, etcd_url: str) -> str | None:
    """Load the intent with the project's own code; None if that code is not there yet."""
    try:
        from allocator.write import apply_config
        from intent.loader import load_config
        from intent.store_etcd import EtcdStore
    except ImportError as exc:
        return f"intent loader not available ({exc})"
    store = EtcdStore(etcd_url)
    try:
        apply_config(store, load_config(config), mode="desired")
    finally:
        store.close()
    return None


def main(argv: list[str]) -> int:  # noqa: C901 - a linear script
    args = _parse(argv)
    if os.environ.get(SANDBOX_FLAG) != "1":
        return _reexec_in_sandbox([*argv])
    # read the files now: the sandbox gets a private /tmp where they may live
    config = json.loads(Path(args.config).read_text()) if args.config else {}
    script = Path(args.cli_script).read_text() if args.cli_script else None
    _prepare_sandbox()
    sys.path.insert(0, str(ROOT))
    from mininet.cli import CLI
    from mininet.log import setLogLevel
    from mininet.net import Mininet
    from np_nodes import Container, DemoNet, OVSHost, UnderlayBridge, name_netns

    from intent import keys
    from topologies import bed, ovs
    from topologies.etcd import Etcd
    from topologies.plan import Ports, hosts_from_config, make_plan
    from topologies.state import BedState

    setLogLevel("warning" if args.smoke else "info")
    Mininet.init = classmethod(lambda cls: None)  # no machine-wide sysctl/rlimit changes
    hosts = (hosts_from_config(config) if args.config else
             [{"name": h, "intf": None, "vtep_ip": None} for h in args.hosts.split(",")])
    plan = make_plan(WORKDIR, hosts, Ports(etcd=2379, etcd_peer=2380, ofp=6653, rest=9999))
    plan = dataclasses.replace(plan, hosts=tuple(dataclasses.replace(h, netns=h.name)
                                                 for h in plan.hosts))
    controller = not args.no_controller and (ROOT / "ryu_apps" / "__main__.py").exists()
    agent = not args.no_agent and (ROOT / "agent" / "__main__.py").exists()
    (WORKDIR / "run").mkdir(parents=True)
    state = BedState(path=WORKDIR / "bed.json")
    say = print if not args.smoke else (lambda m: print(m, flush=True))

    net = DemoNet(controller=None, build=False, autoSetMacs=False, waitConnected=False)
    vx = net.addSwitch("vx", cls=UnderlayBridge, dpid="1")
    vl = net.addSwitch("vl", cls=UnderlayBridge, dpid="2")
    nodes = {}
    for h in plan.hosts:
        nodes[h.name] = net.addHost(h.name, cls=OVSHost, ip=None, workdir=str(WORKDIR))
        net.addLink(nodes[h.name], vx, intfName1="ul0")
        net.addLink(nodes[h.name], vl, intfName1=h.uplink)
    failures: list[str] = []
    try:
        net.start()
        for h in plan.hosts:
            name_netns(nodes[h.name])
            nodes[h.name].start_ovs(h)
        for h in plan.hosts:
            ovs.seed_neighbours(nodes[h.name].paths, [p for p in plan.hosts if p is not h])
        bed.check_underlay(plan)
        say(f"underlay up: {', '.join(f'{h.name} {h.vtep_ip}' for h in plan.hosts)}")
        bed.start_etcd(WORKDIR, plan, state, say)
        for h in plan.hosts:
            bed.start_etcd_relay(WORKDIR, plan, h, state)
        if controller:
            bed.start_controller(WORKDIR, plan, state, False, say)
        if agent:
            bed.start_agents(WORKDIR, plan, state, controller, say)
        problem = "no config" if not args.config else (
            "controller or agent not in this checkout" if not (controller and agent)
            else _load_intent(config, bed.etcd_url(plan)))
        wanted = _containers(config) if problem is None else {}
        if problem:
            say(f"containers skipped: {problem}")
        etcd = Etcd(bed.etcd_url(plan))
        for cname, (host, _nets) in sorted(wanted.items()):
            c = net.addHost(cname, cls=Container, ip=None)
            etcd.put(keys.runtime_container(host, cname),
                     json.dumps({"netns": f"/run/netns/{name_netns(c)}", "id": cname}))
        for cname in wanted:
            c = net.get(cname)
            deadline = time.monotonic() + 30
            while c.cmd("ip -4 -o addr show scope global").count(" inet ") < \
                    _endpoint_count(config, cname) and time.monotonic() < deadline:
                time.sleep(0.3)
            say(f"{cname} plugged: {', '.join(c.learn_interfaces()) or 'no address'}")
        failures += _checks(net, plan, nodes, wanted, bed.etcd_url(plan))
        if args.smoke:
            say("smoke: " + ("PASS" if not failures else "FAIL\n  " + "\n  ".join(failures)))
        elif script is not None:
            path = WORKDIR / "cli-script"
            path.write_text(script)
            quiet, _keep_open = os.pipe()  # stdin that never has input: the script is the input
            CLI(net, stdin=os.fdopen(quiet), script=str(path))
        else:
            CLI(net)
    except Exception as exc:  # noqa: BLE001 - report, then let the sandbox tear down
        failures.append(f"{type(exc).__name__}: {exc}")
        print(f"error: {exc}", file=sys.stderr)
    finally:
        net.stop()
    return 1 if failures else 0


def _checks(net, plan, nodes, wanted, etcd_url: str) -> list[str]:  # noqa: ANN001
    """Underlay and OVS per host; the containers' isolation matrix (the tour's: between
    networks each side knows the other's real MAC, so only isolation can stop a frame)."""
    from intent.resolved import read_resolved
    from intent.store_etcd import EtcdStore
    from topologies.tour import isolation_matrix

    failures = []
    for h in plan.hosts:
        if "br-phy" not in nodes[h.name].vsctl("list-br"):
            failures.append(f"{h.name}: br-phy missing")
        for peer in plan.hosts:
            if peer is not h and " 0% packet loss" not in nodes[h.name].cmd(
                    f"ping -c1 -W2 {peer.vtep_ip}"):
                failures.append(f"underlay: {h.name} cannot reach {peer.name}")
    if not wanted:
        return failures
    store = EtcdStore(etcd_url)
    try:
        intent = read_resolved(store)
    finally:
        store.close()
    lines, good = isolation_matrix(intent, {c: c for c in wanted})  # netns named after nodes
    print("reachability (row pings column):")
    for line in lines:
        print("  " + line, flush=True)
    if not good:
        failures.append("the reachability matrix does not match the intent (marked !)")
    return failures


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
