"""The Docker driver's protocol handlers against the in-memory store and a fake plumbing, driven
in the order a real dockerd 20.10 calls them (recorded from one)."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import replace

import pytest

from agent import docker_state
from agent import plan as P
from agent.docker_api import DockerEndpoint, DockerView
from agent.docker_driver import DockerPort, Driver, PortRequest, port_names
from agent.docker_reconcile import reconcile
from allocator.write import apply_config
from intent import keys
from intent.loader import load_config
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore
from netdcli.show import show_endpoint

H1, H2 = "host1", "host2"
DOC = {
    "Hosts": [{"Name": H1}, {"Name": H2}],
    "Tenants": [
        {"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
         "AllocSubnetLen": 24, "Vxlans": "10001-10100", "Vlans": "100-110",
         "Networks": [{"Name": "orange"},
                      {"Name": "fixed", "SubnetCIDR": "11.2.0.0/24",
                       "Endpoints": [{"Container": "tb", "Host": H2}]}]},
        {"Name": "t2", "SubnetPool": "12.1.0.0/16",  # no DefaultNetType: vlan
         "AllocSubnetLen": 24, "Vxlans": "20001-20100", "Vlans": "200-210"},
    ],
}


class FakePlumbing:
    def __init__(self) -> None:
        self.ports: dict[str, DockerPort] = {}
        self.requests: dict[str, PortRequest] = {}
        self.links: set[str] = set()
        self.next_ofport = 10

    def plug(self, req: PortRequest) -> int:
        self.next_ofport += 1
        self.ports[req.port_name] = DockerPort(req.port_name, req.endpoint_id,
                                               req.docker_endpoint, self.next_ofport, True)
        self.requests[req.port_name] = req
        self.links |= {req.port_name}
        return self.next_ofport

    def unplug(self, port_name: str) -> None:
        self.ports.pop(port_name, None)
        self.links.discard(port_name)

    def relabel(self, req: PortRequest) -> None:
        self.ports[req.port_name] = replace(self.ports[req.port_name],
                                            endpoint_id=req.endpoint_id)
        self.requests[req.port_name] = req

    def docker_ports(self) -> list[DockerPort]:
        return list(self.ports.values())

    def leftover_links(self) -> set[str]:
        return self.links - set(self.ports)

    def delete_link(self, name: str) -> None:
        self.links.discard(name)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    apply_config(s, load_config(copy.deepcopy(DOC)))
    return s


def drv(store: MemoryStore, host: str = H1) -> Driver:
    return Driver(store, host, FakePlumbing())


def ok(resp: dict | None) -> dict:
    assert resp is not None and "Err" not in resp, resp
    return resp


def err(resp: dict | None) -> str:
    assert resp is not None and "Err" in resp, resp
    return resp["Err"]


def net_create(d: Driver, nid: str, name: str = "orange", tenant: str = "t1",
               subnet: str | None = None, **extra: str) -> dict:
    """Docker's calls for ``docker network create`` (an error stops it, as Docker does)."""
    opts = {"netplugin.network": name, "netplugin.tenant": tenant} | extra
    ok(d.handle("/Plugin.Activate", {}))
    pool = d.handle("/IpamDriver.RequestPool", {"AddressSpace": "netplugin", "Pool": subnet or "",
                                                "SubPool": "", "Options": opts, "V6": False})
    if "Err" in pool:
        return pool
    gw = d.handle("/IpamDriver.RequestAddress", {"PoolID": pool["PoolID"], "Address": "",
                                                 "Options": {"RequestAddressType":
                                                             "com.docker.network.gateway"}})
    if "Err" in gw:
        d.handle("/IpamDriver.ReleasePool", {"PoolID": pool["PoolID"]})
        return gw
    res = d.handle("/NetworkDriver.CreateNetwork", {
        "NetworkID": nid, "Options": {"com.docker.network.enable_ipv6": False,
                                      "com.docker.network.generic": opts},
        "IPv4Data": [{"AddressSpace": "netplugin", "Gateway": gw["Address"],
                      "Pool": pool["Pool"]}], "IPv6Data": []})
    if "Err" in res:
        d.handle("/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"],
                                                "Address": gw["Address"].split("/")[0]})
        d.handle("/IpamDriver.ReleasePool", {"PoolID": pool["PoolID"]})
        return res
    return {"PoolID": pool["PoolID"], "Pool": pool["Pool"], "Gateway": gw["Address"]}


