"""The controller against real OVS (userspace datapath, private daemons) and real etcd.

One private ovsdb-server + ovs-vswitchd in a work dir, one netdev bridge (fail_mode=secure,
controller set in the same ovs-vsctl call as add-br), the host registered in etcd by the test
(not by the agent).  The controller runs as ``ryu-manager ryu_apps.netplugin`` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from intent import keys
from intent.store_etcd import EtcdStore

OF_PORT = int(os.environ.get("NP_CTL_OF_PORT", "26800"))
REST_PORT = int(os.environ.get("NP_CTL_REST_PORT", "26810"))
BRIDGE = "npcbr1"
DPID = 0x4E50000000000001



class Ovs:
    """A private ovsdb-server + ovs-vswitchd with one bridge."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir
        self.db = f"unix:{workdir}/db.sock"
        self.env = dict(os.environ, OVS_RUNDIR=str(workdir), OVS_LOGDIR=str(workdir),
                        OVS_DBDIR=str(workdir))

    def run(self, *cmd: str) -> str:
        return subprocess.run(cmd, env=self.env, check=True, capture_output=True,
                              text=True).stdout

    def start(self) -> Ovs:
        d = self.dir
        self.run("ovsdb-tool", "create", f"{d}/conf.db", "/usr/share/openvswitch/vswitch.ovsschema")
        self.run("ovsdb-server", f"{d}/conf.db", f"--remote=punix:{d}/db.sock",
                 f"--pidfile={d}/ovsdb.pid", f"--unixctl={d}/ovsdb.ctl",
                 f"--log-file={d}/ovsdb.log", "--detach")
        self.run("ovs-vsctl", f"--db={self.db}", "--no-wait", "init")
        self.run("ovs-vswitchd", self.db, f"--pidfile={d}/vswitchd.pid",
                 f"--unixctl={d}/vswitchd.ctl", f"--log-file={d}/vswitchd.log", "--detach")
        self.run("ovs-vsctl", f"--db={self.db}", "--", "add-br", BRIDGE, "--", "set", "bridge",
                 BRIDGE, "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13",
                 f"other_config:datapath-id={DPID:016x}", "--", "set-controller", BRIDGE,
                 f"tcp:127.0.0.1:{OF_PORT}")
        return self

    def stop(self) -> None:
        for name in ("vswitchd", "ovsdb"):
            pid = self.dir / f"{name}.pid"
            if pid.exists():
                try:
                    os.kill(int(pid.read_text()), signal.SIGTERM)
                except (ProcessLookupError, ValueError):
                    pass
        time.sleep(0.3)
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True)
        subprocess.run(["ip", "link", "del", "ovs-netdev"], capture_output=True)

    def flows(self) -> set[tuple[int, int, int]]:
        """(cookie, table, priority) of every flow on the bridge."""
        out = self.run("ovs-ofctl", "-O", "OpenFlow13", "dump-flows",
                       f"unix:{self.dir}/{BRIDGE}.mgmt")
        rows = set()
        for line in out.splitlines():
            m = re.search(r"cookie=(0x[0-9a-f]+).*table=(\d+).*priority=(\d+)", line)
            if m:
                rows.add((int(m[1], 16), int(m[2]), int(m[3])))
        return rows

    def controller_connected(self) -> bool:
        """What ovs-vswitchd reports about its controller connection (``is_connected``)."""
        out = self.run("ovs-vsctl", f"--db={self.db}", "--bare", "--columns=is_connected",
                       "list", "Controller")
        return out.strip() == "true"

    def ofctl(self, command: str, *args: str) -> str:
        return self.run("ovs-ofctl", "-O", "OpenFlow13", command,
                        f"unix:{self.dir}/{BRIDGE}.mgmt", *args)


RYU_MANAGER = Path(sys.executable).parent / "ryu-manager"


class ControllerProc:
    """The controller as users start it: ``ryu-manager ryu_apps.netplugin`` (the project's
    console script on os-ken), some options in a config file and some on the command line."""

    def __init__(self, etcd_url: str, log: Path, audit: float = 1.0) -> None:
        self.etcd_url, self.log, self.proc, self.audit = etcd_url, log, None, audit
        self.conf = log.with_name("netplugin.conf")
        self.conf.write_text(f"[DEFAULT]\netcd = {etcd_url}\naudit_interval = {audit}\n"
                             "rest_host = 127.0.0.1\n")

    def start(self) -> ControllerProc:
        assert RYU_MANAGER.exists(), f"{RYU_MANAGER} missing: run `make setup`"
        self.proc = subprocess.Popen(
            [str(RYU_MANAGER), "--config-file", str(self.conf), "--ofp-tcp-listen-port",
             str(OF_PORT), "--ofp-listen-host", "127.0.0.1", "ryu_apps.netplugin", "--rest-port",
             str(REST_PORT)],
            cwd="/", stdout=open(self.log, "a"), stderr=subprocess.STDOUT)
        wait(lambda: _get("/tenants") is not None, 20)
        return self

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.kill9()


