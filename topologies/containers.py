"""Containers of the test bed (``run``/``stop``/``exec``) and ``status``.

A container is a network namespace registered in its host's runtime registry
(``/netplugin/runtime/<host>/<container>`` = ``{"netns": path, "id": id}``): the agent sees the
key and plugs the container's endpoints into it, as it would for ``docker run``.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from pathlib import Path
from typing import Any

from intent import keys
from intent.realized import realized_hosts
from topologies import ovs, proc
from topologies.bed import BedError, Say, etcd_client, etcd_url, load_plan, read_json, rest_url
from topologies.plan import check_name, container_netns
from topologies.state import BedState, locked


def run(workdir: Path, host: str, container: str, cid: str | None = None,
        wait: float = 0.0, say: Say = print) -> dict[str, Any]:
    """Create the container's namespace and register it with ``host``'s runtime registry.

    ``cid`` is the container id recorded there (default: a new random one, like Docker's): an
    endpoint's ``AttachUUID`` may name the container by it (full, or its first 12 digits or more).
    """
    check_name("container", container)
    with locked(workdir):
        state = BedState.load(workdir)
        plan = load_plan(state)
        plan.host(host)
        if container in state.containers:
            other = state.containers[container]["host"]
            raise BedError(f"container {container} already runs on {other}")
        if any(h.name == container for h in plan.hosts):
            raise BedError(f"{container!r} is a host name: pick another container name")
        if container in state.externals:
            raise BedError(f"{container!r} is a physical machine (run-external): pick another "
                           "container name")
        ns = container_netns(plan.prefix, container)
        rec = {"host": host, "netns": ns, "id": cid or new_container_id()}
        proc.netns_add(ns)
        state.add_netns(ns)
        state.containers[container] = rec
        state.save()
        value = json.dumps({"netns": f"/run/netns/{ns}", "id": rec["id"]}, sort_keys=True)
        try:
            etcd_client(plan).put(keys.runtime_container(host, container), value)
        except OSError as exc:
            proc.netns_delete(ns)
            del state.containers[container]
            state.netns.remove(ns)
            state.save()
            raise BedError(f"cannot register {container} in etcd ({etcd_url(plan)}): {exc}") \
                from None
    say(f"{container} running on {host} (netns {ns}, id {rec['id']})")
    if wait > 0:
        if not wait_plugged(ns, wait):
            raise BedError(f"{container}: no IPv4 address after {wait:.0f}s (is the agent "
                           "running, and does the intent have an endpoint for it?)")
        say(f"{container} plugged: {', '.join(_addresses(ns))}")
    return rec


def new_container_id() -> str:
    """A random 64-hex-digit id, as Docker and podman give their containers."""
    return secrets.token_hex(32)


def stop(workdir: Path, container: str, say: Say = print) -> None:
    """Deregister the container (the agent unplugs it) and delete its namespace."""
    with locked(workdir):
        state = BedState.load(workdir)
        plan = load_plan(state)
        rec = state.containers.get(container)
        if rec is None:
            raise BedError(f"no container {container} (running: "
                           f"{', '.join(sorted(state.containers)) or 'none'})")
        try:
            etcd_client(plan).delete(keys.runtime_container(rec["host"], container))
        except OSError as exc:
            say(f"warning: cannot deregister {container} from etcd: {exc}")
        proc.netns_delete(rec["netns"])
        del state.containers[container]
        if rec["netns"] in state.netns:
            state.netns.remove(rec["netns"])
        state.save()
    say(f"{container} stopped")


def exec_target(workdir: Path, name: str) -> tuple[str, dict[str, str]]:
    """The namespace (and environment) of a container, a physical machine, a host or
    ``underlay`` (with the access switch's OVS environment)."""
    state = BedState.load(workdir)
    plan = load_plan(state)
    if name in state.containers:
        return state.containers[name]["netns"], {}
    if name in state.externals:
        return state.externals[name]["netns"], {}
    if name == "underlay":
        return plan.underlay_ns, ovs.OvsPaths(workdir / "underlay").env()
    host = plan.host(name) if any(h.name == name for h in plan.hosts) else None
    if host is None:
        raise BedError(f"no container, machine or host {name!r} (containers: "
                       f"{', '.join(sorted(state.containers)) or 'none'}; machines: "
                       f"{', '.join(sorted(state.externals)) or 'none'}; hosts: "
                       f"{', '.join(h.name for h in plan.hosts)})")
    return host.netns, ovs.host_paths(workdir, host.name).env()


def exec_in(workdir: Path, name: str, cmd: list[str]) -> None:
    """Replace this process with ``cmd`` inside ``name``'s namespace (exit code passes through)."""
    if not cmd:
        raise BedError("exec: no command given (usage: exec NAME -- CMD ...)")
    ns, env = exec_target(workdir, name)
    os.execvpe("ip", ["ip", "netns", "exec", ns, *cmd], {**os.environ, **env})


def _addresses(ns: str) -> list[str]:
    res = proc.run(["ip", "-n", ns, "-j", "addr", "show"], check=False)
    out = []
    for link in json.loads(res.stdout or "[]"):
        if link.get("ifname") == "lo":
            continue
        for addr in link.get("addr_info", []):
            if addr.get("family") == "inet":
                out.append(f"{link['ifname']} {addr['local']}/{addr['prefixlen']}")
    return out


def wait_plugged(ns: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _addresses(ns):
            return True
        time.sleep(0.2)
    return False


def status(workdir: Path) -> dict[str, Any]:
    """What runs: hosts (daemons, bridges, registration, realized revision) and containers."""
    state = BedState.load(workdir)
    plan = load_plan(state)
    client = etcd_client(plan, timeout=2)
    try:
        revision: int | None = client.revision()
        oper = client.list(keys.OPER)
    except OSError:
        revision, oper = None, {}
    realized = realized_hosts(oper)  # effective revisions (intent.realized)
    hosts = []
    for h in plan.hosts:
        procs = {p["name"].split(":")[0]: proc.alive(p["pid"], p["start"])
                 for p in state.pids if p.get("host") == h.name}
        hosts.append({
            "name": h.name, "netns": h.netns, "vtep_ip": h.vtep_ip, "uplink": h.uplink,
            "processes": procs,
            "bridges": ovs.bridges(ovs.host_paths(workdir, h.name)) if procs.get(
                "ovs-vswitchd") else [],
            "registered": read_json(oper.get(keys.oper_host(h.name))),
            "realized": ({"revision": realized[h.name]} if h.name in realized else None),
            "master": (read_json(oper.get(keys.master(h.name))) or {}).get("controller"),
        })
    containers = []
    for name, rec in sorted(state.containers.items()):
        containers.append({"name": name, "host": rec["host"], "netns": rec["netns"],
                           "id": rec["id"], "interfaces": _addresses(rec["netns"])})
    externals = []
    for name, rec in sorted(state.externals.items()):
        have = _by_ifname(rec["netns"])
        legs = [{**leg, "up": have.get(leg["ifname"]) == leg["cidr"]} for leg in rec["legs"]]
        externals.append({"name": name, "netns": rec["netns"], "gateway": rec["gateway"],
                          "forwarding": rec["forwarding"], "legs": legs})
    others = {p["name"]: proc.alive(p["pid"], p["start"]) for p in state.pids
              if not p.get("host")}
    controllers = [{"name": name, "rest": rest_url(plan, i), "up": others.get(name, False),
                    "registered": keys.controller(name) in oper}
                   for i, name in enumerate(plan.controllers)
                   if (state.options or {}).get("controller", True)]
    return {"workdir": plan.workdir, "prefix": plan.prefix, "etcd": etcd_url(plan),
            "revision": revision, "processes": others, "controllers": controllers,
            "hosts": hosts, "containers": containers, "externals": externals}


def _by_ifname(ns: str) -> dict[str, str]:
    return {a.split()[0]: a.split()[1] for a in _addresses(ns)}


def format_status(st: dict[str, Any]) -> str:
    lines = [f"test bed {st['prefix']} ({st['workdir']})  etcd {st['etcd']}  "
             f"store revision {st['revision'] if st['revision'] is not None else 'unreachable'}"]
    lines.append("  " + "  ".join(f"{n}:{'up' if ok else 'DOWN'}"
                                  for n, ok in st["processes"].items()))
    for c in st.get("controllers", []):
        lines.append(f"{c['name']}  REST {c['rest']}  {'up' if c['up'] else 'DOWN'}"
                     f"{'  (in the election)' if c['registered'] else ''}")
    for h in st["hosts"]:
        realized = h["realized"]["revision"] if isinstance(h["realized"], dict) else "-"
        procs = " ".join(f"{n}:{'up' if ok else 'DOWN'}" for n, ok in h["processes"].items())
        lines.append(f"host {h['name']}  netns {h['netns']}  vtep {h['vtep_ip']}  uplink "
                     f"{h['uplink']}  bridges {','.join(h['bridges']) or '-'}  "
                     f"registered {'yes' if h['registered'] else 'no'}  realized {realized}"
                     f"  master {h.get('master') or '-'}")
        lines.append(f"  {procs}")
    for c in st["containers"]:
        lines.append(f"container {c['name']}  on {c['host']}  id {c['id']}  netns {c['netns']}  "
                     f"{'; '.join(c['interfaces']) or 'no IPv4 yet'}")
    if not st["containers"]:
        lines.append("no containers")
    for x in st.get("externals", []):
        legs = "; ".join(f"{leg['ifname']} vlan {leg['vlan']} {leg['cidr']}"
                         + ("" if leg["up"] else " (DOWN)") for leg in x["legs"])
        lines.append(f"machine {x['name']}  netns {x['netns']}  {legs}"
                     + (f"  default via {x['gateway']}" if x["gateway"] else "")
                     + ("  forwarding" if x["forwarding"] else ""))
    return "\n".join(lines)