def net_rm(d: Driver, nid: str, pool: dict) -> None:
    ok(d.handle("/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"],
                                               "Address": pool["Gateway"].split("/")[0]}))
    ok(d.handle("/IpamDriver.ReleasePool", {"PoolID": pool["PoolID"]}))
    ok(d.handle("/NetworkDriver.DeleteNetwork", {"NetworkID": nid}))


def run(d: Driver, nid: str, pool_id: str, eid: str, ip: str = "") -> dict:
    """Docker's calls for ``docker run`` up to the container running."""
    addr = d.handle("/IpamDriver.RequestAddress", {"PoolID": pool_id, "Address": ip,
                                                   "Options": None})
    if "Err" in addr:
        return addr
    ep = d.handle("/NetworkDriver.CreateEndpoint", {
        "NetworkID": nid, "EndpointID": eid, "Options": {},
        "Interface": {"Address": addr["Address"], "AddressIPv6": "", "MacAddress": ""}})
    if "Err" in ep:
        d.handle("/IpamDriver.ReleaseAddress", {"PoolID": pool_id,
                                                "Address": addr["Address"].split("/")[0]})
        return ep
    join = ok(d.handle("/NetworkDriver.Join", {"NetworkID": nid, "EndpointID": eid,
                                               "SandboxKey": f"/var/run/docker/netns/{eid[:12]}",
                                               "Options": {}}))
    ok(d.handle("/NetworkDriver.ProgramExternalConnectivity",
                {"NetworkID": nid, "EndpointID": eid, "Options": {}}))
    return {"Address": addr["Address"], "Mac": ep["Interface"]["MacAddress"], "Join": join}


def stop(d: Driver, nid: str, pool_id: str, eid: str, ip: str) -> None:
    for path in ("/NetworkDriver.RevokeExternalConnectivity", "/NetworkDriver.Leave",
                 "/NetworkDriver.DeleteEndpoint"):
        ok(d.handle(path, {"NetworkID": nid, "EndpointID": eid}))
    ok(d.handle("/IpamDriver.ReleaseAddress", {"PoolID": pool_id, "Address": ip}))


def endpoints(store: MemoryStore) -> dict[str, str]:
    return {e.id: e.ip for e in read_resolved(store).endpoints}


def oper(store: MemoryStore, eid: str) -> dict | None:
    kv = store.get(keys.oper_endpoint(eid))
    return json.loads(kv.value) if kv else None


NID1, NID2 = "n1" + "0" * 62, "n2" + "0" * 62
EID_A, EID_B, EID_C = "a" * 64, "b" * 64, "c" * 64


def test_handshake_and_unknown_method(store):
    d = drv(store)
    assert ok(d.handle("/Plugin.Activate", {})) == {"Implements": ["NetworkDriver",
                                                                   "IpamDriver"]}
    assert d.handle("/NetworkDriver.GetCapabilities", {}) == {"Scope": "local",
                                                             "ConnectivityScope": "global"}
    assert ok(d.handle("/IpamDriver.GetDefaultAddressSpaces", {}))["LocalDefaultAddressSpace"]
    assert ok(d.handle("/IpamDriver.GetCapabilities", {}))["RequiresMACAddress"] is False
    assert d.handle("/NetworkDriver.Nope", {}) is None


