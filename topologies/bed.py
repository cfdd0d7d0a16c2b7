"""``up`` and ``down``: bring the whole test bed up in order, and take exactly it down again.

Layout (all names carry the work dir's prefix ``P``)::

    root netns   etcd 127.0.0.1:<etcd> (or N members: ``--etcd-members N``)
                 controller :<ofp> :<rest>
                 socat <wd>/run/etcd.sock -> etcd (one per member: etcd2.sock, …)
                 socat <host run>/controller.sock -> :<ofp>     (plain OpenFlow)
                 socat <wd>/run/ofp.sock -> :<ofp>                (TLS: ssl: targets are TCP)
    P-ul         Linux bridges "vx" (VXLAN underlay IP) and "vl" (VLAN trunk, a hub); with
                 physical machines, an OVS "access" switch on "vl" (:mod:`topologies.externals`)
    P-<host>     ovsdb-server + ovs-vswitchd (netdev), br-phy[ul0] with the VTEP IP,
                 uplink NIC (config's Intf, default eth2), socat 127.0.0.1:<etcd> -> etcd.sock
                 (per member), TLS: socat 127.0.0.1:<ofp> -> ofp.sock; the agent (creates br-int)
    P-c-<name>   one per container (``run``)
    P-x-<name>   one per physical machine (``run-external``): access ports of VLANs on "vl"

``--tls`` (:mod:`topologies.certs`): etcd (client and peer, client certificates required), the
REST API (HTTPS) and OpenFlow (``ssl:`` targets, OVS's SSL table) all use the bed's own CA.
Every process is recorded with its command line, so ``restart NAME`` can start it again
(:mod:`topologies.restart`).
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from intent import keys
from topologies import certs, ovs, proc
from topologies import etcd as etcdmod
from topologies.plan import (
    UNDERLAY_IF,
    UNDERLAY_MTU,
    BedPlan,
    HostPlan,
    plan_from_dict,
    plan_to_dict,
)
from topologies.state import BedState, locked

PROJECT_ROOT = Path(__file__).resolve().parent.parent
Say = Callable[[str], None]


class BedError(RuntimeError):
    """A test bed command cannot proceed; the message says why and what to do."""


def etcd_urls(plan: BedPlan) -> list[str]:
    """Client URLs of every etcd member."""
    return [f"{plan.scheme}://127.0.0.1:{p}" for p in plan.ports.etcd_clients]


def etcd_url(plan: BedPlan) -> str:
    """What ``--etcd`` / ``-etcd`` take: every member's URL, comma-separated."""
    return ",".join(etcd_urls(plan))


def rest_url(plan: BedPlan, index: int = 0) -> str:
    """The REST API of controller number ``index`` (from 0)."""
    return f"{plan.scheme}://127.0.0.1:{plan.ports.controller_ports[index][1]}"


def tls_files(plan: BedPlan) -> dict[str, certs.CertFiles]:
    """The TLS bed's certificates by party (empty for a plain bed)."""
    if not plan.tls:
        return {}
    return certs.bed_certificates(Path(plan.workdir), [h.name for h in plan.hosts])


def etcd_client(plan: BedPlan, timeout: float = 5.0) -> etcdmod.Etcd:
    """The test bed's own etcd client (every member; the client certificate on a TLS bed)."""
    return etcdmod.Etcd(etcd_url(plan), timeout=timeout, tls=tls_files(plan).get("client"))


def etcd_tls_flags(plan: BedPlan, party: str = "client") -> list[str]:
    """``--etcd-ca/--etcd-cert/--etcd-key`` for a netplugin process on a TLS bed."""
    f = tls_files(plan).get(party)
    if f is None:
        return []
    return ["--etcd-ca", str(f.ca), "--etcd-cert", str(f.cert), "--etcd-key", str(f.key)]


