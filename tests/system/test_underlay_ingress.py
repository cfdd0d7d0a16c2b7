"""Underlay ingress on the real test bed (issue 11 item 8): VXLAN is accepted only from the
VTEPs of hosts that send the VNI.

Crafted VXLAN packets (tests/system/nettools.py ``vxlan``) carry a UDP datagram to a container.
From host2's own VTEP address it arrives (the control: the packet is well formed and the real
underlay source is the registered VTEP); from an underlay address that is no VTEP, or from a
VTEP whose host has no endpoint of that VNI, it is dropped: the switch's table-0 miss counts it
(the proof the switch saw it), a later legitimate packet arrives, and the crafted one never does.
"""

from __future__ import annotations

import json
import re
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.scenario_bed import ScenarioBed, bed_fixtures, needs_bed

pytestmark = needs_bed

bed, fresh = bed_fixtures(Path("/tmp/np-underlay"), 27870, 27872, 27874)
STRANGER = "192.168.2.250"  # in the VTEP subnet, on the underlay bridge, no host's VTEP
PORT = 7777

INTENT = {
    "Hosts": [{"Name": "host1", "Intf": "eth2", "VtepIp": "192.168.2.10"},
              {"Name": "host2", "Intf": "eth2", "VtepIp": "192.168.2.11"}],
    "Tenants": [{"Name": "t", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
                 "AllocSubnetLen": 24, "Vxlans": "10001-14000", "Networks": [
                     {"Name": "orange", "Endpoints": [{"Container": "c1", "Host": "host1"},
                                                      {"Container": "c2", "Host": "host2"}]},
                     {"Name": "lone", "Endpoints": [{"Container": "c3", "Host": "host1"}]}]}]}


def vni(bed: ScenarioBed, network: str) -> int:
    res = bed.netdcli("-oper", "get", "-construct", "network", network)
    return int(json.loads(res.stdout)["Vni"])


def table0_misses(bed: ScenarioBed, host: str) -> int:
    out = bed.sh(host, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br-int", "table=0",
                 check=True).stdout
    miss = [ln for ln in out.splitlines() if re.search(r"\bpriority=0\b", ln)]
    assert len(miss) == 1, out
    return int(re.search(r"n_packets=(\d+)", miss[0]).group(1))


def send(bed: ScenarioBed, where: str, vni_: int, mac: str, ip: str, text: str) -> None:
    bed.sh(where, sys.executable, "-m", "tests.system.nettools", "vxlan", "192.168.2.10",
           str(vni_), mac, ip, str(PORT), text, check=True)


def legit_arrives(bed: ScenarioBed, target: str, rounds: int = 5) -> bool:
    """Legitimate packets from host2's VTEP reach ``target`` (a few capture rounds: lines
    are read when a capture ends)."""
    bed.sh("host2", "ping", "-c1", "-W2", "192.168.2.10")  # the sender's neighbour entry
    mac, ip = bed.mac(target), bed.ip(target)
    for _ in range(rounds):
        with bed.capture(target, f"udp port {PORT}") as lines:
            for _ in range(3):
                send(bed, "host2", vni(bed, "orange"), mac, ip, LEGIT)
                time.sleep(0.3)
        if arrived(lines, LEGIT):
            return True
    return False


@pytest.fixture
def stranger(bed: ScenarioBed) -> Iterator[str]:
    """An address on the underlay bridge that no host registered as its VTEP."""
    bed.sh("underlay", "ip", "addr", "add", f"{STRANGER}/24", "dev", "vx", check=True)
    try:
        yield STRANGER
    finally:
        bed.sh("underlay", "ip", "addr", "del", f"{STRANGER}/24", "dev", "vx")


CRAFTED, LEGIT = "x" * 30, "y" * 20  # tcpdump shows them as "length 30" / "length 20"


def arrived(lines: list[str], text: str) -> bool:
    return any(f"length {len(text)}" in ln for ln in lines)


def refused(bed: ScenarioBed, where: str, vni_: int, target: str,
            then_legit: bool = True) -> None:
    """Send a crafted packet to ``target`` (on host1) from ``where`` until host1's switch
    counts it as a table-0 miss (dropped); it never reaches ``target``.  With ``then_legit``,
    legitimate packets from host2's VTEP then arrive (the path delivers what it should)."""
    mac, ip = bed.mac(target), bed.ip(target)
    with bed.capture(target, f"udp port {PORT}") as lines:
        before = table0_misses(bed, "host1")
        deadline = time.monotonic() + 10
        while table0_misses(bed, "host1") == before:
            assert time.monotonic() < deadline, f"host1 never saw the packet from {where}"
            send(bed, where, vni_, mac, ip, CRAFTED)
    assert not arrived(lines, CRAFTED), lines
    if then_legit:
        assert legit_arrives(bed, target), "the legitimate packets never arrived"


def test_vxlan_from_a_registered_vtep_arrives(bed: ScenarioBed) -> None:
    bed.apply(INTENT)
    bed.run("host1", "c1")
    bed.run("host2", "c2")
    bed.assert_reach("c2", "c1")  # real tunnels pass the filter
    assert legit_arrives(bed, "c1"), "a crafted packet from host2's VTEP did not arrive"


def test_vxlan_from_an_underlay_address_that_is_no_vtep_is_dropped(bed: ScenarioBed,
                                                                     stranger: str) -> None:
    bed.apply(INTENT)
    bed.run("host1", "c1")
    bed.run("host2", "c2")
    refused(bed, "underlay", vni(bed, "orange"), "c1")


def test_vxlan_for_a_vni_the_sending_host_does_not_have_is_dropped(bed: ScenarioBed) -> None:
    bed.apply(INTENT)
    bed.run("host1", "c1")
    bed.run("host1", "c3")
    bed.run("host2", "c2")
    # host2 has no endpoint of "lone": its VTEP may not send lone's VNI to host1
    refused(bed, "host2", vni(bed, "lone"), "c3", then_legit=False)