def test_network_create_uses_an_existing_network(store):
    d = drv(store)
    pool = net_create(d, NID1)
    spec = read_resolved(store).networks
    orange = next(n for n in spec if n.name == "orange")
    assert pool["Pool"] == orange.subnet and pool["Gateway"] == f"{orange.gateway}/24"
    assert store.get(docker_state.created_key("orange")) is None  # netdcli made it
    net_rm(d, NID1, pool)
    assert "orange" in {n.name for n in read_resolved(store).networks}  # not Docker's to delete


def test_network_create_makes_a_new_network_from_options_and_rm_deletes_it(store):
    d1, d2 = drv(store, H1), drv(store, H2)
    p1 = net_create(d1, NID1, "web", subnet="11.1.9.0/24", **{"netplugin.type": "vlan",
                                                              "netplugin.tag": "105"})
    web = next(n for n in read_resolved(store).networks if n.name == "web")
    assert (web.tenant, web.net_type, web.tag, web.subnet) == ("t1", "vlan", 105, "11.1.9.0/24")
    p2 = net_create(d2, NID2, "web")  # the other host joins the same netplugin network
    assert p2["Pool"] == "11.1.9.0/24"
    net_rm(d1, NID1, p1)
    assert "web" in {n.name for n in read_resolved(store).networks}  # host2 still uses it
    net_rm(d2, NID2, p2)
    assert "web" not in {n.name for n in read_resolved(store).networks}
    assert store.get(docker_state.created_key("web")) is None


def test_gateway_option_sets_a_new_networks_gateway_and_is_checked_on_others(store):
    d = drv(store)
    ok(d.handle("/IpamDriver.RequestPool", {"Pool": "11.1.9.0/24", "Options": {
        "netplugin.network": "gw", "netplugin.tenant": "t1"}}))
    gw = {"RequestAddressType": "com.docker.network.gateway"}
    res = ok(d.handle("/IpamDriver.RequestAddress", {"PoolID": "gw", "Address": "11.1.9.254",
                                                     "Options": gw}))
    assert res["Address"] == "11.1.9.254/24"
    assert next(n for n in read_resolved(store).networks if n.name == "gw").gateway == \
        "11.1.9.254"
    msg = err(d.handle("/IpamDriver.RequestAddress", {"PoolID": "fixed", "Address": "11.2.0.9",
                                                      "Options": gw}))
    assert 'gateway 11.2.0.9 disagrees with network "fixed" (gateway 11.2.0.1)' in msg


def test_network_driver_type_option_changes_a_network_the_ipam_just_made(store):
    d = drv(store)
    pool = ok(d.handle("/IpamDriver.RequestPool", {"Pool": "", "Options": {
        "netplugin.network": "v", "netplugin.tenant": "t1"}}))  # tenant default: vxlan
    ok(d.handle("/NetworkDriver.CreateNetwork", {
        "NetworkID": NID1, "IPv4Data": [{"Pool": pool["Pool"], "Gateway": ""}],
        "Options": {"com.docker.network.generic": {"netplugin.network": "v",
                                                   "netplugin.type": "vlan"}}}))
    v = next(n for n in read_resolved(store).networks if n.name == "v")
    assert (v.net_type, v.subnet) == ("vlan", pool["Pool"]) and 100 <= v.tag <= 110
    assert store.get(docker_state.created_key("v")) is not None


def test_network_create_from_the_tenant_pool_pins_the_subnet(store):
    d = drv(store)
    pool = net_create(d, NID1, "auto")
    net = next(n for n in read_resolved(store).networks if n.name == "auto")
    assert pool["Pool"] == net.subnet and net.subnet.startswith("11.1.")
    cfg = json.loads(store.get(keys.network("auto")).value)
    assert cfg["subnet_cidr"] == net.subnet and cfg["pkt_tag_type"] == "vxlan"


