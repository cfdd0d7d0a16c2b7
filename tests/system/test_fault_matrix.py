"""The fault matrix on a real test bed (one etcd member): kill -9 of the controller, an agent,
etcd, ovs-vswitchd and ovsdb-server, in steady state and during churn (>= 200 intent
operations), with a continuous ping between containers on two hosts and a final
``netdcli -audit``.  The etcd cluster rows (leader killed) are in test_cluster_bed.py.

Expected: no ping lost when the data plane did not die; ovs-vswitchd's flows back within 1 s
of its restart; afterwards every switch holds exactly its desired state, the store is
consistent (the audit passes) and every acknowledged write is there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.fault_bed import Churn, FaultBed, Pinger, row
from tests.system.scenario_bed import EXAMPLES

pytestmark = [pytest.mark.system]

WORKDIR = Path("/tmp/np-faults")
INTENT = "two_hosts_multiple_vxlan_nets.json"  # orange: myContainer1@host1, myContainer3@host2


# fault -> (recorded name, --host, does the data plane die with it?, seconds down)
FAULTS = {
    "controller": ("controller", None, False, 0.3),
    "agent": ("agent", "host1", False, 0.3),
    "etcd": ("etcd", None, False, 1.0),
    "ovs-vswitchd": ("ovs-vswitchd", "host1", True, 0.5),
    # the userspace datapath forwards in ovs-vswitchd's main loop, which pauses while it has no
    # database: packets wait (the ping's RTT shows it) until ovsdb-server is back and vswitchd
    # has reconnected, but none is lost when the outage is short
    "ovsdb-server": ("ovsdb-server", "host1", False, 0.5),
}


@pytest.fixture(scope="module")
def bed() -> Iterator[FaultBed]:
    b = FaultBed(WORKDIR, 28790, 28800, 28810)
    b.up(EXAMPLES / INTENT)
    try:
        b.apply(INTENT)
        b.run("host1", "myContainer1")
        b.run("host2", "myContainer3")
        yield b
    finally:
        b.down()


def netns_of(bed: FaultBed, container: str) -> str:
    return next(c["netns"] for c in bed.status()["containers"] if c["name"] == container)


def run_fault(bed: FaultBed, fault: str, phase: str, name: str, host: str | None,
              data_plane_dies: bool, down: float) -> None:
    """One row of the matrix (shared with the cluster bed's test)."""
    bed.apply(INTENT)  # the same starting point for every row (churn leftovers go)
    ok, _took, out = bed.audit_until_ok(timeout=20)
    assert ok, f"not consistent before the fault:\n{out}"
    pinger = Pinger(netns_of(bed, "myContainer1"), bed.ip("myContainer3"))
    assert pinger.first_reply.wait(10), "no ping reply before the fault"
    churn = None
    if phase == "churn":
        churn = Churn(bed)
        churn.start()
        deadline = time.monotonic() + 30
        while churn.acked < 60:  # writes are in flight when the fault strikes
            assert time.monotonic() < deadline, f"churn too slow: {churn.acked} {churn.errors}"
            time.sleep(0.02)
    else:
        time.sleep(1.0)
    full = f"{name}:{host}" if host else name
    bed.kill9(full)
    time.sleep(down)
    t_restart = time.monotonic()
    bed.restart(name, host)
    t_up = time.monotonic()  # the daemon runs again (the restart command returns once ready)
    note = f"restart {t_up - t_restart:.2f} s"
    if name == "ovs-vswitchd":
        while not bed.switch_matches(host):
            assert time.monotonic() - t_up < 10, "flows never came back"
            time.sleep(0.02)
        back = bed.started_ago(full)  # from the new process's start to its full tables
        note += f"; flows back {back:.2f} s after the new process started"
    if churn is not None:
        churn.wait()
        note += f"; {churn.acked} ops acknowledged, {churn.failed} refused/unanswered"
    ok, _took, out = bed.audit_until_ok()
    recovery = time.monotonic() - t_restart
    seen = len(pinger.seqs)
    deadline = time.monotonic() + 10
    while len(pinger.seqs) < seen + 25:  # the data plane answers after recovery
        assert time.monotonic() < deadline, "pings did not resume"
        time.sleep(0.02)
    ping = pinger.stop()
    row(fault, phase, ping, recovery, ok, note)
    assert ok, f"audit after {fault} ({phase}) failed:\n{out}"
    if churn is not None:
        assert churn.check() == []
    if not data_plane_dies:
        assert ping.lost == 0, f"{ping.lost} pings lost (longest gap {ping.longest_gap:.2f} s)"
    else:
        assert ping.longest_gap < down + 10, f"data plane down {ping.longest_gap:.2f} s"
    if name == "ovs-vswitchd" and phase == "steady":
        assert back < 1.0, f"flows back only {back:.2f} s after ovs-vswitchd started again"


@pytest.mark.parametrize("phase", ["steady", "churn"])
@pytest.mark.parametrize("fault", list(FAULTS))
def test_fault(bed: FaultBed, fault: str, phase: str) -> None:
    name, host, dies, down = FAULTS[fault]
    run_fault(bed, fault, phase, name, host, dies, down)