def _get(path: str):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{REST_PORT}/api/v1{path}", timeout=30) as r:
            return json.load(r)
    except OSError:
        return None


def _post(path: str, body) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{REST_PORT}/api/v1{path}", method="POST",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r)


def wait(cond, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if cond():
                return
        except Exception:  # noqa: BLE001 - not up yet
            pass
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


def host_row() -> dict:
    return next(h for h in _get("/hosts") if h["name"] == "host1")


def desired() -> set[tuple[int, int, int]]:
    out = _get("/hosts/host1/flows")
    return {(int(f["cookie"], 16), f["table"], f["priority"]) for f in out["flows"]}


@pytest.fixture
def bed(etcd, tmp_path):
    work = Path(os.environ.get("NP_CTL_WORK", "/tmp/np-ctl")) / tmp_path.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    store = EtcdStore(etcd.url)
    store.put(keys.oper_host("host1"), json.dumps({
        "name": "host1", "dpid": DPID, "vtep_ip": "192.168.2.10", "uplink": None,
        "uplink_ofport": None, "vxlan_ofport": 100, "version": "test"}))
    ovs = Ovs(work).start()
    ctl = ControllerProc(etcd.url, work / "controller.log").start()
    yield store, ovs, ctl, etcd
    ctl.stop()
    ovs.stop()
    store.close()


TENANT = {"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
          "AllocSubnetLen": 24, "Vxlans": "10001-10100",
          "Networks": [{"Name": "orange", "Endpoints": [{"Container": "c1", "Host": "host1"}]}]}


def test_controller_keeps_real_ovs_in_sync(bed):
    store, ovs, ctl, etcd = bed
    out = _post("/tenants?wait=15", TENANT)
    store.put(keys.oper_endpoint("orange-c1"), json.dumps({"host": "host1", "ofport": 5}))
    wait(lambda: host_row()["in_sync"] and ovs.flows() == desired() and len(desired()) > 3)
    assert host_row()["realized_revision"] >= out["revision"]

    # an intent change reaches the switch, and ?wait answers once it is realized
    out = _post("/networks/orange/endpoints?wait=15", {"Container": "c2", "Host": "host1"})
    store.put(keys.oper_endpoint("orange-c2"), json.dumps({"host": "host1", "ofport": 6}))
    assert out["realized"]
    wait(lambda: ovs.flows() == desired() and any(
        "orange-c2" in f["owner"] for f in _get("/hosts/host1/flows")["flows"]))

    # kill -9 and restart: the switch keeps its flows and gets zero changes
    before = ovs.flows()
    wait(ovs.controller_connected, 20)  # as the switch reports it (refreshed every few s)
    ctl.kill9()
    # once the switch knows its controller is gone, fail_mode=secure has kept every flow
    wait(lambda: not ovs.controller_connected(), 20)
    assert ovs.flows() == before
    ctl.start()
    wait(lambda: host_row()["in_sync"])
    assert host_row()["changes_sent"] == 0 and ovs.flows() == before

    # a flow deleted behind the controller's back is restored by the audit
    cookie, table, priority = max(f for f in before if f[1] != 250)  # an entry, not the marker
    ovs.ofctl("del-flows", f"table={table},cookie={cookie:#x}/0xffffffffffffffff")
    assert ovs.flows() != before
    wait(lambda: ovs.flows() == before, 10)
    # counted once the switch confirmed the repair (its barrier reply may trail the flows)
    wait(lambda: host_row()["changes_sent"] >= 1, 10)

    # etcd restarts; the next intent change is still applied
    etcd.restart()
    wait(lambda: _post("/networks/orange/endpoints", {"Container": "c3", "Host": "host1"}), 20)
    store.put(keys.oper_endpoint("orange-c3"), json.dumps({"host": "host1", "ofport": 7}))
    wait(lambda: any("orange-c3" in f["owner"] for f in _get("/hosts/host1/flows")["flows"])
         and ovs.flows() == desired(), 20)
