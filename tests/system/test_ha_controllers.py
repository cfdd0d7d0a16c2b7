"""Three controllers, two hosts (``topologies up --controllers 3``): one master per switch chosen
through etcd; ``kill -9`` of a master costs no ping and no table change; the new master answers
``?wait``; the old one comes back as slave; one controller alone still runs everything.

The bed's controllers use a 3 s election lease.  The failover time (kill to the new master's
first barrier, which follows its ROLE_REQUEST and its read-back of the switch) is printed.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.system.conftest import free_port
from tests.system.scenario_bed import BED_CONFIG, ROOT, ScenarioBed

pytestmark = [pytest.mark.system]
WORKDIR = Path(os.environ.get("NETPLUGIN_HA_BED", "/tmp/np-ha"))
TTL = 3  # the bed's election lease with several controllers


@pytest.fixture(scope="module")
def bed() -> Iterator[ScenarioBed]:
    b = ScenarioBed(WORKDIR, free_port(), free_port(), free_port())
    b.up(BED_CONFIG, "--controllers", "3")
    try:
        b.apply("two_hosts_vxlan.json")
        b.run("host1", "myContainer1")
        b.run("host2", "myContainer2")
        yield b
    finally:
        b.down()


# ------------------------------------------------------------------ helpers
def wait_until(cond: Callable[[], object], timeout: float, what: str) -> object:
    deadline = time.monotonic() + timeout
    while True:
        try:
            got = cond()
        except OSError:
            got = None
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout:g}s: {what}"
        time.sleep(0.1)


def controllers(bed: ScenarioBed) -> dict[str, str]:
    """Controller name -> its REST URL (as ``status`` shows them)."""
    return {c["name"]: c["rest"] for c in bed.status()["controllers"]}


def rest(url: str, path: str, body: object = None, timeout: float = 30) -> object:
    req = urllib.request.Request(url + "/api/v1" + path, method="POST" if body else "GET",
                                 data=json.dumps(body).encode() if body else None)
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return json.loads(resp.read())


def hosts(url: str) -> dict[str, dict]:
    return {h["name"]: h for h in rest(url, "/hosts", timeout=5)}


def master_gauge(url: str) -> dict[str, float]:
    """``netplugin_switch_master`` per host, scraped from a controller's ``/metrics``."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {s.labels["host"]: s.value for fam in text_string_to_metric_families(text)
            for s in fam.samples if s.name == "netplugin_switch_master"}


def pid_of(name: str) -> int:
    state = json.loads((WORKDIR / "bed.json").read_text())
    return next(p["pid"] for p in state["pids"] if p["name"] == name)


def flows(bed: ScenarioBed, host: str) -> list[str]:
    out = bed.sh(host, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br-int", "--no-stats",
                 check=True).stdout
    return sorted(ln.strip() for ln in out.splitlines() if "cookie=" in ln)


def settled_master(bed: ScenarioBed, host: str, live: list[str]) -> str:
    """The master of ``host``'s switch once every live controller agrees and it is in charge."""
    urls = controllers(bed)

    def agreed() -> str | None:
        rows = [hosts(urls[c])[host] for c in live]
        names = {r["master"] for r in rows}
        if len(names) != 1 or None in names:
            return None
        name = names.pop()
        mine = hosts(urls[name])[host] if name in live else None
        ok = mine and mine["role"] == "master" and mine["master_since"] and all(
            r["role"] == "slave" for c, r in zip(live, rows, strict=True) if c != name)
        return name if ok else None

    return wait_until(agreed, 30, f"one master for {host} among {live}")


class FlowMonitor:
    """``ovs-ofctl monitor br-int watch:!initial`` on a host: every table change, timestamped."""

    def __init__(self, bed: ScenarioBed, host: str) -> None:
        self.events: list[tuple[float, str]] = []
        self.ready = threading.Event()
        self.p = subprocess.Popen(
            [sys.executable, "-m", "topologies", "--workdir", str(bed.workdir), "exec", host,
             "--", "stdbuf", "-oL", "ovs-ofctl", "-O", "OpenFlow13", "monitor", "br-int",
             "watch:!initial"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            cwd=ROOT)
        threading.Thread(target=self._read, daemon=True).start()
        assert self.ready.wait(15), "ovs-ofctl monitor did not start"

    def _read(self) -> None:
        assert self.p.stdout is not None
        for line in self.p.stdout:
            if "FLOW_MONITOR reply" in line:
                self.ready.set()
            elif "event=" in line:
                self.events.append((time.time(), line.strip()))

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        self.p.wait(timeout=10)


def ping_start(bed: ScenarioBed, src: str, dst_ip: str, count: int) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "topologies", "--workdir", str(bed.workdir), "exec", src, "--",
         "ping", "-i", "0.05", "-c", str(count), "-W", "1", dst_ip],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT)


