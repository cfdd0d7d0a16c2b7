"""A test bed with a 3-member etcd cluster and TLS everywhere (``up --etcd-members 3 --tls``):

* TLS: plaintext clients of etcd, the REST API and OpenFlow are refused; clients with the bed's
  certificates work, the switches are connected over ``ssl:``, containers ping across hosts;
* the etcd leader killed in steady state and during churn through netdcli, REST and the write
  path itself (>= 200 operations): every acknowledged write is there, a write whose answer was
  lost is neither lost nor doubled, no address is allocated twice, the controller and the agents
  carry on with two members, realized revisions catch up (``netdcli -audit`` passes).
"""

from __future__ import annotations

import socket
import ssl
import struct
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.system.fault_bed import Churn, CountingStore, FaultBed, Pinger, row
from tests.system.scenario_bed import EXAMPLES
from tests.system.test_fault_matrix import INTENT, netns_of, run_fault

pytestmark = [pytest.mark.system]

WORKDIR = Path("/tmp/np-cluster-tls")


@pytest.fixture(scope="module")
def bed() -> Iterator[FaultBed]:
    b = FaultBed(WORKDIR, 28792, 28801, 28811, up_args=("--etcd-members", "3", "--tls"))
    b.up(EXAMPLES / INTENT)
    try:
        b.apply(INTENT)
        b.run("host1", "myContainer1")
        b.run("host2", "myContainer3")
        yield b
    finally:
        b.down()


def _refused(fn) -> str:
    """Call ``fn``; it must fail.  Returns the failure's text."""
    try:
        fn()
    except (OSError, ssl.SSLError) as exc:
        return f"{type(exc).__name__}: {exc}"
    raise AssertionError("a plaintext client was served")


def test_tls_everywhere_plaintext_refused(bed: FaultBed) -> None:
    log_path = bed.workdir / "logs" / "controller.log"
    log_start = log_path.stat().st_size
    member_ports = [int(u.rsplit(":", 1)[1]) for u in bed.etcd.split(",")]
    assert len(member_ports) == 3 and all(u.startswith("https://") for u in bed.etcd.split(","))
    plain_http = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    # etcd: plain HTTP is refused by every member; TLS without a client certificate too
    for port in member_ports:
        _refused(lambda p=port: plain_http.open(f"http://127.0.0.1:{p}/version", timeout=3))
    anonymous = ssl.create_default_context(cafile=bed.env["NETPLUGIN_ETCD_CA"])
    why = _refused(lambda: urllib.request.urlopen(
        f"https://127.0.0.1:{member_ports[0]}/version", timeout=3, context=anonymous))
    assert "certificate" in why.lower() or "alert" in why.lower(), why
    # ... and netdcli with the bed's certificate reads and writes
    assert bed.netdcli("-oper", "get", "-construct", "host", "host1").returncode == 0
    # REST: plain HTTP refused, HTTPS with the CA served
    rest_port = int(bed.rest.rsplit(":", 1)[1])
    assert bed.rest.startswith("https://")
    _refused(lambda: plain_http.open(f"http://127.0.0.1:{rest_port}/api/v1/hosts", timeout=3))
    hosts = bed.rest_get("/hosts")
    assert {h["name"] for h in hosts if h["connected"] and h["in_sync"]} == {"host1", "host2"}
    # OpenFlow: a plaintext OFPT_HELLO gets no hello back; a certificate from elsewhere fails
    ofp_port = int(bed.ports[bed.ports.index("--ofp-port") + 1])
    with socket.create_connection(("127.0.0.1", ofp_port), timeout=3) as s:
        s.sendall(struct.pack("!BBHI", 4, 0, 8, 1))  # OpenFlow 1.3 hello
        try:
            answer = s.recv(64)
        except OSError:
            answer = b""
    assert answer[:2] != b"\x04\x00", "the controller answered plaintext OpenFlow"
    from topologies.certs import Authority

    stranger = Authority(bed.workdir / "stranger-ca").issue("stranger")
    ctx = ssl.create_default_context(cafile=bed.env["NETPLUGIN_ETCD_CA"])
    ctx.load_cert_chain(str(stranger.cert), str(stranger.key))

    def stranger_hello() -> None:
        with socket.create_connection(("127.0.0.1", ofp_port), timeout=3) as raw, \
                ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(struct.pack("!BBHI", 4, 0, 8, 1))
            if not tls.recv(8):  # TLS 1.3: the refusal arrives after the handshake
                raise ConnectionResetError("closed by the controller")

    _refused(stranger_hello)
    log = log_path.read_text()[log_start:]
    assert "OpenFlow TLS handshake refused" in log and "REST: TLS connection from" in log
    assert "Traceback" not in log, log
    # the switches: connected over ssl:, and traffic crosses hosts
    for host in ("host1", "host2"):
        target = bed.sh(host, "ovs-vsctl", "get", "controller", "br-int", "target",
                        check=True).stdout.strip().strip('"')
        assert target.startswith("ssl:127.0.0.1:"), target
        deadline = time.monotonic() + 10  # OVS writes the column a moment after it connects
        while bed.sh(host, "ovs-vsctl", "get", "controller", "br-int", "is_connected",
                     check=True).stdout.strip() != "true":
            assert time.monotonic() < deadline, f"{host}'s switch is not connected"
            time.sleep(0.2)
    bed.assert_reach("myContainer1", "myContainer3")
    ok, _t, out = bed.audit_until_ok(timeout=20)
    assert ok, out


