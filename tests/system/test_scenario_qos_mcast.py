"""QoS and multicast on the real test bed (real OVS, etcd, controller, agents).

QoS: iperf3 from a container limited to 10 Mbit/s measures within 20 % of it while an unlimited
neighbour is not limited; raising the profile to 20 Mbit/s takes effect on the running stream;
DSCP 46 is seen at the receiver and on the VXLAN underlay's inner header; removing the profile
removes the meter.  Multicast (snooping on): datagrams reach exactly the receivers, each once;
a host without receivers gets no VXLAN packet for the group; IGMP joins and leaves of a real
socket; a membership nobody refreshes expires after 2Q + 10 s (Q = 5 s here), one that is
refreshed stays at the same revision (a lease keepalive).
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from intent import keys
from intent.store_etcd import open_store
from tests.system.scenario_bed import ROOT, ScenarioBed, example, needs_bed
from tests.system.waiting import wait_for

pytestmark = needs_bed
Q = 5  # seconds between IGMP queries on this bed
GROUP, PORT, COUNT = "239.1.1.1", 5000, 20


@pytest.fixture(scope="module")
def bed():
    os.environ["NETPLUGIN_IGMP_QUERY_INTERVAL"] = str(Q)
    b = ScenarioBed(Path("/tmp/qosmcast-bed"), 27796, 27803, 27813)
    try:
        b.up()
        yield b
    finally:
        b.down()
        os.environ.pop("NETPLUGIN_IGMP_QUERY_INTERVAL", None)


@pytest.fixture(autouse=True)
def fresh(bed):
    yield
    bed.stop_all()


def intent(receivers: list[str], gold: int = 10) -> dict:
    """The bed's intent; ``gold`` in Mbit/s (burst: a fifth of a second of it)."""
    return {"Hosts": example("two_hosts_vxlan.json")["Hosts"], "Tenants": [{
        "Name": "media", "DefaultNetType": "vxlan", "SubnetPool": "11.7.0.0/16",
        "AllocSubnetLen": 24, "Vxlans": "30001-30100",
        "QosProfiles": [{"Name": "gold", "Bandwidth": f"{gold}mbps", "Burst": gold * 200,
                         "Dscp": 46}],
        "Networks": [{"Name": "tv", "Multicast": {"Snooping": True, "Groups": [
            {"Address": GROUP, "Receivers": receivers}]}, "Endpoints": [
            {"Container": "s1", "Host": "host1", "QosProfile": "gold"},
            {"Container": "r1", "Host": "host1"},
            {"Container": "n1", "Host": "host1"},
            {"Container": "r2", "Host": "host2"},
            {"Container": "n2", "Host": "host2"}]}]}]}


def start(bed: ScenarioBed, doc: dict, names=("s1", "r1", "n1", "r2", "n2")) -> None:
    bed.apply(doc)
    for n in names:
        bed.run("host1" if n.endswith("1") else "host2", n)
    for n in names:
        bed.wait_ip(n)
    assert bed.reaches("s1", bed.ip("r2"))  # the path is up before anything is counted


def tool(bed: ScenarioBed, name: str, *args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "topologies", "--workdir", str(bed.workdir),
                             "exec", name, "--", sys.executable, "-m",
                             "tests.system.mcast_tools", *args], cwd=ROOT, text=True, **kw)


def send(bed: ScenarioBed, count: int = COUNT) -> None:
    bed.sh("s1", sys.executable, "-m", "tests.system.mcast_tools", "send", GROUP, str(PORT),
           str(count), check=True)


def counted(lines: list[str]) -> int:
    return sum(1 for ln in lines if f"> {GROUP}.{PORT}: UDP" in ln)


def members(bed: ScenarioBed) -> dict[str, str]:
    return {k: v for k, v in bed.etcd_keys(keys.OPER_MCAST).items()}


# ---------------------------------------------------------------------------- multicast


def test_multicast_reaches_exactly_the_receivers_once(bed) -> None:
    start(bed, intent(["r1", "r2"]))
    names = ["s1", "r1", "n1", "r2", "n2"]
    with bed.capture("s1", "udp") as c_s1, bed.capture("r1", "udp") as c_r1, \
            bed.capture("n1", "udp") as c_n1, bed.capture("r2", "udp") as c_r2, \
            bed.capture("n2", "udp") as c_n2:
        send(bed)
    seen = dict(zip(names, (counted(c) for c in (c_s1, c_r1, c_n1, c_r2, c_n2)), strict=True))
    print("multicast packet counts", seen)
    assert seen == {"s1": COUNT, "r1": COUNT, "n1": 0, "r2": COUNT, "n2": 0}, seen


def test_a_host_without_receivers_gets_no_vxlan_packet_for_the_group(bed) -> None:
    start(bed, intent(["r1"]))
    with bed.capture("host2", "udp port 4789", iface="ul0") as underlay, \
            bed.capture("r1", "udp") as at_r1:
        send(bed)
        assert bed.reaches("s1", bed.ip("r2"))  # the capture sees VXLAN: this ping is in it
    print("vxlan packets to host2", len(underlay), "datagrams at r1", counted(at_r1))
    assert counted(at_r1) == COUNT
    assert any("ICMP echo" in ln for ln in underlay), underlay  # the capture works
    assert not [ln for ln in underlay if GROUP in ln], underlay