@pytest.mark.parametrize("kwargs, message", [
    (dict(name="orange", tenant="t2"), 'network "orange" belongs to tenant "t1", not "t2"'),
    (dict(name="fixed", subnet="11.2.1.0/24"),
     'subnet 11.2.1.0/24 disagrees with network "fixed" (subnet 11.2.0.0/24)'),
    (dict(name="new", tenant="nope"), 'tenant "nope" does not exist'),
    (dict(name="new", tenant=""), 'network "new" does not exist: give netplugin.tenant='),
    (dict(name="new", **{"netplugin.type": "gre"}), "netplugin.type 'gre': must be one of"),
    (dict(name="fixed", **{"netplugin.type": "vlan"}), 'network "fixed" is vxlan'),
    (dict(name="bad/name"), "not a valid network name"),
])
def test_network_create_refusals_name_the_problem_and_leave_nothing(store, kwargs, message):
    before = {kv.key: kv.value for kv in store.list(keys.ROOT) if kv.key != keys.CONFIG_REV}
    res = net_create(drv(store), NID1, **kwargs)
    assert message in err(res)
    after = {kv.key: kv.value for kv in store.list(keys.ROOT) if kv.key != keys.CONFIG_REV}
    assert after == before


def test_ipam_options_are_required(store):
    d = drv(store)
    msg = err(d.handle("/IpamDriver.RequestPool", {"AddressSpace": "netplugin", "Pool": "",
                                                   "Options": {}, "V6": False}))
    assert "--ipam-opt netplugin.network=NETWORK is needed" in msg
    msg = err(d.handle("/IpamDriver.RequestPool", {"Options": {"netplugin.network": "orange"},
                                                   "SubPool": "11.1.0.0/28"}))
    assert "--ip-range is not supported" in msg


def test_network_option_defaults_to_the_ipam_drivers_network(store):
    d = drv(store)
    pool = ok(d.handle("/IpamDriver.RequestPool", {"Pool": "", "Options": {
        "netplugin.network": "fixed"}}))
    assert pool["Pool"] == "11.2.0.0/24"
    base = {"NetworkID": NID1, "IPv4Data": [{"Pool": pool["Pool"], "Gateway": "11.2.0.1/24"}]}
    ok(d.handle("/NetworkDriver.CreateNetwork", base | {"Options": {}}))
    assert d.state.network(NID1).network == "fixed"
    net_create(drv(store), NID2, "other", "t2", subnet="11.2.0.0/24")  # same subnet, t2
    other = next(n for n in read_resolved(store).networks if n.name == "other")
    assert (other.net_type, other.tag) == ("vlan", 200)
    msg = err(d.handle("/NetworkDriver.CreateNetwork", base | {"NetworkID": "x" * 64}))
    assert "-o netplugin.network=NETWORK is needed (2 netplugin networks have subnet" in msg
    ok(d.handle("/NetworkDriver.CreateNetwork", base | {"NetworkID": "x" * 64, "Options": {
        "com.docker.network.generic": {"netplugin.tenant": "t2"}}}))
    assert d.state.network("x" * 64).network == "other"


def test_run_allocates_plugs_and_stop_releases(store):
    d = drv(store)
    pool = net_create(d, NID1)
    res = run(d, NID1, pool["PoolID"], EID_A)
    ip = res["Address"].split("/")[0]
    ep_id = f"orange-docker-{EID_A[:12]}"
    assert endpoints(store)[ep_id] == ip
    spec = show_endpoint(store, ep_id)
    assert (spec["Host"], spec["MacAddress"]) == (H1, res["Mac"])
    port, peer = port_names(EID_A)
    assert res["Join"] == {"InterfaceName": {"SrcName": peer, "DstPrefix": "eth"},
                           "Gateway": spec["Gateway"], "DisableGatewayService": True}
    assert spec["Oper"]["ofport"] == d.plumbing.ports[port].ofport
    assert spec["Oper"]["driver"] == "docker" and spec["Oper"]["host"] == H1
    assert d.plumbing.requests[port].mtu == 1450 and d.plumbing.requests[port].mac == res["Mac"]
    stop(d, NID1, pool["PoolID"], EID_A, ip)
    assert ep_id not in endpoints(store) and not d.plumbing.ports
    assert oper(store, ep_id) is None
    assert not store.list(docker_state.host_prefix(H1) + "endpoints/")
    assert not store.list(docker_state.host_prefix(H1) + "addresses/")