def env_lines(plan: BedPlan) -> list[str]:
    """``export`` lines that point netdcli (and REST clients) at this bed."""
    lines = [f"export NETPLUGIN_ETCD={etcd_url(plan)}", f"export NETPLUGIN_REST={rest_url(plan)}"]
    client = tls_files(plan).get("client")
    if client is not None:
        lines += [f"export NETPLUGIN_ETCD_CA={client.ca}",
                  f"export NETPLUGIN_ETCD_CERT={client.cert}",
                  f"export NETPLUGIN_ETCD_KEY={client.key}",
                  f"export NETPLUGIN_REST_CA={client.ca}"]
    return lines + [f"export NETPLUGIN_BED={plan.workdir}"]


def record(state: BedState, name: str, cmd: list[str], log: Path, host: str | None = None,
           env: dict[str, str] | None = None, cwd: str | None = None) -> int:
    """Start a long-running process and record it with its command line (``restart``)."""
    pid = proc.spawn(cmd, log, env=env, cwd=cwd)
    state.add_pid(name, pid, host, launch={"cmd": cmd, "log": str(log), "env": env or {},
                                           "cwd": cwd})
    return pid


def load_plan(state: BedState) -> BedPlan:
    if not state.plan:
        raise BedError(f"no test bed in {state.path.parent} (run `python -m topologies up` "
                       "first)")
    return plan_from_dict(state.plan)


def _module_available(name: str) -> bool:
    return (PROJECT_ROOT / name / "__main__.py").exists()


def _python_env() -> dict[str, str]:
    pp = os.environ.get("PYTHONPATH")
    return {"PYTHONPATH": f"{PROJECT_ROOT}{os.pathsep}{pp}" if pp else str(PROJECT_ROOT)}


# ----------------------------------------------------------------------------------- up


def up(workdir: Path, plan: BedPlan, *, controller: bool = True, agent: bool = True,
       verbose_controller: bool = False, say: Say = print,
       lease_ttl: int | None = None) -> BedState:
    """Bring the test bed up; on any failure tear down what was made and raise ``BedError``."""
    with locked(workdir):
        state = BedState.load(workdir)
        if state.exists:
            if any(proc.alive(p["pid"], p["start"]) for p in state.pids):
                raise BedError(f"a test bed is already up in {workdir} (prefix "
                               f"{state.plan and state.plan['prefix']}): run `python -m "
                               f"topologies down --workdir {workdir}` first")
            say("cleaning up the remains of an earlier test bed")
            _teardown(workdir, state, say=lambda _m: None)
            state = BedState.load(workdir)
        if controller and not _module_available("ryu_apps"):
            raise BedError("the controller (ryu_apps) is not in this checkout: "
                           "pass --no-controller")
        if agent and not _module_available("agent"):
            raise BedError("the agent (python -m agent) is not in this checkout: pass --no-agent")
        etcd_ports = [plan.ports.etcd, plan.ports.etcd_peer,
                      *(p for pair in plan.ports.etcd_members for p in pair)]
        busy = [p for p in etcd_ports if not proc.port_free(p)]
        if controller:
            busy += [p for pair in plan.ports.controller_ports for p in pair
                     if not proc.port_free(p)]
        if busy:
            raise BedError(f"port(s) {', '.join(map(str, busy))} on 127.0.0.1 are in use: "
                           "choose others with --etcd-port/--ofp-port/--rest-port")
        state.plan = plan_to_dict(plan)
        state.options = {"controller": controller, "agent": agent, "lease_ttl": lease_ttl}
        state.save()
        try:
            _bring_up(workdir, plan, state, controller, agent, verbose_controller, say)
        except (proc.CommandError, TimeoutError, BedError, OSError) as exc:
            say(f"!! up failed: {exc}")
            say("!! tearing down what was started (logs stay in "
                f"{workdir / 'logs'} and {workdir / 'hosts'})")
            _teardown(workdir, state, say=lambda _m: None)
            raise BedError(str(exc)) from None
        return state


