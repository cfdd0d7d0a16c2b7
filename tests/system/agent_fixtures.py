"""Fixtures for the agent's system tests: one simulated host and etcd, all private to a work dir.

A simulated host is a network namespace with its own ovsdb-server and ovs-vswitchd (userspace
datapath only, ``--disable-system``), run dir, db socket and unixctl sockets.  Containers are plain
network namespaces.  Everything is stopped by pid and deleted on teardown.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from tests.system.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
WORK = Path(os.environ.get("NPA_WORKDIR", "/tmp/np-agent"))
SCHEMA = "/usr/share/openvswitch/vswitch.ovsschema"


def sh(*args: str, check: bool = True, ns: str | None = None) -> str:
    """Run a command (optionally inside netns ``ns``) and return its stdout."""
    cmd = (["ip", "netns", "exec", ns] if ns else []) + list(args)
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if check and res.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {res.stderr.strip()}")
    return res.stdout


def _stop(proc: subprocess.Popen | None, sig: int = signal.SIGTERM) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


class OvsHost:
    """One simulated host: netns ``name`` with a private ovsdb-server + ovs-vswitchd."""

    def __init__(self, name: str, workdir: Path | None = None) -> None:
        self.name = name
        self.dir = (workdir or WORK) / name
        self.db_sock = self.dir / "db.sock"
        self.ovsdb = f"unix:{self.db_sock}"
        self.procs: dict[str, subprocess.Popen] = {}
        self.env = dict(os.environ, OVS_RUNDIR=str(self.dir), OVS_DBDIR=str(self.dir),
                        OVS_LOGDIR=str(self.dir), OVS_PKGDATADIR="/usr/share/openvswitch",
                        OVS_SYSCONFDIR=str(self.dir))

    # ---- lifecycle
    def start(self) -> OvsHost:
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True)
        if self.name in sh("ip", "netns", "list"):
            sh("ip", "netns", "del", self.name)
        sh("ip", "netns", "add", self.name)
        sh("ip", "link", "set", "lo", "up", ns=self.name)
        subprocess.run(["ovsdb-tool", "create", str(self.dir / "conf.db"), SCHEMA], check=True)
        self.start_ovsdb()
        self.vsctl("--no-wait", "init")
        self.start_vswitchd()
        return self

    def start_ovsdb(self) -> None:
        self.procs["ovsdb"] = self._spawn(
            "ovsdb", "ovsdb-server", str(self.dir / "conf.db"), f"--remote=punix:{self.db_sock}",
            f"--unixctl={self.dir / 'ovsdb.ctl'}", f"--log-file={self.dir / 'ovsdb.log'}")
        wait_for(self.db_sock.exists, what="ovsdb socket")

    def start_vswitchd(self) -> None:
        self.procs["vswitchd"] = self._spawn(
            "vswitchd", "ovs-vswitchd", self.ovsdb, "--disable-system",
            f"--unixctl={self.dir / 'vswitchd.ctl'}", f"--log-file={self.dir / 'vswitchd.log'}")
        wait_for((self.dir / "vswitchd.ctl").exists, what="vswitchd unixctl")

    def stop_ovsdb(self) -> None:
        _stop(self.procs.pop("ovsdb", None))
        self.db_sock.unlink(missing_ok=True)

    def _spawn(self, tag: str, *args: str) -> subprocess.Popen:
        log = open(self.dir / f"{tag}.out", "ab")  # noqa: SIM115
        return subprocess.Popen(["ip", "netns", "exec", self.name, *args], env=self.env,
                                stdout=log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for tag in ("agent", "relay-in", "relay-out", "vswitchd", "ovsdb"):
            _stop(self.procs.pop(tag, None))
        if self.name in sh("ip", "netns", "list"):
            sh("ip", "netns", "del", self.name)

    def relay_etcd(self, port: int) -> str:
        """Make etcd on the root netns' 127.0.0.1:``port`` reachable at the same URL inside."""
        sock = self.dir / "etcd.sock"
        self.procs["relay-out"] = subprocess.Popen(
            ["socat", f"UNIX-LISTEN:{sock},fork,unlink-early", f"TCP:127.0.0.1:{port}"],
            stderr=subprocess.DEVNULL)
        wait_for(sock.exists, what="etcd relay socket")
        self.procs["relay-in"] = self._spawn(
            "relay", "socat", f"TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr",
            f"UNIX-CONNECT:{sock}")
        url = f"http://127.0.0.1:{port}"
        wait_for(lambda: "LISTEN" in sh("ss", "-ltn", ns=self.name) and
                 f":{port}" in sh("ss", "-ltn", ns=self.name), what="etcd relay")
        return url

    # ---- helpers for assertions
    def vsctl(self, *args: str, check: bool = True) -> str:
        return sh("ovs-vsctl", f"--db={self.ovsdb}", "--timeout=5", *args, check=check).strip()

    def ofctl(self, *args: str) -> str:
        return sh("ovs-ofctl", "-O", "OpenFlow13", *args[:1],
                  f"unix:{self.dir}/{args[1]}.mgmt", *args[2:]).strip()

    def ip(self, *args: str, check: bool = True) -> str:
        return sh("ip", *args, ns=self.name, check=check)

    def endpoint_ports(self) -> dict[str, str]:
        """endpoint-id -> port name, for every Interface that carries one."""
        out = self.vsctl("--format=csv", "--data=bare", "--no-heading",
                         "--columns=name,external_ids", "list", "Interface")
        res: dict[str, str] = {}
        for line in out.splitlines():
            name, _, ids = line.partition(",")
            for kv in ids.strip('"').split():
                k, _, v = kv.partition("=")
                if k == "endpoint-id":
                    res[v] = name
        return res

    # ---- the agent under test
    def start_agent(self, etcd_url: str, *extra: str) -> subprocess.Popen:
        log = open(self.dir / "agent.log", "ab")  # noqa: SIM115
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self.name, sys.executable, "-m", "agent", "--host", self.name,
             "--etcd", etcd_url, "--ovsdb", self.ovsdb, "--resync-interval", "2", *extra],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        self.procs["agent"] = proc
        return proc

    def stop_agent(self, sig: int = signal.SIGTERM) -> None:
        _stop(self.procs.pop("agent", None), sig)

    def agent_log(self) -> str:
        path = self.dir / "agent.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def reconciled(self) -> int:
        """The highest store revision the agent logged a reconcile pass at (-1: none yet)."""
        revs = re.findall(r"event=reconcile host=\S+ revision=(\d+)", self.agent_log())
        return max(map(int, revs), default=-1)


