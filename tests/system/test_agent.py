"""The agent on one simulated host (own ovsdb-server + ovs-vswitchd in a netns) with real etcd."""

from __future__ import annotations

import json
import re
import signal
import time

import pytest

from agent.plan import port_name
from intent import keys
from tests.system.agent_fixtures import Bed, links_in, require_root_ovs, sh, wait_for

pytestmark = pytest.mark.system
MAC1, MAC2, MAC3 = "02:00:0a:01:00:02", "02:00:0a:01:00:03", "02:00:0a:02:00:02"
OVSDB_DOWN = re.compile(r"not reachable|cannot reach OVSDB")
CID_A = "5ec0a1d2b3c4" + "a" * 52  # container ids as Docker and podman make them
CID_B = "5ec0a1d2b3c4" + "b" * 52  # same 12-digit short id as CID_A


@pytest.fixture(scope="module")
def bed():
    require_root_ovs()
    b = Bed("npa-h1", 24790).start()
    b.host.start_agent(b.url, "--controller", "tcp:127.0.0.1:6653")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def clean(bed):
    yield bed
    if bed.host.procs.get("agent") is None or bed.host.procs["agent"].poll() is not None:
        bed.host.start_agent(bed.url, "--controller", "tcp:127.0.0.1:6653")
    bed.reset()


def iface_col(bed, name, col):
    return bed.host.vsctl("get", "Interface", name, col).strip('"')


def test_host_setup_and_registration(bed):
    reg = wait_for(lambda: bed.store.get(keys.oper_host("npa-h1")), what="registration")
    reg = json.loads(reg.value)
    h = bed.host
    assert h.vsctl("get", "Bridge", "br-int", "fail_mode") == "secure"
    assert h.vsctl("get", "Bridge", "br-int", "datapath_type") == "netdev"
    assert h.vsctl("get", "Bridge", "br-int", "protocols") == "[OpenFlow13]"
    assert h.vsctl("get-controller", "br-int") == "tcp:127.0.0.1:6653"
    # a restarted controller gets its switch back within a second, not after OVS's 8 s backoff
    assert h.vsctl("--columns=max_backoff", "--bare", "list", "Controller") == "1000"
    assert iface_col(bed, "vxlan0", "options") == '{key=flow, remote_ip=flow}'
    dpid = int(h.vsctl("get", "Bridge", "br-int", "datapath_id").strip('"'), 16)
    assert reg["dpid"] == dpid and reg["name"] == "npa-h1"
    assert reg["vxlan_ofport"] == int(iface_col(bed, "vxlan0", "ofport"))
    kv = bed.store.get(keys.oper_host("npa-h1"))
    assert kv.lease != 0  # kept under a lease


def test_container_after_intent_is_plugged_with_full_plumbing(clean):
    bed = clean
    bed.network("blue")
    eid = bed.endpoint("blue", "c1", "10.1.0.2", MAC1)
    bed.wait_reconciled()  # the agent has seen the endpoint ...
    assert bed.oper(eid) is None  # ... and, c1 not running yet, plugged nothing
    assert bed.host.endpoint_ports() == {}
    c = bed.run("c1")
    oper = wait_for(lambda: bed.oper(eid), what="plugged")
    port = port_name(eid)
    assert oper == {"host": "npa-h1", "ofport": int(iface_col(bed, port, "ofport")),
                    "port_name": port, "container": "c1", "netns": c.netns}
    assert iface_col(bed, port, "external_ids:endpoint-id") == eid
    assert bed.host.vsctl("port-to-br", port) == "br-int"
    link = json.loads(sh("ip", "-j", "addr", "show", "eth0", ns=c.name))[0]
    assert (link["address"], link["mtu"], link["operstate"]) == (MAC1, 1450, "UP")
    assert [(a["local"], a["prefixlen"]) for a in link["addr_info"] if a["family"] == "inet"] \
        == [("10.1.0.2", 24)]
    assert "default via 10.1.0.1 dev eth0" in c.ip("route")
    assert "tx-checksumming: off" in sh("ethtool", "-k", "eth0", ns=c.name)


def test_intent_added_while_running_second_network_and_unplug(clean):
    bed = clean
    bed.network("blue")
    bed.network("red", net_type="vlan", subnet="10.2.0.0/16", gateway=None, tag=10)
    c = bed.run("c1")
    e1 = bed.endpoint("blue", "c1", "10.1.0.2", MAC1)
    wait_for(lambda: bed.oper(e1), what="blue plugged")
    e2 = bed.endpoint("red", "c1", "10.2.0.2", MAC3)
    wait_for(lambda: bed.oper(e2), what="red plugged")
    assert sorted(n for n in links_in(c.name) if n != "lo") == ["eth0", "eth1"]
    assert json.loads(sh("ip", "-j", "link", "show", "eth1", ns=c.name))[0]["mtu"] == 1500
    bed.remove_endpoint(e1)
    wait_for(lambda: bed.oper(e1) is None, what="blue unplugged")
    assert set(bed.host.endpoint_ports()) == {e2}
    assert sorted(n for n in links_in(c.name) if n != "lo") == ["eth1"]
    assert port_name(e1) not in links_in("npa-h1")