def _bring_up(workdir: Path, plan: BedPlan, state: BedState, controller: bool, agent: bool,
              verbose_controller: bool, say: Say) -> None:
    (workdir / "run").mkdir(parents=True, exist_ok=True)
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    names = ", ".join(h.name for h in plan.hosts)
    say(f">> test bed {plan.prefix} in {workdir}: hosts {names}")
    if plan.tls:
        say(f">> TLS: certificates of the bed's own CA in {workdir / 'tls'}")
        tls_files(plan)

    say(f">> underlay namespace {plan.underlay_ns} (bridges vx: VXLAN, vl: VLAN trunk)")
    _make_underlay(plan, state)
    for host in plan.hosts:
        say(f">> host {host.name}: namespace {host.netns}, VTEP {host.vtep_ip}/"
            f"{host.vtep_prefixlen}, uplink {host.uplink}")
        _make_host_links(plan, host, state)

    start_etcd(workdir, plan, state, say)
    for host in plan.hosts:
        paths = ovs.host_paths(workdir, host.name)
        say(f">> host {host.name}: ovsdb-server + ovs-vswitchd (netdev), br-phy")
        for name, pid in ovs.start_daemons(paths, host.netns).items():
            state.add_pid(f"{name}:{host.name}", pid, host.name,
                          launch=ovs.daemon_launch(paths, host.netns, name))
        ovs.setup_underlay(paths, host)
        switch = tls_files(plan).get(f"switch-{host.name}")
        if switch is not None:
            ovs.vsctl(paths, "set-ssl", str(switch.key), str(switch.cert), str(switch.ca))
        start_etcd_relay(workdir, plan, host, state)
    for host in plan.hosts:
        ovs.seed_neighbours(ovs.host_paths(workdir, host.name),
                            [p for p in plan.hosts if p is not host])
    check_underlay(plan)

    if controller:
        for index in range(len(plan.controllers)):
            start_controller(workdir, plan, state, verbose_controller, say, index)
    if agent:
        start_agents(workdir, plan, state, controller, say)
    _summary(plan, controller, say)


def _members(plan: BedPlan) -> list[tuple[int, int]]:
    return [(plan.ports.etcd, plan.ports.etcd_peer), *plan.ports.etcd_members]


def _etcd_sock(workdir: Path, index: int) -> Path:
    return workdir / "run" / ("etcd.sock" if index == 0 else f"etcd{index + 1}.sock")


def start_etcd(workdir: Path, plan: BedPlan, state: BedState, say: Say) -> None:
    """etcd on loopback (one member or a cluster), and a unix-socket relay to each member that
    host namespaces connect through."""
    members = _members(plan)
    say(f">> etcd on {', '.join(etcd_urls(plan))}" +
        (f" ({len(members)}-member cluster)" if len(members) > 1 else ""))
    if (workdir / "etcd").exists():
        proc.run(["rm", "-rf", str(workdir / "etcd")])
    server = tls_files(plan).get("etcd")
    names = [etcdmod.member_name(i, len(members)) for i in range(len(members))]
    for i, name in enumerate(names):
        record(state, name, etcdmod.server_command(workdir, i, members, server),
               workdir / "logs" / f"{name}.log")
    client = etcd_client(plan, timeout=2)
    for i, name in enumerate(names):
        url = etcd_urls(plan)[i]
        _wait_alive(state, name, lambda u=url: client.member_healthy(u), 30,
                    workdir / "logs" / f"{name}.log")
    for i, (port, _peer) in enumerate(members):
        sock = _etcd_sock(workdir, i)
        record(state, "etcd-relay" if i == 0 else f"etcd-relay{i + 1}",
               ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early",
                f"TCP:127.0.0.1:{port},nodelay"],
               workdir / "logs" / f"etcd-relay{'' if i == 0 else i + 1}.log")
        proc.wait_for(sock.exists, 5, "the etcd relay socket")


