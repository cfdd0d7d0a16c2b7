"""The controller benchmarks' test bed: real OVS hosts, real etcd, the controller as a process.

The hosts come from ``python -m topologies up --no-controller --no-agent`` (one namespace per
host with its own ovsdb-server + ovs-vswitchd, an underlay, a stock etcd).  The bench then does
what an agent would, without one (an agent deletes the oper keys of ports it did not plug, so
simulated plugs need agent-less hosts):

* ``br-int`` created with the controller target in the same ``ovs-vsctl`` call as ``add-br``
  (``fail_mode=secure``, a fixed datapath id, the vxlan port and the uplink on ofports 1 and 2);
* the host's registration ``/netplugin/oper/hosts/<h>``;
* a unix-socket relay per host to the controller on loopback (OVS accepts unix targets only in
  its run dir).

The controller (``python -m ryu_apps``, optionally under cProfile) and the relays are recorded
in the bed's state file as they start, so ``python -m topologies down`` stops them too if the
bench itself dies.  Everything lives in the bench's own work dir.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from intent import keys
from intent.realized import is_current
from intent.store_etcd import EtcdStore
from topologies import ovs, proc
from topologies.ovs import OvsPaths
from topologies.state import BedState, locked

ROOT = Path(__file__).resolve().parents[2]
BR_INT = "br-int"
VXLAN_OFPORT = 1
UPLINK_OFPORT = 2
DPID_BASE = 0x4E42000000000000
CLK_TCK = os.sysconf("SC_CLK_TCK")
Say = Callable[[str], None]


class BenchError(RuntimeError):
    """The bench cannot go on; the message says what failed."""


def port_pair() -> int:
    """A loopback port ``p`` with ``p + 1`` also free (etcd's client and peer ports)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port < 65000 and proc.port_free(port + 1):
            return port
    raise BenchError("no two consecutive free ports on 127.0.0.1")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` (from /proc/<pid>/stat), in seconds."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    fields = stat[stat.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def etcd_requests(url: str) -> dict[str, int]:
    """Requests etcd completed so far, by method, and ``keys written`` (from its ``/metrics``:
    gRPC, which the HTTP gateway goes through, and mvcc puts)."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    out: dict[str, int] = {}
    for m in re.finditer(r'^grpc_server_handled_total\{[^}]*grpc_method="(\w+)"[^}]*\} (\d+)',
                         text, re.M):
        out[m[1]] = out.get(m[1], 0) + int(m[2])
    puts = re.search(r"^etcd_mvcc_put_total (\d+)", text, re.M)
    if puts:
        out["keys written"] = int(puts[1])
    return out


@dataclass(frozen=True)
class Host:
    """One bed host as the bench drives it."""

    name: str
    index: int
    netns: str
    vtep_ip: str
    paths: OvsPaths

    @property
    def dpid(self) -> int:
        return DPID_BASE + self.index + 1

    @property
    def mgmt(self) -> str:
        return f"unix:{self.paths.run / (BR_INT + '.mgmt')}"

    def ofctl(self, *args: str, timeout: float = 600) -> str:
        """``ovs-ofctl -O OpenFlow13 <cmd> <br-int> [args]`` against this host's br-int."""
        cmd, rest = args[0], args[1:]
        res = proc.run(["ovs-ofctl", "-O", "OpenFlow13", cmd, self.mgmt, *rest],
                       env=self.paths.env(), timeout=timeout)
        return res.stdout

    def registration(self) -> dict:
        return {"name": self.name, "dpid": self.dpid, "vtep_ip": self.vtep_ip,
                "uplink": "eth2", "uplink_ofport": UPLINK_OFPORT,
                "vxlan_ofport": VXLAN_OFPORT, "version": "bench"}


class Rest:
    """The controller's REST API over one kept-alive HTTP connection."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._conn: http.client.HTTPConnection | None = None

    def call(self, method: str, path: str, body: Any = None, timeout: float = 120) -> Any:
        data = None if body is None else json.dumps(body).encode()
        for attempt in (1, 2):
            if self._conn is None:
                self._conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                self._conn.timeout = timeout
                self._conn.request(method, "/api/v1" + path, body=data,
                                   headers={"Content-Type": "application/json"})
                resp = self._conn.getresponse()
                text = resp.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt == 2:
                    raise
                continue
            if resp.status >= 300:
                raise BenchError(f"REST {method} {path}: {resp.status} {text[:300]!r}")
            return json.loads(text)
        raise AssertionError("unreachable")

    def get(self, path: str, timeout: float = 120) -> Any:
        return self.call("GET", path, timeout=timeout)

    def post(self, path: str, body: Any, timeout: float = 120) -> Any:
        return self.call("POST", path, body, timeout=timeout)

    def up(self) -> bool:
        try:
            self.get("/hosts", timeout=2)
            return True
        except (OSError, BenchError, http.client.HTTPException, ValueError):
            return False

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class RealizedWatch:
    """Records when each ``/netplugin/oper/realized/<host>`` key is written saying the host
    caught up (``current``, :mod:`intent.realized`; an etcd watch)."""

    def __init__(self, url: str) -> None:
        self.events: list[tuple[float, str, int]] = []  # (time.time(), host, mod_revision)
        self._cond = threading.Condition()
        self._store = EtcdStore(url, watch_idle_timeout=3600)
        start = self._store.revision() + 1
        self._watcher = self._store.watch(keys.OPER_REALIZED, start)
        self._thread = threading.Thread(target=self._run, daemon=True, name="realized watch")
        self._thread.start()

    def _run(self) -> None:
        try:
            for ev in self._watcher:
                if ev.type == "put" and is_current(ev.value):
                    with self._cond:
                        self.events.append((time.time(), keys.last_segment(ev.key),
                                            ev.mod_revision))
                        self._cond.notify_all()
        except Exception:  # noqa: BLE001 - the watch ends when closed
            pass

    def first_after(self, host: str, since: float, timeout: float) -> float:
        """The time of the first write of ``host``'s realized key after ``since``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for t, h, _rev in self.events:
                    if h == host and t >= since:
                        return t
                left = deadline - time.monotonic()
                if left <= 0:
                    raise BenchError(f"{host}'s realized revision was not written within "
                                     f"{timeout:.0f} s")
                self._cond.wait(left)

    def close(self) -> None:
        self._watcher.close()
        self._store.close()


class Controller:
    """``python -m ryu_apps`` for the bed (loopback OpenFlow and REST), optionally profiled."""

    def __init__(self, bed: Bed, profile_dir: Path | None = None) -> None:
        self.bed = bed
        self.profile_dir = profile_dir
        self.pid: int | None = None
        self.started = 0.0  # time.time() just before the process was spawned
        self.log = bed.workdir / "logs" / "bench-controller.log"
        self._runs = 0
        self._parts = 0

    def command(self) -> list[str]:
        args = ["--ofp-listen-host", "127.0.0.1", "--ofp-tcp-listen-port", str(self.bed.ofp_port),
                "--etcd", self.bed.etcd_url, "--rest-host", "127.0.0.1",
                "--rest-port", str(self.bed.rest_port), "--audit-interval", "0"]
        if self.profile_dir is None:
            return [sys.executable, "-m", "ryu_apps", *args]
        self._runs += 1
        self._parts = 0
        out = self.profile_dir / f"controller-{self._runs}.prof"
        return [sys.executable, "-m", "tests.bench.profiled", str(out), "--", *args]

    def start(self, timeout: float = 60) -> float:
        """Spawn it and wait until REST answers; returns the spawn time (``time.time()``)."""
        self.started = time.time()
        self.pid = self.bed.spawn("bench-controller", self.command(), self.log)
        deadline = time.monotonic() + timeout
        while not self.bed.rest.up():
            if not proc.alive(self.pid, None):
                raise BenchError(f"the controller exited; last log lines ({self.log}):\n"
                                 f"{proc.tail(self.log)}")
            if time.monotonic() > deadline:
                raise BenchError(f"the controller's REST API did not answer in {timeout:.0f} s")
            time.sleep(0.05)
        return self.started

    def profile_part(self, what: str) -> None:
        """Close the profile's current part (when profiled) and say what it holds."""
        if self.profile_dir is None or self.pid is None:
            return
        self._parts += 1
        out = self.profile_dir / f"controller-{self._runs}.part{self._parts}.prof"
        os.kill(self.pid, signal.SIGUSR2)
        proc.wait_for(out.with_suffix(".txt").exists, 120, f"the profile {out}")  # CPU it spends
        self.bed.say(f"  (profile of {what}: {out})")

    def cpu(self) -> float:
        assert self.pid is not None
        return cpu_seconds(self.pid)

    def kill9(self) -> None:
        """SIGKILL (no clean-up, like a crash); a profile of this run is lost."""
        if self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            _wait_gone(self.pid)
            self.pid = None
        self.bed.rest.close()

    def stop(self) -> None:
        """SIGTERM (a profiled controller writes its profile first)."""
        if self.pid is not None:
            proc.stop(self.pid, None, grace=30 if self.profile_dir else 5)
            self.pid = None
        self.bed.rest.close()

    def log_size(self) -> int:
        return self.log.stat().st_size if self.log.exists() else 0

    def log_since(self, offset: int) -> str:
        with open(self.log, "rb") as fh:
            fh.seek(offset)
            return fh.read().decode(errors="replace")


def _wait_gone(pid: int, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while proc.start_time(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)


class Bed:
    """A ``python -m topologies`` bed of ``n_hosts`` agent-less hosts (h1..hN) in ``workdir``."""

    def __init__(self, workdir: Path, n_hosts: int, say: Say = print,
                 profile_dir: Path | None = None) -> None:
        self.workdir = workdir.resolve()
        self.n_hosts = n_hosts
        self.say = say
        self.etcd_port = port_pair()
        self.ofp_port = free_port()
        self.rest_port = free_port()
        self.etcd_url = f"http://127.0.0.1:{self.etcd_port}"
        self.rest = Rest(self.rest_port)
        self.hosts: dict[str, Host] = {}
        self.attached: set[str] = set()
        self.store: EtcdStore | None = None
        self.controller = Controller(self, profile_dir)
        self.realized: RealizedWatch | None = None

    # ------------------------------------------------------------------ bed CLI
    def _cli(self, *args: str, timeout: float = 900) -> str:
        res = subprocess.run([sys.executable, "-m", "topologies", "--workdir", str(self.workdir),
                              *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        if res.returncode != 0:
            raise BenchError(f"topologies {' '.join(args[:1])}: exit {res.returncode}\n"
                             f"{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
        return res.stdout

    def up(self) -> None:
        """Hosts, underlay and etcd; then the relays, the registrations and the controller."""
        names = ",".join(f"h{i}" for i in range(1, self.n_hosts + 1))
        self.down()
        self._cli("up", "--hosts", names, "--no-controller", "--no-agent",
                  "--etcd-port", str(self.etcd_port), "--ofp-port", str(self.ofp_port),
                  "--rest-port", str(self.rest_port))
        plan = BedState.load(self.workdir).plan or {}
        for h in plan.get("hosts", []):
            self.hosts[h["name"]] = Host(h["name"], h["index"], h["netns"], h["vtep_ip"],
                                         ovs.host_paths(self.workdir, h["name"]))
        self.store = EtcdStore(self.etcd_url)
        for host in self.hosts.values():
            sock = host.paths.controller_sock
            self.spawn(f"bench-ofp-relay:{host.name}",
                       ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early",
                        f"TCP:127.0.0.1:{self.ofp_port},nodelay"],
                       self.workdir / "logs" / f"ofp-relay-{host.name}.log")
            self.store.put(keys.oper_host(host.name), json.dumps(host.registration()))
        for host in self.hosts.values():
            proc.wait_for(host.paths.controller_sock.exists, 10, f"{host.name}'s relay socket")
        self.realized = RealizedWatch(self.etcd_url)
        self.controller.start()

    def down(self) -> None:
        """Stop the controller and relays, then ``topologies down`` (idempotent)."""
        if self.realized is not None:
            self.realized.close()
            self.realized = None
        if self.controller.pid is not None:
            self.controller.stop()
        if self.store is not None:
            self.store.close()
            self.store = None
        if (self.workdir / "bed.json").exists():
            self._cli("down")

    def spawn(self, name: str, cmd: list[str], log: Path) -> int:
        """Start a process and record it in the bed's state (``down`` stops it)."""
        pid = proc.spawn(cmd, log, env={"PYTHONPATH": str(ROOT)}, cwd=str(ROOT))
        with locked(self.workdir):
            state = BedState.load(self.workdir)
            state.add_pid(name, pid)
        return pid

    # ------------------------------------------------------------------ hosts
    def names(self, n: int) -> list[str]:
        return [f"h{i}" for i in range(1, n + 1)]

    def attach(self, names: Iterable[str]) -> None:
        """Give each host an empty br-int connected to the controller (what an agent does)."""
        for name in names:
            host = self.hosts[name]
            sock = host.paths.controller_sock
            ovs.vsctl(host.paths, "--if-exists", "del-br", BR_INT,
                      "--", "add-br", BR_INT,
                      "--", "set", "bridge", BR_INT, "datapath_type=netdev", "fail_mode=secure",
                      "protocols=OpenFlow13", f"other_config:datapath-id={host.dpid:016x}",
                      "other_config:disable-in-band=true",
                      "--", "set-controller", BR_INT, f"unix:{sock}",
                      "--", "add-port", BR_INT, "vxlan0",
                      "--", "set", "interface", "vxlan0", "type=vxlan",
                      "options:remote_ip=flow", "options:key=flow",
                      f"ofport_request={VXLAN_OFPORT}",
                      "--", "add-port", BR_INT, "eth2",
                      "--", "set", "interface", "eth2", f"ofport_request={UPLINK_OFPORT}")
            for iface, want in (("vxlan0", VXLAN_OFPORT), ("eth2", UPLINK_OFPORT)):
                got = ovs.vsctl(host.paths, "get", "interface", iface, "ofport")
                if got != str(want):
                    err = ovs.vsctl(host.paths, "get", "interface", iface, "error", check=False)
                    raise BenchError(f"{name}: {iface} on ofport {got}, not {want}: {err}")
            self.attached.add(name)

    def detach(self, names: Iterable[str] | None = None) -> None:
        """Delete br-int (the switch disconnects; its flows go with it)."""
        for name in sorted(self.attached if names is None else set(names)):
            ovs.vsctl(self.hosts[name].paths, "--if-exists", "del-br", BR_INT)
            self.attached.discard(name)

    def host_rows(self) -> dict[str, dict]:
        return {h["name"]: h for h in self.rest.get("/hosts")}

    def wait_in_sync(self, names: Iterable[str], revision: int, timeout: float = 900) -> None:
        """Until every named host's switch is connected, in sync and realized ``revision``."""
        names = list(names)
        deadline = time.monotonic() + timeout
        while True:
            rows = self.host_rows()
            behind = [n for n in names if not (
                rows.get(n, {}).get("in_sync")
                and (rows[n].get("realized_revision") or 0) >= revision)]
            if not behind:
                return
            if time.monotonic() > deadline:
                raise BenchError(f"hosts not in sync after {timeout:.0f} s: "
                                 f"{', '.join(behind[:10])} ({rows.get(behind[0])})")
            time.sleep(0.1 if len(names) < 10 else 0.5)

    def wait_applied(self, revision: int, timeout: float = 600) -> None:
        """Until the controller applied ``revision`` and every connected switch realized it."""
        out = self.rest.get(f"/wait?revision={revision}&timeout={timeout}", timeout=timeout + 30)
        if not out.get("realized"):
            raise BenchError(f"revision {revision} not realized within {timeout:.0f} s")

    def ovs_pids(self, names: Iterable[str]) -> list[int]:
        state = BedState.load(self.workdir)
        want = {f"ovs-vswitchd:{n}" for n in names}
        return [p["pid"] for p in state.pids if p["name"] in want]