class Container:
    """A 'container': a named network namespace under /run/netns."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.netns = f"/run/netns/{name}"

    def start(self) -> Container:
        if os.path.exists(self.netns):
            sh("ip", "netns", "del", self.name)
        sh("ip", "netns", "add", self.name)
        return self

    def stop(self) -> None:
        if os.path.exists(self.netns):
            sh("ip", "netns", "del", self.name)

    def ip(self, *args: str, check: bool = True) -> str:
        return sh("ip", *args, ns=self.name, check=check)


class Bed:
    """etcd + one simulated host (+ its etcd relay) + helpers to write intent and run containers."""

    def __init__(self, host: str = "npa-h1", etcd_port: int = 24790) -> None:
        from tests.etcd_server import EtcdServer

        self.etcd = EtcdServer(WORK / f"etcd-{host}", etcd_port, etcd_port + 1)
        self.host = OvsHost(host)
        self.containers: dict[str, Container] = {}
        self.store = None
        self.url = ""

    def start(self) -> Bed:
        from intent.store_etcd import EtcdStore

        shutil.rmtree(self.etcd.workdir, ignore_errors=True)
        self.etcd.start()
        self.host.start()
        self.url = self.host.relay_etcd(self.etcd.client_port)
        self.store = EtcdStore(self.etcd.url)
        return self

    def stop(self) -> None:
        for c in list(self.containers.values()):
            c.stop()
        self.host.stop()
        if self.store is not None:
            self.store.close()
        self.etcd.stop()

    # ---- intent
    def network(self, name: str, net_type: str = "vxlan", subnet: str = "10.1.0.0/24",
                gateway: str | None = "10.1.0.1", tag: int = 100) -> None:
        from intent import codec, keys
        from intent.model import NetworkSpec

        self.store.put(keys.state_network(name),
                       codec.dumps(NetworkSpec(name, "t", net_type, tag, subnet, gateway)))

    def endpoint(self, network: str, container: str, ip: str, mac: str,
                 host: str | None = "", attach_uuid: str | None = None) -> str:
        from intent import codec, keys
        from intent.model import EndpointSpec, endpoint_id

        eid = endpoint_id(network, container)
        spec = EndpointSpec(eid, network, container, self.host.name if host == "" else host,
                            ip, mac, attach_uuid)
        self.store.put(keys.state_endpoint(eid), codec.dumps(spec))
        return eid

    def revision(self) -> int:
        """The store's current revision (every write so far is at or below it)."""
        return self.store.snapshot("/netplugin/nothing/").revision

    def wait_reconciled(self, revision: int | None = None, timeout: float = 10.0) -> None:
        """Wait until the agent reconciled at ``revision`` (default: now) or later.

        The positive event that proves the agent saw every write up to there: a test may then
        assert that something did *not* happen.
        """
        rev = self.revision() if revision is None else revision
        wait_for(lambda: self.host.reconciled() >= rev, timeout,
                 what=f"agent reconcile at revision {rev}")

    def remove_endpoint(self, eid: str) -> None:
        from intent import keys

        self.store.delete(keys.state_endpoint(eid))

    def oper(self, eid: str) -> dict | None:
        import json

        from intent import keys

        kv = self.store.get(keys.oper_endpoint(eid))
        return json.loads(kv.value) if kv else None

    # ---- containers (runtime registry written as the test bed's `run` does)
    def run(self, name: str, register: bool = True, cid: str | None = None) -> Container:
        import json

        from intent import keys

        c = self.containers.get(name) or Container(f"npa-{name}")
        c.start()
        self.containers[name] = c
        if register:
            self.store.put(keys.runtime_container(self.host.name, name),
                           json.dumps({"netns": c.netns, "id": cid or f"id-{name}"}))
        return c

    def kill(self, name: str, unregister: bool = True) -> None:
        from intent import keys

        c = self.containers.pop(name, None)
        if c is not None:
            c.stop()
        if unregister:
            self.store.delete(keys.runtime_container(self.host.name, name))

    def reset(self) -> None:
        """Forget all intent and containers; wait until the host has no endpoint port."""
        from intent import keys

        for name in list(self.containers):
            self.kill(name)
        self.store.delete(keys.STATE, prefix=True)
        self.store.delete(keys.RUNTIME, prefix=True)
        wait_for(lambda: not self.host.endpoint_ports(), what="all ports unplugged")
        wait_for(lambda: not self.store.list(keys.OPER_ENDPOINTS), what="oper keys gone")


def links_in(ns: str) -> list[str]:
    """Interface names in a namespace."""
    import json

    return [x["ifname"] for x in json.loads(sh("ip", "-j", "link", ns=ns))]


def require_root_ovs() -> None:
    import pytest

    if os.geteuid() != 0 or not shutil.which("ovs-vswitchd") or not shutil.which("socat"):
        pytest.fail("needs root, openvswitch and socat (`make test` installs them)")