def test_attach_uuid_and_late_binding(clean):
    bed = clean
    bed.network("blue")
    pause = bed.run("pause")
    eid = bed.endpoint("blue", "app", "10.1.0.5", MAC2, host=None, attach_uuid="pause")
    bed.wait_reconciled()  # seen with pause running ...
    assert bed.oper(eid) is None  # ... but not bound to a host yet: not plugged
    assert links_in(pause.name) == ["lo"]
    bed.endpoint("blue", "app", "10.1.0.5", MAC2, attach_uuid="pause")  # binding arrives
    oper = wait_for(lambda: bed.oper(eid), what="plugged into the pause netns")
    assert oper["netns"] == pause.netns and oper["container"] == "pause"
    assert "10.1.0.5/24" in pause.ip("addr", "show", "eth0")


def test_attach_uuid_names_the_infra_container_by_its_id(clean):
    bed = clean
    bed.network("blue")
    infra = bed.run("pod-a", cid=CID_A)
    eid = bed.endpoint("blue", "web", "10.1.0.5", MAC2, attach_uuid=CID_A[:12])  # short id
    oper = wait_for(lambda: bed.oper(eid), what="plugged into pod-a, named by its short id")
    assert oper["netns"] == infra.netns and oper["container"] == "pod-a"
    assert "10.1.0.5/24" in infra.ip("addr", "show", "eth0")
    # a second container with the same short id: the reference is ambiguous now
    other = bed.run("pod-b", cid=CID_B)
    rev = bed.revision()
    wait_for(lambda: re.search(rf"{eid}: AttachUUID {CID_A[:12]} is ambiguous.*pod-a.*pod-b",
                               bed.host.agent_log()), what="the ambiguity reported")
    bed.wait_reconciled(rev)
    assert bed.host.endpoint_ports() == {eid: port_name(eid)}  # kept where it was, not moved
    assert bed.oper(eid)["container"] == "pod-a" and links_in(other.name) == ["lo"]
    # the full id is unique again: a second endpoint by pod-b's full id goes into pod-b
    e2 = bed.endpoint("blue", "db", "10.1.0.6", MAC1, attach_uuid=CID_B)
    oper = wait_for(lambda: bed.oper(e2), what="plugged into pod-b, named by its full id")
    assert oper["netns"] == other.netns and "10.1.0.6/24" in other.ip("addr", "show", "eth0")


def test_container_gone_removes_its_ports(clean):
    bed = clean
    bed.network("blue")
    bed.run("c1")
    eid = bed.endpoint("blue", "c1", "10.1.0.2", MAC1)
    wait_for(lambda: bed.oper(eid), what="plugged")
    bed.kill("c1", unregister=False)  # netns vanishes first, registry entry still there
    wait_for(lambda: not bed.host.endpoint_ports(), what="port removed after netns vanished")
    # the agent deletes the port, then the oper key: both must go
    wait_for(lambda: bed.oper(eid) is None, what="oper state removed after netns vanished")
    bed.run("c1")  # restarted with a new netns: plugged again
    wait_for(lambda: bed.oper(eid), what="plugged again")
    assert "10.1.0.2/24" in bed.containers["c1"].ip("addr", "show", "eth0")


def test_kill_9_mid_plug_converges(clean):
    bed = clean
    bed.network("blue")
    n = 8
    eids = [bed.endpoint("blue", f"k{i}", f"10.1.0.{10 + i}", f"02:00:0a:01:00:{10 + i:02x}")
            for i in range(n)]
    bed.host.stop_agent()
    for i in range(n):
        bed.run(f"k{i}")
    for delay in (0.15, 0.35, 0.6):
        proc = bed.host.start_agent(bed.url)
        deadline = time.monotonic() + 15
        while len(bed.host.endpoint_ports()) == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        bed.host.procs.pop("agent")
    # a crashed plug may leave a veth without an OVS port; simulate the worst case too
    sh("ip", "link", "add", port_name("blue-k0"), "type", "veth", "peer", "name", "npa-junk",
       ns="npa-h1", check=False)
    bed.host.start_agent(bed.url)
    wait_for(lambda: all(bed.oper(e) for e in eids), timeout=30, what="all plugged")
    ports = bed.host.endpoint_ports()
    assert sorted(ports) == sorted(eids)
    host_links = [x for x in links_in("npa-h1") if x.startswith("np") or x == "npa-junk"]
    assert sorted(host_links) == sorted(port_name(e) for e in eids)
    for i in range(n):
        assert [x for x in links_in(f"npa-k{i}") if x != "lo"] == ["eth0"]
    assert len(bed.host.vsctl("list-ports", "br-int").split()) == n + 1  # + vxlan0


def test_ovsdb_down_then_back(clean):
    bed = clean
    bed.network("blue")
    bed.host.stop_ovsdb()
    bed.run("c1")
    eid = bed.endpoint("blue", "c1", "10.1.0.2", MAC1)
    # the agent tried again after the write, and said why it could not plug
    seen = len(bed.host.agent_log())
    wait_for(lambda: OVSDB_DOWN.search(bed.host.agent_log()[seen:]), timeout=10,
             what="the agent's next attempt to reach OVSDB")
    assert bed.oper(eid) is None
    assert [x for x in links_in("npa-c1") if x != "lo"] == []  # nothing half-plugged
    bed.host.start_ovsdb()
    wait_for(lambda: bed.oper(eid), timeout=20, what="plugged after OVSDB came back")