def test_igmp_join_and_leave_with_a_real_socket(bed) -> None:
    start(bed, intent(["r1"]))
    key = keys.mcast_member("tv", GROUP, "tv-n2")
    receiver = tool(bed, "n2", "join", GROUP, str(PORT), "6", stdout=subprocess.PIPE)
    try:
        wait_for(lambda: key in members(bed), 20, "n2's learned membership")
        time.sleep(1)  # the controller's change reaches host1's group
        with bed.capture("r1", "udp") as at_r1:
            send(bed)
        out, _ = receiver.communicate(timeout=20)
    finally:
        receiver.kill()
    got = [ln for ln in out.splitlines() if ln.startswith("datagram")]
    assert counted(at_r1) == COUNT and len(got) == COUNT, (counted(at_r1), out)
    wait_for(lambda: key not in members(bed), 20, "the leave to remove the membership")
    with bed.capture("n2", "udp") as at_n2, bed.capture("r1", "udp") as at_r1:
        send(bed)
    assert counted(at_r1) == COUNT and counted(at_n2) == 0, (at_r1, at_n2)


def test_a_membership_nobody_refreshes_expires_and_a_refreshed_one_stays(bed) -> None:
    start(bed, intent([]), names=("s1", "r1", "n1", "r2", "n2"))
    silent = keys.mcast_member("tv", GROUP, "tv-n1")
    kept = keys.mcast_member("tv", GROUP, "tv-r2")
    receiver = tool(bed, "r2", "join", GROUP, str(PORT), str(2 * Q + 10 + 12),
                    stdout=subprocess.DEVNULL)
    try:
        bed.sh("n1", sys.executable, "-m", "tests.system.mcast_tools", "report", GROUP,
               check=True)
        wait_for(lambda: {silent, kept} <= set(members(bed)), 20, "both memberships")
        learned_at = time.monotonic()
        store = open_store(bed.etcd)
        first = store.get(kept).mod_revision
        wait_for(lambda: silent not in members(bed), 2 * Q + 10 + 10,
                 "the silent membership to expire")
        lived = time.monotonic() - learned_at
        print(f"silent membership lived {lived:.1f} s (2Q + 10 = {2 * Q + 10} s)")
        assert lived >= 2 * Q + 10 - 3, lived
        assert kept in members(bed)  # refreshed by r2's answers to the queries
        assert store.get(kept).mod_revision == first  # refreshes were keepalives
    finally:
        receiver.kill()


# ---------------------------------------------------------------------------- QoS


def iperf(bed: ScenarioBed, client: str, server_ip: str, seconds: int = 5,
          change=None) -> list[float]:
    """Mbit/s per second of an iperf3 TCP stream from ``client``."""
    p = subprocess.Popen([sys.executable, "-m", "topologies", "--workdir", str(bed.workdir),
                          "exec", client, "--", "iperf3", "-c", server_ip, "-t", str(seconds),
                          "-J"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    if change is not None:
        time.sleep(3)
        change()
    out, _ = p.communicate(timeout=seconds + 30)
    data = json.loads(out)
    return [i["sum"]["bits_per_second"] / 1e6 for i in data["intervals"]]


def test_meter_limits_dscp_marks_and_profile_changes_apply(bed) -> None:
    start(bed, intent(["r1"]), names=("s1", "n1", "r2"))
    server = subprocess.Popen([sys.executable, "-m", "topologies", "--workdir",
                               str(bed.workdir), "exec", "r2", "--", "iperf3", "-s"], cwd=ROOT,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        r2 = bed.ip("r2")
        wait_for(lambda: bed.sh("n1", "iperf3", "-c", r2, "-t", "1").returncode == 0, 20,
                 "iperf3 server")
        limited = iperf(bed, "s1", r2)
        free = iperf(bed, "n1", r2)
        mean = sum(limited[1:]) / len(limited[1:])
        print(f"iperf3 limited {mean:.2f} Mbit/s, unlimited {sum(free) / len(free):.1f}")
        assert 8.0 <= mean <= 12.0, limited
        assert min(free) > 30, free
        assert any("tos 0xb8" in ln for ln in _verbose(bed, "r2", r2)), "DSCP 46 not seen"
        assert any("tos 0xb8" in ln for ln in _verbose(bed, "host2", r2, "ul0")), \
            "DSCP 46 not on the inner header"
        faster = copy.deepcopy(intent(["r1"], gold=20))
        changed = iperf(bed, "s1", r2, seconds=9, change=lambda: bed.apply(faster))
        before, after = sum(changed[1:3]) / 2, sum(changed[-4:]) / 4
        print(f"iperf3 while changing to 20 Mbit/s: {before:.2f} before, {after:.2f} after",
              [round(x, 1) for x in changed])
        assert before < 12.5 and 16 <= after <= 24, changed
        meters = bed.sh("host1", "ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "br-int",
                        check=True).stdout
        assert "rate=20000" in meters, meters
        plain = intent(["r1"])
        del plain["Tenants"][0]["Networks"][0]["Endpoints"][0]["QosProfile"]
        bed.apply(plain)
        meters = bed.sh("host1", "ovs-ofctl", "-O", "OpenFlow13", "dump-meters", "br-int",
                        check=True).stdout
        assert "kbps" not in meters and re.search(r"meter=\d+ pktps", meters), meters
    finally:
        server.kill()


def _verbose(bed: ScenarioBed, where: str, dst_ip: str, iface: str = "eth0") -> list[str]:
    """``tcpdump -v`` lines of one ping from s1 to ``dst_ip`` as seen at ``where``."""
    p = subprocess.Popen([sys.executable, "-m", "topologies", "--workdir", str(bed.workdir),
                          "exec", where, "--", "tcpdump", "-i", iface, "-n", "-l", "-v", "-c",
                          "2", "icmp" if iface == "eth0" else "udp port 4789"],
                         cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1.0)
    bed.sh("s1", "ping", "-c2", "-i0.3", "-W1", dst_ip)
    try:
        out, _ = p.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
        out, _ = p.communicate()
    return out.splitlines()
