"""netplugin-cni called as the CNI reference tooling calls it (environment + stdin), on one
simulated host with its agent running."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from agent.plan import port_name
from intent import keys
from tests.system.agent_fixtures import REPO, Bed, links_in, require_root_ovs, sh, wait_for

pytestmark = pytest.mark.system
HOST = "npa-h2"
MAC = "02:00:0a:01:00:07"


@pytest.fixture(scope="module")
def bed():
    require_root_ovs()
    b = Bed(HOST, 24792).start()
    b.host.start_agent(b.url)
    wait_for(lambda: b.store.get(keys.oper_host(HOST)), what="agent registered")
    try:
        yield b
    finally:
        b.stop()


@pytest.fixture
def clean(bed):
    bed.network("blue")
    yield bed
    bed.reset()


def cni(bed, command: str, container=None, cid="cafe0123456789", netns=None, ifname="eth0",
        args=None, conf_extra=None) -> tuple[int, dict]:
    """Run the plugin inside the host's netns; returns (exit code, JSON output)."""
    conf = {"cniVersion": "1.0.0", "name": "np", "type": "netplugin-cni", "etcd": bed.url,
            "host": HOST, "ovsdb": bed.host.ovsdb, "timeout": 2, **(conf_extra or {})}
    env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "CNI_COMMAND": command}
    if cid:
        env["CNI_CONTAINERID"] = cid
    if netns:
        env["CNI_NETNS"] = netns
    if ifname and command != "DEL":
        env["CNI_IFNAME"] = ifname
    if args is not None or container:
        env["CNI_ARGS"] = args if args is not None else f"IgnoreUnknown=1;K8S_POD_NAME={container}"
    res = subprocess.run(["ip", "netns", "exec", HOST, sys.executable, "-m", "agent.cni"],
                         input=json.dumps(conf), env=env, capture_output=True, text=True,
                         cwd=REPO, timeout=30)
    return res.returncode, json.loads(res.stdout) if res.stdout.strip() else {}


def registry(bed, name):
    kv = bed.store.get(keys.runtime_container(HOST, name))
    return json.loads(kv.value) if kv else None


def test_version(bed):
    code, out = cni(bed, "VERSION", cid=None)
    assert code == 0 and "1.0.0" in out["supportedVersions"]


def test_add_check_del(clean):
    bed = clean
    eid = bed.endpoint("blue", "web", "10.1.0.7", MAC)
    c = bed.run("web", register=False)
    code, out = cni(bed, "ADD", "web", netns=c.netns)
    assert code == 0, out
    assert out["ips"] == [{"address": "10.1.0.7/24", "gateway": "10.1.0.1", "interface": 1}]
    assert out["interfaces"] == [{"name": port_name(eid)},
                                 {"name": "eth0", "mac": MAC, "sandbox": c.netns}]
    assert out["routes"] == [{"dst": "0.0.0.0/0", "gw": "10.1.0.1"}]
    assert registry(bed, "web") == {"netns": c.netns, "id": "cafe0123456789"}
    assert bed.oper(eid)["port_name"] == port_name(eid)
    assert "10.1.0.7/24" in c.ip("addr", "show", "eth0")
    assert cni(bed, "CHECK", "web", netns=c.netns)[0] == 0
    # a second ADD (retry) is idempotent: same result, still one interface
    assert cni(bed, "ADD", "web", netns=c.netns)[1] == out
    assert [x for x in links_in(c.name) if x != "lo"] == ["eth0"]
    # DEL from conmon's clean-up: trimmed environment, no CNI_ARGS, no netns
    code, out = cni(bed, "DEL", cid="cafe0123456789", args="")
    assert code == 0, out
    assert registry(bed, "web") is None and bed.oper(eid) is None
    assert bed.host.endpoint_ports() == {} and [x for x in links_in(c.name) if x != "lo"] == []
    bed.wait_reconciled()  # the agent has seen the registry entry go ...
    assert bed.host.endpoint_ports() == {}  # ... and does not plug it back
    assert cni(bed, "DEL", cid="cafe0123456789")[0] == 0  # DEL twice is fine


def test_add_by_configured_arg_and_container_id(clean):
    bed = clean
    bed.endpoint("blue", "cafe01234567", "10.1.0.8", MAC)
    c = bed.run("byid", register=False)
    code, out = cni(bed, "ADD", netns=c.netns)  # no CNI_ARGS: short container id matches
    assert code == 0, out
    assert registry(bed, "cafe01234567")["netns"] == c.netns


def test_add_of_an_infra_container_named_by_its_id_in_attach_uuid(clean):
    bed = clean
    cid = "9b1e" + "5" * 60
    eid = bed.endpoint("blue", "web", "10.1.0.9", MAC, attach_uuid=cid[:12])
    c = bed.run("infra", register=False)
    code, out = cni(bed, "ADD", "pod-x", cid=cid, netns=c.netns)
    assert code == 0, out
    assert out["ips"][0]["address"] == "10.1.0.9/24"
    assert registry(bed, "pod-x") == {"netns": c.netns, "id": cid}
    assert bed.oper(eid)["container"] == "pod-x" and "10.1.0.9/24" in c.ip("addr", "show", "eth0")
    assert cni(bed, "DEL", cid=cid, args="")[0] == 0
    assert bed.host.endpoint_ports() == {} and registry(bed, "pod-x") is None