def ping_result(p: subprocess.Popen) -> tuple[int, int]:
    out, _ = p.communicate(timeout=60)
    m = re.search(r"(\d+) packets transmitted, (\d+) received", out)
    assert m, f"no ping summary in: {out}"
    return int(m.group(1)), int(m.group(2))


# ------------------------------------------------------------------ tests
def test_ovs_refuses_a_stale_generation_and_a_slave_s_table_changes(bed: ScenarioBed) -> None:
    """What the roles logic relies on, asked of a real OVS (a spare bridge on host1) with two
    raw connections."""
    from types import SimpleNamespace

    from ofctl import wire
    from ofctl.model import Flow
    from ryu_apps.framework import ofproto_v1_3 as OFP
    from ryu_apps.framework import ofproto_v1_3_parser as PARSER
    from ryu_apps.switch import BUNDLE_FLAGS, _not_master, bundle_ctrl, serialize
    from tests.ofclient import OfClient
    from topologies.ovs import host_paths

    def role(c: OfClient, which: int, generation: int) -> tuple[int, bytes]:
        x = c.xid()
        c.send(serialize(PARSER.OFPRoleRequest(None, which, generation), x))
        while True:
            msg_type, xid, msg = c.recv()
            if xid == x:
                return msg_type, msg

    def error(msg: bytes) -> SimpleNamespace:
        return SimpleNamespace(type=int.from_bytes(msg[8:10], "big"),
                               code=int.from_bytes(msg[10:12], "big"))

    bed.sh("host1", "ovs-vsctl", "add-br", "brroles", "--", "set", "bridge", "brroles",
           "datapath_type=netdev", "fail_mode=secure", "protocols=OpenFlow13", check=True)
    try:
        mgmt = host_paths(WORKDIR, "host1").run / "brroles.mgmt"
        wait_until(mgmt.exists, 10, "the spare bridge's mgmt socket")
        a, b = OfClient(str(mgmt)), OfClient(str(mgmt))
        assert role(a, OFP.OFPCR_ROLE_MASTER, 10)[0] == OFP.OFPT_ROLE_REPLY
        msg_type, msg = role(b, OFP.OFPCR_ROLE_MASTER, 9)  # older generation: stale
        assert msg_type == OFP.OFPT_ERROR and _not_master(error(msg))
        assert (error(msg).type, error(msg).code) == (OFP.OFPET_ROLE_REQUEST_FAILED,
                                                      OFP.OFPRRFC_STALE)
        assert role(b, OFP.OFPCR_ROLE_MASTER, 11)[0] == OFP.OFPT_ROLE_REPLY  # a is slave now
        a.send(wire.flow_add(Flow(table=0, priority=1, match=(), instructions=()), a.xid()))
        a.send(bundle_ctrl(7, OFP.ONF_BCT_OPEN_REQUEST, a.xid(), BUNDLE_FLAGS))
        refused = a.barrier()
        assert len(refused) == 2 and all(_not_master(error(m)) for m in refused)
        dump = bed.sh("host1", "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "brroles",
                      check=True).stdout
        assert "priority=1 " not in dump  # nothing of the slave's was applied
        assert role(a, OFP.OFPCR_ROLE_SLAVE, 11)[0] == OFP.OFPT_ROLE_REPLY  # the master's id
        assert role(a, OFP.OFPCR_ROLE_MASTER, 10)[0] == OFP.OFPT_ERROR  # a stale master
        a.close(), b.close()
    finally:
        bed.sh("host1", "ovs-vsctl", "--if-exists", "del-br", "brroles")


def test_each_switch_has_one_master_and_the_switches_are_spread(bed: ScenarioBed) -> None:
    live = list(controllers(bed))
    assert live == ["controller", "controller2", "controller3"]
    masters = {h: settled_master(bed, h, live) for h in ("host1", "host2")}
    status = {h["name"]: h["master"] for h in bed.status()["hosts"]}
    assert status == masters  # `status` names each switch's master
    for h in ("host1", "host2"):  # the agent gave br-int every controller
        targets = bed.sh(h, "ovs-vsctl", "get-controller", "br-int", check=True).stdout.split()
        assert len(targets) == 3 and all(t.startswith("unix:") for t in targets), targets
    for url in controllers(bed).values():  # every switch is connected to every controller
        assert all(row["connected"] for row in hosts(url).values())
    assert bed.reaches("myContainer1", bed.ip("myContainer2"))
    for name, url in controllers(bed).items():  # the master gauge: 1 only at the master
        gauge = master_gauge(url)
        assert gauge == {h: float(masters[h] == name) for h in ("host1", "host2")}, (name, gauge)
    for name, url in controllers(bed).items():  # a slave's view is current: its audit is clean
        for h in ("host1", "host2"):
            audit = rest(url, f"/hosts/{h}/audit")
            assert audit["differences"] == [], (name, h, audit)