def start_etcd_relay(workdir: Path, plan: BedPlan, host: HostPlan, state: BedState) -> None:
    """127.0.0.1:<member's port> inside the host's namespace for every etcd member, relayed to
    the root namespace's etcd."""
    for i, (port, _peer) in enumerate(_members(plan)):
        suffix = "" if i == 0 else str(i + 1)
        record(state, f"etcd-relay{suffix}:{host.name}", proc.ns_cmd(host.netns, [
            # nodelay: without it Nagle holds a request's body for the peer's delayed ACK (40 ms)
            "socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr,nodelay",
            f"UNIX-CONNECT:{_etcd_sock(workdir, i)}"]),
            workdir / "logs" / f"etcd-relay{suffix}-{host.name}.log", host.name)


def _make_underlay(plan: BedPlan, state: BedState) -> None:
    ns = plan.underlay_ns
    proc.netns_add(ns)
    state.add_netns(ns)
    for br in ("vx", "vl"):
        # the VLAN trunk does not learn (ageing 0: it floods like a hub): test beds reuse MACs
        # (they follow the address) on other hosts, and a learnt entry left by an earlier test
        # would send a frame to the wrong host until it aged out (300 s)
        ageing = ["ageing_time", "0"] if br == "vl" else []
        proc.run(["ip", "-n", ns, "link", "add", "name", br, "mtu", str(UNDERLAY_MTU),
                  "type", "bridge", "stp_state", "0", "forward_delay", "0", *ageing])
        proc.run(["ip", "-n", ns, "link", "set", br, "up"])


def _make_host_links(plan: BedPlan, host: HostPlan, state: BedState) -> None:
    proc.netns_add(host.netns)
    state.add_netns(host.netns)
    for inner, outer, br in ((UNDERLAY_IF, host.ul_vx, "vx"), (host.uplink, host.ul_vl, "vl")):
        proc.run(["ip", "link", "add", "name", inner, "netns", host.netns,
                  "mtu", str(UNDERLAY_MTU), "type", "veth", "peer", "name", outer,
                  "netns", plan.underlay_ns, "mtu", str(UNDERLAY_MTU)])
        proc.run(["ip", "-n", plan.underlay_ns, "link", "set", outer, "master", br, "up"])
        proc.run(["ip", "-n", host.netns, "link", "set", inner, "up"])


def check_underlay(plan: BedPlan) -> None:
    """Every host reaches the first host's VTEP (and so ARP/tnl neighbours are warm)."""
    first = plan.hosts[0]
    for host in plan.hosts[1:]:
        res = proc.run(proc.ns_cmd(host.netns, ["ping", "-c1", "-W2", "-q", first.vtep_ip]),
                       check=False)
        if res.returncode != 0:
            raise BedError(f"underlay check: {host.name} cannot ping {first.name}'s VTEP "
                           f"{first.vtep_ip}")


def _wait_alive(state: BedState, name: str, pred: Callable[[], bool], timeout: float,
                log: Path) -> None:
    """Poll ``pred`` until true; fail early, with the log's tail, if the process died."""
    rec = state.pid_of(name)
    deadline = time.monotonic() + timeout
    while True:
        if rec and not proc.alive(rec["pid"], rec["start"]):
            raise BedError(f"{name} exited during start-up; last log lines ({log}):\n"
                           f"{proc.tail(log)}")
        try:
            if pred():
                return
        except Exception:  # noqa: BLE001 - a failing probe means "not ready yet"
            pass
        if time.monotonic() > deadline:
            raise BedError(f"{name} not ready after {timeout:.0f}s; last log lines ({log}):\n"
                           f"{proc.tail(log)}")
        time.sleep(0.2)


