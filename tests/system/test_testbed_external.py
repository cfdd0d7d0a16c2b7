"""Physical machines on the test bed's VLAN trunk (``run-external``), without controller or agent.

A machine is a plain namespace whose interfaces are access ports: it sends untagged, the trunk
carries its VLAN's tag.  Checked against a tagged port on a host (a scratch OVS bridge on the
host's uplink, as br-int will tag): same VLAN reaches, another VLAN with the same subnet and a
pinned neighbour MAC does not (the frames are seen on the trunk, tagged with the other VLAN, so
only tagging stops them); a two-legged machine routes between its VLANs; ``status``, ``exec``,
``stop`` and ``down`` know machines.
"""

from __future__ import annotations

import json
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.conftest import free_port
from tests.system.scenario_bed import ScenarioBed
from tests.system.test_testbed import assert_gone, bed, namespaces, recorded_pids
from topologies.plan import prefix_for

pytestmark = [pytest.mark.system]
WORKDIR = Path(os.environ.get("NP_EXT_BED", "/tmp/np-bed-ext"))
HOST_PORT = ("host1", "eth2", 100, "10.97.0.1/24")  # a tagged port on host1 (VLAN 100)


@pytest.fixture(scope="module")
def ext_bed() -> Iterator[ScenarioBed]:
    b = ScenarioBed(WORKDIR, free_port(), free_port(), free_port())
    b.cli("down", check=False)
    b.cli("up", "--hosts", "host1,host2", "--no-controller", "--no-agent", *b.ports)
    host, uplink, vid, cidr = HOST_PORT
    b.sh(host, "ovs-vsctl", "add-br", "brt", "--", "set", "bridge", "brt",
         "datapath_type=netdev", "--", "add-port", "brt", uplink, "--", "add-port", "brt",
         "v100", f"tag={vid}", "--", "set", "interface", "v100", "type=internal", check=True)
    b.sh(host, "ip", "addr", "add", cidr, "dev", "v100", check=True)
    b.sh(host, "ip", "link", "set", "v100", "up", check=True)
    yield b
    b.down()


def machines(b: ScenarioBed) -> dict[str, dict]:
    return {x["name"]: x for x in b.status()["externals"]}


def test_machine_is_an_access_port_of_its_vlan(ext_bed: ScenarioBed) -> None:
    b = ext_bed
    out = b.cli("run-external", "m1", "--vlan", "100", "--ip", "10.97.0.5/24").stdout
    assert "m1 running on the VLAN trunk" in out and "eth0 10.97.0.5/24 vlan 100" in out
    try:
        assert b.reaches("m1", "10.97.0.1"), "m1 (VLAN 100) cannot reach host1's VLAN 100 port"
        assert b.reaches("host1", "10.97.0.5")
        m1 = machines(b)["m1"]
        assert m1["legs"] == [{"ifname": "eth0", "vlan": 100, "cidr": "10.97.0.5/24",
                               "mac": b.mac("m1"), "port": "xe0l0", "up": True}]
        assert "machine m1" in b.cli("status").stdout
        assert b.sh("m1", "sh", "-c", "exit 4").returncode == 4
        # an ordinary machine: no OVS of its own, nothing but its access interface
        links = b.sh("m1", "ip", "-br", "link", check=True).stdout.splitlines()
        assert [ln.split()[0].split("@")[0] for ln in links] == ["lo", "eth0"], links
    finally:
        b.cli("stop", "m1")
    assert f"{prefix_for(WORKDIR)}-x-m1" not in namespaces(prefix_for(WORKDIR))
    assert "xe0l0" not in b.sh("underlay", "ovs-vsctl", "list-ports", "access",
                               check=True).stdout
    assert b.cli("stop", "m1", check=False).returncode == 1


def test_machine_on_another_vlan_reaches_nothing(ext_bed: ScenarioBed) -> None:
    b = ext_bed
    b.cli("run-external", "m2", "--vlan", "200", "--ip", "10.97.0.6/24")
    try:
        host_mac = b.sh("host1", "cat", "/sys/class/net/v100/address", check=True).stdout.strip()
        m2_mac = b.mac("m2")
        b.sh("m2", "ip", "neigh", "replace", "10.97.0.1", "lladdr", host_mac, "dev", "eth0",
             "nud", "permanent", check=True)
        b.sh("host1", "ip", "neigh", "replace", "10.97.0.6", "lladdr", m2_mac, "dev", "v100",
             "nud", "permanent", check=True)
        with b.capture("underlay", f"vlan 200 and ether src {m2_mac}", "vl") as trunk, \
                b.capture("host1", f"ether src {m2_mac}", "v100") as seen:
            res = b.sh("m2", "ping", "-c2", "-i0.3", "-W1", "10.97.0.1")
        assert "2 packets transmitted" in res.stdout, res.stdout + res.stderr
        assert len([ln for ln in trunk if "vlan 200" in ln]) >= 2, \
            f"m2's frames did not cross the trunk tagged 200: {trunk}"
        assert res.returncode != 0 and seen == [], f"VLAN 200 reaches VLAN 100: {seen}"
    finally:
        b.sh("host1", "ip", "neigh", "del", "10.97.0.6", "dev", "v100")
        b.cli("stop", "m2")