def test_leader_killed_steady(bed: FaultBed) -> None:
    run_fault(bed, "etcd cluster leader", "steady", bed.leader(), None, False, 1.0)


def test_leader_killed_during_churn_via_cli_rest_and_writer(bed: FaultBed) -> None:
    bed.apply(INTENT)
    ok, _t, out = bed.audit_until_ok(timeout=20)
    assert ok, out
    pinger = Pinger(netns_of(bed, "myContainer1"), bed.ip("myContainer3"))
    assert pinger.first_reply.wait(10)
    CountingStore.lost_answers = 0
    churn = Churn(bed, target=240, vias=("store", "store", "rest", "rest", "netdcli"))
    churn.start()
    deadline = time.monotonic() + 60
    while churn.acked < 80 or churn.by_via.get("netdcli", 0) < 2:
        assert time.monotonic() < deadline, f"churn too slow: {churn.by_via} {churn.errors}"
        time.sleep(0.02)
    leader = bed.leader()
    bed.kill9(leader)
    t_kill = time.monotonic()
    churn.wait()  # the cluster carries on with two members
    ok, _t, out = bed.audit_until_ok()
    recovery = time.monotonic() - t_kill
    assert ok, f"audit with two members failed:\n{out}"
    assert bed.leader() != leader
    bed.restart(leader)  # it rejoins and catches up
    ok, _t, out = bed.audit_until_ok(timeout=20)
    seen = len(pinger.seqs)
    while len(pinger.seqs) < seen + 25:
        time.sleep(0.02)
    ping = pinger.stop()
    row("etcd cluster leader", "churn", ping, recovery, ok,
        f"{churn.acked} ops acknowledged ({churn.by_via}), {churn.failed} unanswered, "
        f"{CountingStore.lost_answers} commit answers lost")
    assert ok, out
    assert churn.check() == []
    assert min(churn.by_via.get(v, 0) for v in ("store", "rest", "netdcli")) > 0
    assert ping.lost == 0, f"{ping.lost} pings lost"
    st = bed.status()
    down = [n for n, up in st["processes"].items() if not up] + \
        [f"{n}:{h['name']}" for h in st["hosts"] for n, up in h["processes"].items() if not up]
    assert down == [], f"not running after the leader's death: {down}"