def test_static_ip_and_clash(store):
    d1, d2 = drv(store, H1), drv(store, H2)
    p1, p2 = net_create(d1, NID1, "fixed"), net_create(d2, NID2, "fixed")
    tb_ip = endpoints(store)["fixed-tb"]
    res = run(d1, NID1, p1["PoolID"], EID_A, ip="11.2.0.50")
    assert res["Address"] == "11.2.0.50/24"
    before = {kv.key: kv.value for kv in store.list(keys.ROOT) if kv.key != keys.CONFIG_REV}
    for ip, owner in (("11.2.0.50", f"fixed-docker-{EID_A[:12]}"), (tb_ip, "fixed-tb")):
        msg = err(run(d2, NID2, p2["PoolID"], EID_B, ip=ip))
        assert f"address {ip} is in use in network fixed (endpoint {owner})" in msg
    assert "is the gateway" in err(run(d2, NID2, p2["PoolID"], EID_B, ip="11.2.0.1"))
    assert "not a host address" in err(run(d2, NID2, p2["PoolID"], EID_B, ip="11.3.0.9"))
    after = {kv.key: kv.value for kv in store.list(keys.ROOT) if kv.key != keys.CONFIG_REV}
    assert after == before and endpoints(store)["fixed-tb"] == tb_ip
    assert not d2.plumbing.ports


def test_two_hosts_never_share_an_address(store):
    d1, d2 = drv(store, H1), drv(store, H2)
    p1, p2 = net_create(d1, NID1), net_create(d2, NID2)
    ips = [run(d, nid, p["PoolID"], eid)["Address"]
           for d, nid, p, eid in ((d1, NID1, p1, EID_A), (d2, NID2, p2, EID_B),
                                  (d1, NID1, p1, EID_C))]
    assert len(set(ips)) == 3


def test_mac_address_option_is_refused_and_rolled_back(store):
    d = drv(store)
    pool = net_create(d, NID1)
    addr = ok(d.handle("/IpamDriver.RequestAddress", {"PoolID": "orange", "Address": ""}))
    msg = err(d.handle("/NetworkDriver.CreateEndpoint", {
        "NetworkID": NID1, "EndpointID": EID_A,
        "Interface": {"Address": addr["Address"], "MacAddress": "02:42:ac:11:00:02"}}))
    assert "--mac-address is not supported" in msg
    ok(d.handle("/IpamDriver.ReleaseAddress", {"PoolID": pool["PoolID"],
                                               "Address": addr["Address"].split("/")[0]}))
    assert not [e for e in endpoints(store) if e.startswith("orange-docker")]


def test_learnt_name_renames_the_endpoint_keeping_ip_port_and_oper(store):
    d = drv(store)
    pool = net_create(d, NID1)
    res = run(d, NID1, pool["PoolID"], EID_A)
    ip = res["Address"].split("/")[0]
    old = f"orange-docker-{EID_A[:12]}"
    assert d.learn(EID_A, "web") == "orange-web"
    view = show_endpoint(store, "orange-web")
    assert view["IpAddress"] == ip and view["Oper"]["container"] == "web"
    assert old not in endpoints(store) and oper(store, old) is None
    port, _ = port_names(EID_A)
    assert d.plumbing.ports[port].endpoint_id == "orange-web"
    assert ok(d.handle("/NetworkDriver.EndpointOperInfo",
                       {"NetworkID": NID1, "EndpointID": EID_A}))["Value"][
        "netplugin.endpoint"] == "orange-web"
    stop(d, NID1, pool["PoolID"], EID_A, ip)
    assert "orange-web" not in endpoints(store) and oper(store, "orange-web") is None