def test_two_legged_machine_routes_between_its_vlans(ext_bed: ScenarioBed) -> None:
    b = ext_bed
    b.cli("run-external", "rt", "--vlan", "300", "--ip", "10.30.0.1/24", "--vlan", "400",
          "--ip", "10.40.0.1/24")
    b.cli("run-external", "left", "--vlan", "300", "--ip", "10.30.0.5/24", "--gateway",
          "10.30.0.1")
    b.cli("run-external", "right", "--vlan", "400", "--ip", "10.40.0.5/24", "--gateway",
          "10.40.0.1")
    try:
        rt = machines(b)["rt"]
        assert rt["forwarding"] and [leg["vlan"] for leg in rt["legs"]] == [300, 400]
        assert machines(b)["left"]["gateway"] == "10.30.0.1"
        res = b.sh("left", "ping", "-c1", "-W2", "10.40.0.5")
        assert res.returncode == 0 and "ttl=63" in res.stdout, res.stdout
        assert b.sh("rt", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "1"
        assert b.sh("left", "sysctl", "-n", "net.ipv4.ip_forward").stdout.strip() == "0"
    finally:
        for name in ("rt", "left", "right"):
            b.cli("stop", name, check=False)


def test_access_switch_restarts_after_a_kill(ext_bed: ScenarioBed) -> None:
    b = ext_bed
    b.cli("run-external", "m5", "--vlan", "100", "--ip", "10.97.0.9/24")
    try:
        assert b.reaches("m5", "10.97.0.1")
        rec = next(p for p in json.loads((WORKDIR / "bed.json").read_text())["pids"]
                   if p["name"] == "ovs-vswitchd:underlay")
        os.kill(rec["pid"], signal.SIGKILL)
        assert "ovs-vswitchd:underlay:DOWN" in b.cli("status").stdout
        res = b.cli("run-external", "m6", "--vlan", "100", "--ip", "10.97.0.10/24", check=False)
        assert res.returncode == 1 and "restart ovs-vswitchd:underlay" in res.stderr, res.stderr
        assert "restarted ovs-vswitchd:underlay" in b.cli("restart", "ovs-vswitchd:underlay").stdout
        assert b.reaches("m5", "10.97.0.1"), "m5 cut off after the access switch restarted"
    finally:
        b.cli("stop", "m5", check=False)


def test_bad_arguments_and_name_clashes_are_refused(ext_bed: ScenarioBed) -> None:
    b = ext_bed
    res = b.cli("run-external", "m3", "--vlan", "100", "--ip", "10.1.0.5/24", "--vlan", "200",
                check=False)
    assert res.returncode != 0 and "in pairs" in res.stderr, res.stderr
    res = b.cli("run-external", "host2", "--vlan", "100", "--ip", "10.1.0.5/24", check=False)
    assert res.returncode == 1 and "is a host name" in res.stderr
    b.cli("run", "host1", "box")
    try:
        res = b.cli("run-external", "box", "--vlan", "100", "--ip", "10.1.0.5/24", check=False)
        assert res.returncode == 1 and "already runs (a container)" in res.stderr
    finally:
        b.cli("stop", "box")
    assert "Traceback" not in res.stderr


def test_down_removes_machines_and_the_access_switch(ext_bed: ScenarioBed) -> None:
    b = ext_bed
    b.cli("run-external", "m4", "--vlan", "100", "--ip", "10.97.0.8/24")
    state = json.loads((WORKDIR / "bed.json").read_text())
    names = {p["name"] for p in state["pids"]}
    assert {"ovsdb-server:underlay", "ovs-vswitchd:underlay"} <= names
    pids = recorded_pids(WORKDIR)
    b.cli("down")
    assert_gone(WORKDIR, pids)
    assert "nothing to do" in bed(WORKDIR, "down").stdout