def test_kill_9_of_the_master_loses_no_ping_and_changes_no_table(bed: ScenarioBed) -> None:
    live = list(controllers(bed))
    old = settled_master(bed, "host1", live)
    dst = bed.ip("myContainer2")
    assert bed.reaches("myContainer1", dst)
    before = flows(bed, "host1")
    monitor = FlowMonitor(bed, "host1")
    try:
        ping = ping_start(bed, "myContainer1", dst, count=200)  # 10 s
        time.sleep(1)
        killed_at = time.time()
        os.kill(pid_of(old), signal.SIGKILL)
        rest_live = [c for c in live if c != old]
        new = settled_master(bed, "host1", rest_live)
        urls = controllers(bed)
        took = hosts(urls[new])["host1"]["master_since"] - killed_at
        print(f"\nfailover of host1 from {old} to {new}: {took:.2f}s from kill -9 to the new "
              f"master's first barrier (lease TTL {TTL}s)")
        assert new != old and took < TTL + 2
        assert flows(bed, "host1") == before
        sent, received = ping_result(ping)
        assert (sent, received) == (200, 200), f"ping lost {sent - received} of {sent}"
        # a change after the failover, through the new master, with ?wait
        changed_at = time.time()
        out = rest(urls[new], "/networks/orange/endpoints?wait=20",
                   {"Container": "after-failover", "Host": "host1"})
        assert out["realized"] is True
        wait_until(lambda: monitor.events, 10, "the monitor to see the post-failover change")
        early = [e for t, e in monitor.events if t < changed_at]
        assert early == [], f"table changes during the failover: {early}"
        assert flows(bed, "host1") != before
    finally:
        monitor.stop()
    # the old master comes back as a slave: the mastership stays where it is
    bed.cli("restart", old)
    wait_until(lambda: hosts(urls[old])["host1"]["role"] == "slave", 30,
               f"{old} back as slave of host1")
    assert settled_master(bed, "host1", live) == new
    assert bed.reaches("myContainer1", dst)


def all_running(bed: ScenarioBed) -> list[str]:
    """Every controller of the bed, restarted where an earlier test left one stopped."""
    live = list(controllers(bed))
    for name in live:
        if not bed.status()["processes"].get(name):
            bed.cli("restart", name)
    return live


def test_a_paused_master_comes_back_as_slave_without_writing(bed: ScenarioBed) -> None:
    live = all_running(bed)
    old = settled_master(bed, "host1", live)
    urls = controllers(bed)
    monitor = FlowMonitor(bed, "host1")
    try:
        os.kill(pid_of(old), signal.SIGSTOP)  # frozen: no keepalive, its lease runs out
        try:
            new = settled_master(bed, "host1", [c for c in live if c != old])
            out = rest(urls[new], "/networks/orange/endpoints?wait=20",
                       {"Container": "while-paused", "Host": "host1"})
            assert out["realized"] is True
            want = flows(bed, "host1")
        finally:
            resumed_at = time.time()
            os.kill(pid_of(old), signal.SIGCONT)
        # it has caught up (the change made while it slept is realized in its view) ...
        answer = rest(urls[old], f"/wait?revision={out['revision']}&timeout=20")
        assert answer["realized"] is True
        wait_until(lambda: hosts(urls[old])["host1"]["role"] == "slave", 20,
                   f"{old} back as slave")
        assert hosts(urls[old])["host1"]["master"] == new
        # ... and not one table change came from it
        late = [e for t, e in monitor.events if t >= resumed_at]
        assert late == [], f"table changes after {old} resumed: {late}"
        assert flows(bed, "host1") == want
        assert settled_master(bed, "host1", live) == new
    finally:
        monitor.stop()


def test_one_controller_alone_still_runs_everything(bed: ScenarioBed) -> None:
    live = all_running(bed)
    keep = settled_master(bed, "host2", live)
    for name in live:
        if name != keep:
            os.kill(pid_of(name), signal.SIGKILL)
    urls = controllers(bed)
    assert settled_master(bed, "host1", [keep]) == keep
    assert settled_master(bed, "host2", [keep]) == keep
    out = rest(urls[keep], "/networks/orange/endpoints?wait=20",
               {"Container": "alone", "Host": "host2"})
    assert out["realized"] is True
    bed.run("host2", "alone")
    assert bed.reaches("myContainer1", bed.ip("alone"))
    assert bed.reaches("alone", bed.ip("myContainer1"))