def test_a_name_taken_by_a_declared_endpoint_keeps_the_docker_id_name(store):
    d = drv(store)
    pool = net_create(d, NID1, "fixed")
    run(d, NID1, pool["PoolID"], EID_A)
    assert d.learn(EID_A, "tb") == f"fixed-docker-{EID_A[:12]}"
    assert endpoints(store)["fixed-tb"]  # the declared one untouched


def test_agent_plan_leaves_docker_ports_and_oper_keys_alone(store):
    d = drv(store)
    pool = net_create(d, NID1)
    run(d, NID1, pool["PoolID"], EID_A)
    port, _ = port_names(EID_A)
    ep_id = f"orange-docker-{EID_A[:12]}"
    actual = [P.Actual(port_name=port, endpoint_id=ep_id, ofport=11, driver="docker")]
    # even if a runtime entry made the agent want the endpoint (a test-bed container of that name)
    spec = read_resolved(store)
    ep = next(e for e in spec.endpoints if e.id == ep_id)
    net = next(n for n in spec.networks if n.name == "orange")
    want = {ep_id: P.desired_for(ep, net, P.RuntimeEntry(ep.container, "/run/netns/x"))}
    for w in ({}, want):
        assert P.plan(H1, w, actual, {ep_id: oper(store, ep_id)}, frozenset({port})) == []


def test_restart_reconcile_keeps_running_and_cleans_what_docker_dropped(store):
    d = drv(store)
    pool = net_create(d, NID1)
    a = run(d, NID1, pool["PoolID"], EID_A)["Address"].split("/")[0]
    b = run(d, NID1, pool["PoolID"], EID_B)["Address"].split("/")[0]
    d.learn(EID_A, "web")
    pending = ok(d.handle("/IpamDriver.RequestAddress", {"PoolID": "orange", "Address": ""}))
    d.plumbing.plug(PortRequest("z" * 64, "orange-x", "dk" + "f" * 12, "dc" + "f" * 12,
                                "02:00:00:00:00:99", "11.1.0.99", 1450, "x"))  # a leaked port
    d.plumbing.links.add("dk" + "e" * 12)  # a crashed plug's veth
    restarted = Driver(store, H1, d.plumbing)  # same OVS, new process
    view = DockerView({NID1: {EID_A: DockerEndpoint("web", a)}})  # b stopped meanwhile
    done = reconcile(restarted, view, cleanup=True)
    assert any("gone" in x for x in done)
    eps = endpoints(store)
    assert eps["orange-web"] == a and b not in eps.values()
    assert pending["Address"].split("/")[0] not in eps.values()
    assert set(d.plumbing.ports) == {port_names(EID_A)[0]} and not d.plumbing.leftover_links()
    c = run(restarted, NID1, pool["PoolID"], EID_C)["Address"].split("/")[0]
    assert c != a
    assert reconcile(restarted, view) == []  # nothing left to do


def test_restart_without_docker_only_fixes_ports(store):
    d = drv(store)
    pool = net_create(d, NID1)
    run(d, NID1, pool["PoolID"], EID_A)
    port, _ = port_names(EID_A)
    d.plumbing.ports.pop(port)  # the port vanished (OVS lost it)
    done = reconcile(Driver(store, H1, d.plumbing), None)
    assert f"lost port {port}" in done
    assert oper(store, f"orange-docker-{EID_A[:12]}") is None
    assert f"orange-docker-{EID_A[:12]}" in endpoints(store)  # the address stays Docker's


def test_errors_are_err_objects_with_names(store):
    d = drv(store)
    assert re.search(r"Docker network n1000+ is not known", err(d.handle(
        "/NetworkDriver.CreateEndpoint", {"NetworkID": NID1, "EndpointID": EID_A,
                                          "Interface": {"Address": "11.1.0.5/24"}})))
    assert "Docker endpoint aaaaaaaaaaaa is not known" in err(d.handle(
        "/NetworkDriver.Join", {"NetworkID": NID1, "EndpointID": EID_A}))
    assert "bad request" in err(d.handle("/NetworkDriver.Join", {}))