def controller_command(plan: BedPlan, verbose: bool = False, index: int = 0,
                       lease_ttl: int | None = None) -> list[str]:
    """Controller number ``index``'s command line: loopback only (host namespaces reach
    OpenFlow through relays); on a TLS bed OpenFlow, REST and its etcd client use the bed's
    certificates.  With several controllers, each has its own name and ports."""
    script = Path(sys.executable).with_name("ryu-manager")  # the project's console script
    manager = [str(script)] if script.exists() else [sys.executable, "-m", "ryu_apps.manager"]
    ofp, rest = plan.ports.controller_ports[index]
    cmd = [*manager, "ryu_apps.netplugin", "--ofp-listen-host", "127.0.0.1",
           "--etcd", etcd_url(plan), "--rest-host", "127.0.0.1",
           "--rest-port", str(rest), "--controller-name", plan.controllers[index]]
    if lease_ttl is None and len(plan.controllers) > 1:
        lease_ttl = 3
    if lease_ttl is not None:
        cmd += ["--master-lease-ttl", str(lease_ttl)]
    ctl = tls_files(plan).get("controller")
    if ctl is None:
        cmd += ["--ofp-tcp-listen-port", str(ofp)]
    else:
        cmd += ["--ofp-ssl-listen-port", str(ofp), "--ctl-privkey", str(ctl.key),
                "--ctl-cert", str(ctl.cert), "--ca-certs", str(ctl.ca),
                "--rest-cert", str(ctl.cert), "--rest-key", str(ctl.key),
                *etcd_tls_flags(plan, "controller")]
    return cmd + (["--verbose"] if verbose else [])


def start_controller(workdir: Path, plan: BedPlan, state: BedState, verbose: bool,
                     say: Say, index: int = 0) -> None:
    """Controller number ``index`` and its relays (one per host)."""
    name = plan.controllers[index]
    ofp, _rest = plan.ports.controller_ports[index]
    suffix = name[len("controller"):]  # "" for the first, "2", "3" … for the others
    say(f">> {name}: ryu-manager ryu_apps.netplugin, OpenFlow 127.0.0.1:{ofp}"
        f"{' (TLS)' if plan.tls else ''}, REST {rest_url(plan, index)}")
    log = workdir / "logs" / f"{name}.log"
    record(state, name, controller_command(plan, verbose, index,
                                           (state.options or {}).get("lease_ttl")),
           log, env=_python_env(), cwd=str(PROJECT_ROOT))
    wait_controller(state, plan, log, index)
    if plan.tls:  # ssl: targets are TCP: a TCP port in each host namespace, relayed
        sock = workdir / "run" / f"ofp{suffix}.sock"
        record(state, f"ofp-relay{suffix}", ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early",
                                             f"TCP:127.0.0.1:{ofp},nodelay"],
               workdir / "logs" / f"ofp-relay{suffix}.log")
        proc.wait_for(sock.exists, 5, "the OpenFlow relay socket")
    for host in plan.hosts:
        paths = ovs.host_paths(workdir, host.name)
        if plan.tls:
            record(state, f"ofp-relay{suffix}:{host.name}", proc.ns_cmd(host.netns, [
                "socat", f"TCP-LISTEN:{ofp},bind=127.0.0.1,fork,reuseaddr,nodelay",
                f"UNIX-CONNECT:{workdir / 'run' / f'ofp{suffix}.sock'}"]),
                workdir / "logs" / f"ofp-relay{suffix}-{host.name}.log", host.name)
            continue
        sock = paths.controller_sock_of(index)
        record(state, f"ofp-relay{suffix}:{host.name}",
               ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early",
                f"TCP:127.0.0.1:{ofp},nodelay"],
               workdir / "logs" / f"ofp-relay{suffix}-{host.name}.log", host.name)
        proc.wait_for(sock.exists, 5, f"{host.name}'s relay to {name}")


def wait_controller(state: BedState, plan: BedPlan, log: Path, index: int = 0) -> None:
    """Until controller number ``index`` listens for OpenFlow and REST."""
    ofp, rest = plan.ports.controller_ports[index]
    _wait_alive(state, plan.controllers[index], lambda: proc.port_open(ofp)
                and proc.port_open(rest), 60, log)


