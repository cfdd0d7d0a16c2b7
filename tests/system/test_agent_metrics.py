"""The agent's ``--metrics-port``: plug latency and counts on a real host (OVS, etcd, netns).

The endpoint is served inside the host's namespace on its loopback (the default address), so
the test scrapes it from there.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.etcd_server import EtcdServer
from tests.system.agent_fixtures import Bed, OvsHost, require_root_ovs, wait_for
from tests.system.conftest import free_port

pytestmark = pytest.mark.system
HOST = "ops16h1"
WORK = Path("/tmp/ops16-agent")


@pytest.fixture(scope="module")
def bed():
    require_root_ovs()
    b = Bed(HOST, 0)
    port = free_port()
    b.etcd = EtcdServer(WORK / "etcd", port, free_port())
    b.host = OvsHost(HOST, WORK)
    b.start()
    b.metrics_port = free_port()
    b.host.start_agent(b.url, "--controller", "tcp:127.0.0.1:6653", "--metrics-port",
                       str(b.metrics_port))
    try:
        yield b
    finally:
        b.stop()


def scrape(bed, must: bool = True) -> dict[tuple, float] | None:
    """The agent's samples; None when it does not answer yet (``must``: fail instead)."""
    code = ("import sys, urllib.request; sys.stdout.write(urllib.request.urlopen("
            f"'http://127.0.0.1:{bed.metrics_port}/metrics', timeout=5).read().decode())")
    res = subprocess.run(["ip", "netns", "exec", HOST, sys.executable, "-c", code],
                         capture_output=True, text=True, timeout=30)
    if res.returncode != 0:
        assert not must, res.stderr
        return None
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(res.stdout) for s in fam.samples}


def value(samples: dict, name: str) -> float:
    return samples.get((name, (("host", HOST),)), 0.0)


def test_plug_latency_and_counts_move_when_a_container_is_plugged(bed):
    wait_for(lambda: bed.host.reconciled() >= 0, what="first reconcile")
    before = wait_for(lambda: scrape(bed, must=False), what="metrics endpoint up")
    assert value(before, "netplugin_agent_plug_seconds_count") == 0
    assert value(before, "netplugin_agent_plug_failures_total") == 0
    bed.network("blue")
    eid = bed.endpoint("blue", "ops16m1", "10.1.0.2", "02:00:0a:01:00:02")
    bed.run("ops16m1")
    wait_for(lambda: bed.oper(eid), what="plugged")
    after = wait_for(lambda: (s := scrape(bed)) and
                     value(s, "netplugin_agent_plug_seconds_count") == 1 and s,
                     what="plug counted")
    assert 0 < value(after, "netplugin_agent_plug_seconds_sum") < 30
    assert value(after, "netplugin_agent_reconciles_total") > \
        value(before, "netplugin_agent_reconciles_total")
    assert value(after, "netplugin_agent_plug_failures_total") == 0
    bed.remove_endpoint(eid)
    wait_for(lambda: value(scrape(bed), "netplugin_agent_unplugs_total") == 1,
             what="unplug counted")


def test_the_agent_prints_its_version():
    res = subprocess.run([sys.executable, "-m", "agent", "--version"], capture_output=True,
                         text=True, timeout=30)
    assert res.returncode == 0 and res.stdout.startswith("netplugin-agent (netplugin "), res
