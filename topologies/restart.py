"""``restart NAME [--host H]``: start a recorded process of the test bed again, with the command
line it was first started with (for fault tests: ``kill -9`` it, then restart it).

Names are those ``status`` shows: ``etcd`` (or ``etcd1``…``etcdN`` in a cluster), ``controller``,
``agent``, ``ovsdb-server``, ``ovs-vswitchd``, the relays; per-host ones take ``--host``; the
underlay's access switch (physical machines) is ``ovsdb-server:underlay`` /
``ovs-vswitchd:underlay``.  A process still running is stopped first (SIGTERM).  The command
returns once the process is ready again: an etcd member answers ``/health``, the controller
listens, an OVS daemon has detached (after ``ovs-vswitchd``, br-phy gets its VTEP address and
the tunnel neighbours back: the userspace datapath re-creates its tap device bare).
"""

from __future__ import annotations

import time
from pathlib import Path

from topologies import bed, ovs, proc
from topologies.bed import BedError, Say
from topologies.state import BedState, locked


def restart(workdir: Path, name: str, host: str | None = None, say: Say = print) -> int:
    """Restart the recorded process ``name`` (``name:host`` with ``host``); returns its pid."""
    with locked(workdir):
        state = BedState.load(workdir)
        plan = bed.load_plan(state)
        full = f"{name}:{host}" if host else name
        rec = state.pid_of(full)
        if rec is None:
            names = sorted({p["name"] if not p.get("host") else
                            f"{p['name'].split(':')[0]} --host {p['host']}"
                            for p in state.pids})
            raise BedError(f"no recorded process {full!r} (recorded: {', '.join(names)})")
        launch = rec.get("launch")
        if not launch:
            raise BedError(f"{full} was not recorded with its command line: bring the bed up "
                           "again with this version")
        if proc.alive(rec["pid"], rec["start"]):
            proc.stop(rec["pid"], rec["start"])
        t0 = time.monotonic()
        if launch.get("pidfile") and rec.get("host"):  # an OVS daemon: --detach returns once
            paths = ovs.host_paths(workdir, str(rec["host"]))  # it is ready
            pid = ovs.start_daemon(paths, plan.host(str(rec["host"])).netns, name)
        elif launch.get("pidfile"):  # the underlay's access switch (``<daemon>:underlay``)
            pid = ovs.start_daemon(ovs.OvsPaths(workdir / "underlay"), plan.underlay_ns,
                                   name.split(":")[0])
        else:
            pid = proc.spawn(launch["cmd"], Path(launch["log"]), env=launch.get("env") or None,
                             cwd=launch.get("cwd"))
        state.replace_pid(full, pid)
        _ready(workdir, plan, state, name, rec)
        say(f"restarted {full} (pid {pid}) in {time.monotonic() - t0:.2f}s")
        return pid


def _ready(workdir: Path, plan, state: BedState, name: str, rec: dict) -> None:
    """Wait until the restarted process serves again (and repair what its death undid)."""
    if name == "ovs-vswitchd":
        h = plan.host(str(rec["host"]))
        paths = ovs.host_paths(workdir, h.name)
        proc.wait_for(lambda: ovs.vsctl(paths, "get", "interface", "br-phy", "ofport")
                      .lstrip("-").isdigit(), 10, f"{h.name}'s br-phy")
        ovs.address_underlay(h)
        ovs.seed_neighbours(paths, [p for p in plan.hosts if p is not h])
    elif name in plan.controllers:
        bed.wait_controller(state, plan, workdir / "logs" / f"{name}.log",
                            plan.controllers.index(name))
    elif name.startswith("etcd") and "relay" not in name:
        index = 0 if name == "etcd" else int(name[4:]) - 1
        url = bed.etcd_urls(plan)[index]
        client = bed.etcd_client(plan, timeout=2)
        proc.wait_for(lambda: client.member_healthy(url), 30, f"{name} healthy")