def agent_command(workdir: Path, plan: BedPlan, host: HostPlan, controller: bool) -> list[str]:
    """The agent's command line for ``host`` (run inside the host's namespace)."""
    paths = ovs.host_paths(workdir, host.name)
    cmd = [sys.executable, "-m", "agent", "--host", host.name, "--etcd", etcd_url(plan),
           "--ovsdb", f"unix:{paths.db_sock}", "--datapath-type", "netdev",
           "--vtep-ip", host.vtep_ip, "--underlay-if", UNDERLAY_IF, "--uplink", host.uplink,
           *etcd_tls_flags(plan)]
    if controller:
        targets = [f"ssl:127.0.0.1:{ofp}" if plan.tls else f"unix:{paths.controller_sock_of(i)}"
                   for i, (ofp, _rest) in enumerate(plan.ports.controller_ports)]
        cmd += ["--controller", ",".join(targets)]
    return cmd


def start_agents(workdir: Path, plan: BedPlan, state: BedState, controller: bool,
                 say: Say) -> None:
    client = etcd_client(plan, timeout=2)
    for host in plan.hosts:
        say(f">> agent on {host.name}")
        paths = ovs.host_paths(workdir, host.name)
        log = workdir / "logs" / f"agent-{host.name}.log"
        record(state, f"agent:{host.name}",
               proc.ns_cmd(host.netns, agent_command(workdir, plan, host, controller)), log,
               host.name, env={**_python_env(), **paths.env()}, cwd=str(PROJECT_ROOT))
    for host in plan.hosts:
        _wait_alive(state, f"agent:{host.name}",
                    lambda h=host: client.get(keys.oper_host(h.name)) is not None, 60,
                    workdir / "logs" / f"agent-{host.name}.log")
        say(f"   {host.name} registered")


def _summary(plan: BedPlan, controller: bool, say: Say) -> None:
    say(f">> up. etcd: {etcd_url(plan)}" + (f"  REST: {rest_url(plan)}" if controller else ""))
    if controller and len(plan.controllers) > 1:
        say("   controllers: " + "  ".join(f"{n} REST {rest_url(plan, i)}"
                                           for i, n in enumerate(plan.controllers)))
    for line in env_lines(plan):
        if controller or "NETPLUGIN_REST" not in line:
            say(line)


# --------------------------------------------------------------------------------- down


def down(workdir: Path, say: Say = print) -> bool:
    """Stop every recorded process, delete every namespace of this bed. False if nothing was up."""
    with locked(workdir):
        state = BedState.load(workdir)
        return _teardown(workdir, state, say)


def _teardown(workdir: Path, state: BedState, say: Say) -> bool:
    from topologies.plan import prefix_for

    prefix = state.plan["prefix"] if state.plan else prefix_for(workdir)
    did = False
    for rec in reversed(state.pids):
        if proc.stop(rec["pid"], rec.get("start")):
            say(f"stopped {rec['name']} (pid {rec['pid']})")
            did = True
    did |= _stop_strays(workdir, say)
    mine = [n for n in proc.netns_list() if n.startswith(prefix + "-")]
    order = sorted(set(state.netns) | set(mine),
                   key=lambda n: (not n.startswith(f"{prefix}-c-"), n == f"{prefix}-ul"))
    for name in order:
        if name in proc.netns_list():
            proc.netns_delete(name)
            say(f"deleted namespace {name}")
            did = True
    for sock in [*(workdir / "run").glob("*.sock"), *workdir.glob("hosts/*/run/*"),
                 *workdir.glob("underlay/run/*")]:
        sock.unlink(missing_ok=True)
    for made in ("etcd", "tls"):
        if (workdir / made).exists():
            proc.run(["rm", "-rf", str(workdir / made)], check=False)
    state.remove()
    if not did:
        say(f"nothing to do: no test bed up in {workdir}")
    return did


def _stop_strays(workdir: Path, say: Say) -> bool:
    """OVS daemons found through pidfiles (state file lost): stop them if they are ours."""
    did = False
    for pidfile in [*workdir.glob("hosts/*/run/*.pid"), *workdir.glob("underlay/run/*.pid")]:
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except (OSError, ValueError):
            continue
        if str(workdir) in cmdline and proc.stop(pid, None):
            say(f"stopped stray {pidfile.stem} (pid {pid})")
            did = True
    return did


def read_json(text: str | None) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return text
