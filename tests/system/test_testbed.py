"""The test bed's infrastructure on its own (no controller, no agent): real OVS, etcd, namespaces.

Runs ``python -m topologies`` as a user would and checks what it made: OVS answers in every host
namespace, the underlay carries VTEP traffic and VLAN-tagged frames, containers come and go, and
``down`` leaves nothing behind, even after a crash; two test beds run side by side.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from topologies.plan import prefix_for

pytestmark = [
    pytest.mark.system,
]

ROOT = Path(__file__).resolve().parents[2]
BED1 = Path("/tmp/np-bed1")
BED2 = Path("/tmp/np-bed2")
PORTS1 = ["--etcd-port", "25790", "--ofp-port", "25800", "--rest-port", "25810"]
PORTS2 = ["--etcd-port", "25792", "--ofp-port", "25801", "--rest-port", "25811"]
CONFIG = {
    "Hosts": [{"Name": "host1", "Intf": "eth2", "VtepIp": "192.168.2.10"},
              {"Name": "host2", "Intf": "eth3"}],
    "Tenants": [],
}


def bed(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    res = subprocess.run([sys.executable, "-m", "topologies", "--workdir", str(workdir), *args],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError(f"{args}: exit {res.returncode}\n{res.stdout}\n{res.stderr}")
    return res


def recorded_pids(workdir: Path) -> list[int]:
    return [p["pid"] for p in json.loads((workdir / "bed.json").read_text())["pids"]]


def running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"


def namespaces(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return [ln.split()[0] for ln in out.splitlines() if ln.startswith(prefix + "-")]


def root_links(prefix: str) -> list[str]:
    out = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout
    return [ln for ln in out.splitlines() if prefix in ln]


def assert_gone(workdir: Path, pids: list[int]) -> None:
    prefix = prefix_for(workdir)
    assert [p for p in pids if running(p)] == []
    assert namespaces(prefix) == []
    assert root_links(prefix) == []
    assert not (workdir / "bed.json").exists()


@pytest.fixture(scope="module")
def bed1(tmp_path_factory: pytest.TempPathFactory):
    cfg = tmp_path_factory.mktemp("cfg") / "hosts.json"
    cfg.write_text(json.dumps(CONFIG))
    bed(BED1, "down", check=False)
    out = bed(BED1, "up", "--config", str(cfg), "--no-controller", "--no-agent", *PORTS1)
    assert "export NETPLUGIN_ETCD=http://127.0.0.1:25790" in out.stdout
    yield BED1
    bed(BED1, "down", check=False)


def test_each_host_runs_its_own_ovs(bed1: Path) -> None:
    for host in ("host1", "host2"):
        out = bed(bed1, "exec", host, "--", "ovs-vsctl", "show").stdout
        assert "Bridge br-phy" in out and "datapath_type: netdev" in out
        assert "ovs-vswitchd" in bed(bed1, "exec", host, "--", "ovs-appctl", "version").stdout
    st = json.loads(bed(bed1, "status", "--json").stdout)
    assert [h["name"] for h in st["hosts"]] == ["host1", "host2"]
    assert all(all(h["processes"].values()) for h in st["hosts"])
    # the two vswitchds are distinct processes in distinct namespaces
    pids = {p["pid"] for p in json.loads((bed1 / "bed.json").read_text())["pids"]
            if p["name"].startswith("ovs-vswitchd")}
    assert len(pids) == 2


def test_underlay_carries_vxlan_ip_between_vteps(bed1: Path) -> None:
    st = json.loads(bed(bed1, "status", "--json").stdout)
    vteps = {h["name"]: h["vtep_ip"] for h in st["hosts"]}
    assert vteps["host1"] == "192.168.2.10"  # from the config
    assert vteps["host2"].startswith("192.168.2.")  # allocated next to it
    bed(bed1, "exec", "host1", "--", "ping", "-c2", "-W1", vteps["host2"])
    bed(bed1, "exec", "host2", "--", "ping", "-c2", "-W1", "-s", "1472", "-M", "do",
        vteps["host1"])  # full-size frames: underlay MTU leaves room for VXLAN
    assert "192.168.2.10" in bed(bed1, "exec", "host2", "--", "ovs-appctl",
                                 "tnl/neigh/show").stdout


def test_underlay_carries_vlan_tagged_frames_between_uplinks(bed1: Path) -> None:
    # No 8021q module here: tag with a scratch OVS bridge on each uplink (as br-int will).
    ports = [("host1", "eth2", 100, "10.99.0.1"), ("host2", "eth3", 100, "10.99.0.2"),
             ("host2", "eth3", 200, "10.98.0.2"), ("host1", "eth2", 300, "10.98.0.1")]
    try:
        for host, uplink, vid, ip in ports:
            port = f"v{vid}"
            bed(bed1, "exec", host, "--", "ovs-vsctl", "--may-exist", "add-br", "brt", "--",
                "set", "bridge", "brt", "datapath_type=netdev", "--", "--may-exist",
                "add-port", "brt", uplink, "--", "add-port", "brt", port, f"tag={vid}", "--",
                "set", "interface", port, "type=internal")
            bed(bed1, "exec", host, "--", "ip", "addr", "add", f"{ip}/24", "dev", port)
            bed(bed1, "exec", host, "--", "ip", "link", "set", port, "up")
        bed(bed1, "exec", "host1", "--", "ping", "-c2", "-W1", "10.99.0.2")
        # VLAN 300 on host1 does not reach VLAN 200 on host2: the tags cross unchanged
        assert bed(bed1, "exec", "host1", "--", "ping", "-c2", "-W1", "10.98.0.2",
                   check=False).returncode != 0
    finally:
        for host in ("host1", "host2"):
            bed(bed1, "exec", host, "--", "ovs-vsctl", "--if-exists", "del-br", "brt",
                check=False)


def test_container_run_exec_stop(bed1: Path) -> None:
    from topologies.etcd import Etcd

    etcd = Etcd("http://127.0.0.1:25790")
    ns = f"{prefix_for(bed1)}-c-web1"
    out = bed(bed1, "run", "host1", "web1", "--id", "0123abcd").stdout
    assert "web1 running on host1" in out
    assert ns in namespaces(prefix_for(bed1))
    assert json.loads(etcd.get("/netplugin/runtime/host1/web1")) == {
        "netns": f"/run/netns/{ns}", "id": "0123abcd"}
    assert "lo" in bed(bed1, "exec", "web1", "--", "ip", "-br", "link").stdout
    assert bed(bed1, "exec", "web1", "--", "sh", "-c", "exit 3", check=False).returncode == 3
    st = json.loads(bed(bed1, "status", "--json").stdout)
    assert [(c["name"], c["host"], c["id"]) for c in st["containers"]] == [
        ("web1", "host1", "0123abcd")]
    dup = bed(bed1, "run", "host2", "web1", check=False)
    assert dup.returncode == 1 and "already runs on host1" in dup.stderr
    bad = bed(bed1, "run", "host9", "web2", check=False)
    assert bad.returncode == 1 and "no host 'host9'" in bad.stderr
    assert "web1 stopped" in bed(bed1, "stop", "web1").stdout
    assert etcd.get("/netplugin/runtime/host1/web1") is None
    assert ns not in namespaces(prefix_for(bed1))
    assert bed(bed1, "stop", "web1", check=False).returncode == 1


def test_up_refuses_a_second_time(bed1: Path) -> None:
    res = bed(bed1, "up", "--hosts", "a,b", "--no-controller", "--no-agent", *PORTS1,
              check=False)
    assert res.returncode == 1 and "already up" in res.stderr


def test_down_leaves_nothing_and_is_idempotent() -> None:
    bed(BED2, "down", check=False)
    bed(BED2, "up", "--hosts", "h1,h2,h3", "--no-controller", "--no-agent", *PORTS2)
    bed(BED2, "run", "h3", "box")
    pids = recorded_pids(BED2)
    assert len(pids) >= 8 and all(running(p) for p in pids)
    out = bed(BED2, "down").stdout
    assert "deleted namespace" in out
    assert_gone(BED2, pids)
    again = bed(BED2, "down")
    assert again.returncode == 0 and "nothing to do" in again.stdout


def test_down_cleans_up_after_a_crash() -> None:
    bed(BED2, "down", check=False)
    bed(BED2, "up", "--hosts", "h1,h2", "--no-controller", "--no-agent", *PORTS2)
    bed(BED2, "run", "h1", "box")
    state = json.loads((BED2 / "bed.json").read_text())
    pids = [p["pid"] for p in state["pids"]]
    for p in state["pids"]:
        if p["name"] in ("ovs-vswitchd:h1", "etcd"):
            os.kill(p["pid"], signal.SIGKILL)
    time.sleep(0.3)
    # a process left inside a namespace (not recorded) is stopped too
    subprocess.Popen(["ip", "netns", "exec", f"{prefix_for(BED2)}-h2", "sleep", "300"],
                     start_new_session=True)
    st = bed(BED2, "status").stdout
    assert "etcd:DOWN" in st and "ovs-vswitchd:DOWN" in st
    bed(BED2, "down")
    assert_gone(BED2, pids)


def test_two_test_beds_side_by_side(bed1: Path) -> None:
    bed(BED2, "down", check=False)
    assert prefix_for(BED1) != prefix_for(BED2)
    bed(BED2, "up", "--hosts", "host1,host2", "--no-controller", "--no-agent", *PORTS2)
    try:
        pids2 = recorded_pids(BED2)
        vtep = json.loads(bed(BED2, "status", "--json").stdout)["hosts"][1]["vtep_ip"]
        bed(BED2, "exec", "host1", "--", "ping", "-c1", "-W1", vtep)
        bed(BED2, "run", "host1", "same-name")
        bed(bed1, "run", "host1", "same-name")
        bed(BED2, "down")
        assert_gone(BED2, pids2)
        # bed1 untouched
        assert all(running(p) for p in recorded_pids(bed1))
        assert bed(bed1, "exec", "same-name", "--", "true").returncode == 0
        bed(bed1, "exec", "host1", "--", "ping", "-c1", "-W1", "192.168.2.11")
    finally:
        bed(BED2, "down", check=False)
        bed(bed1, "stop", "same-name", check=False)