def test_unknown_container_is_a_clear_error(clean):
    bed = clean
    c = bed.run("ghost", register=False)
    code, out = cni(bed, "ADD", "ghost", netns=c.netns)
    assert code == 1 and out["code"] == 100 and "ghost" in out["msg"]
    assert registry(bed, "ghost") is None


def test_unbound_endpoint_names_the_endpoint(clean):
    bed = clean
    bed.endpoint("blue", "later", "10.1.0.9", MAC, host=None)
    c = bed.run("later", register=False)
    code, out = cni(bed, "ADD", "later", netns=c.netns)
    assert out["code"] == 100 and "blue-later" in out["msg"] and "unbound" in out["msg"]


def test_vanished_netns(clean):
    bed = clean
    bed.endpoint("blue", "web", "10.1.0.7", MAC)
    code, out = cni(bed, "ADD", "web", netns="/run/netns/npa-gone")
    assert out["code"] == 3 and "/run/netns/npa-gone" in out["msg"]


def test_ip_in_use_leaves_nothing_behind(clean):
    bed = clean
    eid = bed.endpoint("blue", "web", "10.1.0.7", MAC)
    c = bed.run("web", register=False)
    sh("ip", "addr", "add", "10.1.0.7/32", "dev", "lo", ns=c.name)
    code, out = cni(bed, "ADD", "web", netns=c.netns)
    assert code == 1 and out["code"] == 101
    assert "10.1.0.7" in out["msg"] and "blue-web" in out["msg"] and "(interface lo)" in out["msg"]
    assert registry(bed, "web") is None and bed.oper(eid) is None
    assert bed.host.endpoint_ports() == {}
    assert links_in(c.name) == ["lo"]
    assert port_name(eid) not in links_in(HOST)


def test_ovsdb_down(clean):
    bed = clean
    eid = bed.endpoint("blue", "web", "10.1.0.7", MAC)
    c = bed.run("web", register=False)
    bed.host.stop_ovsdb()
    try:
        code, out = cni(bed, "ADD", "web", netns=c.netns)
        assert code == 1 and out["code"] == 11
        assert "OVSDB" in out["msg"] and "web" in out["msg"]
        assert registry(bed, "web") is None and bed.oper(eid) is None
        assert [x for x in links_in(c.name) if x != "lo"] == []
    finally:
        bed.host.start_ovsdb()


def test_add_and_del_on_a_network_whose_addresses_host_local_gives(clean):
    """The CNI plugin and the agent share the IPAM backend: ADD plugs the address the real
    host-local plugin hands out (recorded in the intent), DEL gives it back to the plugin."""
    import shutil

    from allocator.write import apply_config, delete_object
    from intent.loader import load_config
    from tests.system.agent_fixtures import WORK

    bed = clean
    data = WORK / "ipam15-cni-hostlocal"
    shutil.rmtree(data, ignore_errors=True)
    ipam = {"Type": "cni", "Plugin": "host-local", "Config": {"dataDir": str(data), "ranges": [[
        {"subnet": "10.9.0.0/24", "rangeStart": "10.9.0.50", "rangeEnd": "10.9.0.60"}]]}}
    apply_config(bed.store, load_config({"Hosts": [{"Name": HOST}], "Tenants": [{
        "Name": "tc", "DefaultNetType": "vxlan", "Vxlans": "300-310", "Networks": [{
            "Name": "dlg", "SubnetCIDR": "10.9.0.0/24", "Ipam": ipam,
            "Endpoints": [{"Container": "dweb", "Host": HOST}]}]}]}), "add")
    try:
        c = bed.run("dweb", register=False)
        code, out = cni(bed, "ADD", "dweb", netns=c.netns)
        assert code == 0, out
        assert out["ips"] == [{"address": "10.9.0.50/24", "gateway": "10.9.0.1", "interface": 1}]
        assert "10.9.0.50/24" in c.ip("addr", "show", "eth0")
        assert (data / "dlg" / "10.9.0.50").read_text().startswith("dlg-dweb")
        spec = json.loads(bed.store.get(keys.state_endpoint("dlg-dweb")).value)
        assert (spec["ip"], spec["mac"]) == ("10.9.0.50", "02:00:0a:09:00:32")
        code, out = cni(bed, "DEL", cid="cafe0123456789", args="")  # trimmed env: no CNI_PATH
        assert code == 0, out
        assert not (data / "dlg" / "10.9.0.50").exists()
        assert json.loads(bed.store.get(keys.state_endpoint("dlg-dweb")).value)["ip"] == ""
        assert bed.store.list(keys.oper_ipam_prefix(HOST)) == []
    finally:
        delete_object(bed.store, "tenant", "tc")
        shutil.rmtree(data, ignore_errors=True)
