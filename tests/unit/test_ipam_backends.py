"""The hosts' IPAM backend (agent/ipam.py) with a fake plugin, and the Docker IPAM driver on a
network whose addresses a CNI plugin gives (no daemons).  The real host-local plugin runs in
``tests/system/test_ipam_cni.py``."""

from __future__ import annotations

import json

import pytest

from agent import ipam as A
from agent import plan as P
from allocator.write import apply_config
from intent import codec, keys
from intent.errors import ValidationError
from intent.loader import load_config
from intent.model import EndpointSpec, NetworkSpec
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore
from tests.unit.test_docker_driver import FakePlumbing, err, net_create, ok, run, stop

NET = {"Name": "n1", "SubnetCIDR": "11.1.0.0/24", "Reserved": "11.1.0.250",
       "Ipam": {"Type": "cni", "Plugin": "fake", "Config": {"note": "all"},
                "Hosts": {"h1": {"dataDir": "/d/h1"}}},
       "Endpoints": [{"Container": "a", "Host": "h1"}, {"Container": "b", "Host": "h1"},
                     {"Container": "s", "Host": "h2", "IpAddress": "11.1.0.9"}]}
DOC = {"Hosts": [{"Name": "h1"}, {"Name": "h2"}],
       "Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "Vxlans": "100-200",
                    "Networks": [NET]}]}


class FakePlugin:
    """Hands out the addresses it is told to, records every call."""

    def __init__(self, *addresses: str) -> None:
        self.addresses = list(addresses)
        self.held: dict[str, str] = {}
        self.calls: list[tuple] = []

    def add(self, settings: dict, network: str, handle: str, netns: str) -> dict:
        self.calls.append(("ADD", handle, json.dumps(settings, sort_keys=True)))
        if handle in self.held:
            raise A.IpamError(f"{handle}: duplicate allocation")
        if not self.addresses:
            raise A.IpamError('IPAM plugin "fake" ADD: no addresses left')
        self.held[handle] = self.addresses.pop(0)
        return {"cniVersion": "1.0.0", "ips": [{"address": self.held[handle] + "/24"}]}

    def delete(self, settings: dict, network: str, handle: str, result: dict) -> None:
        self.calls.append(("DEL", handle, result["ips"][0]["address"].split("/")[0]))
        if handle in self.held:
            self.addresses.append(self.held.pop(handle))  # free for a later ADD


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    apply_config(s, load_config(json.loads(json.dumps(DOC))))
    return s


def net(store: MemoryStore) -> NetworkSpec:
    return codec.loads(NetworkSpec, store.get(keys.state_network("n1")).value)


def ip_of(store: MemoryStore, eid: str) -> str:
    return codec.loads(EndpointSpec, store.get(keys.state_endpoint(eid)).value).ip


def want(store: MemoryStore, *eids: str) -> dict[str, P.Desired]:
    eps = {e: codec.loads(EndpointSpec, store.get(keys.state_endpoint(e)).value) for e in eids}
    rt = P.RuntimeEntry("c", "/run/netns/c", "0" * 64)
    return {e: P.desired_for(ep, net(store), rt) for e, ep in eps.items()}


def test_an_obtained_address_is_recorded_with_its_lease_and_release_undoes_it(store) -> None:
    plugin = FakePlugin("11.1.0.20")
    assert A.obtain(store, plugin, "h1", net(store), "n1-a", "/run/netns/c", "a") == "11.1.0.20"
    settings = {"dataDir": "/d/h1", "note": "all", "type": "fake"}  # Hosts merged over Config
    assert plugin.calls == [("ADD", "n1-a", json.dumps(settings, sort_keys=True))]
    assert ip_of(store, "n1-a") == "11.1.0.20"
    assert {e.id: e.ip for e in read_resolved(store).endpoints}["n1-a"] == "11.1.0.20"
    (lease,) = A.read_leases(store, "h1")
    assert (lease.endpoint, lease.ip, lease.container) == ("n1-a", "11.1.0.20", "a")
    A.release(store, plugin, lease)
    assert plugin.calls[-1] == ("DEL", "n1-a", "11.1.0.20") and plugin.held == {}
    assert ip_of(store, "n1-a") == "" and A.read_leases(store, "h1") == []


def test_an_address_another_endpoint_holds_is_refused_and_given_back(store) -> None:
    plugin = FakePlugin("11.1.0.9", "11.1.0.250")  # the static endpoint's, then a reserved one
    with pytest.raises(ValidationError) as exc:
        A.obtain(store, plugin, "h1", net(store), "n1-a", "/run/netns/c")
    assert exc.value.problems == ['endpoint "n1-a": address 11.1.0.9 from IPAM plugin "fake" is '
                                  'used by endpoint "n1-s" in network "n1"']
    assert plugin.held == {} and A.read_leases(store, "h1") == [] and ip_of(store, "n1-a") == ""
    with pytest.raises(ValidationError, match="is in the Reserved ranges"):
        A.obtain(store, plugin, "h1", net(store), "n1-a", "/run/netns/c")
    assert plugin.held == {} and A.read_leases(store, "h1") == []


def test_a_lease_left_by_an_unfinished_pass_is_used_again_not_added_twice(store) -> None:
    plugin = FakePlugin("11.1.0.20", "11.1.0.21")
    A.obtain(store, plugin, "h1", net(store), "n1-a", "/run/netns/c")
    apply_config(store, load_config(json.loads(json.dumps(DOC))))  # no change: kept
    assert ip_of(store, "n1-a") == "11.1.0.20"
    from allocator.write import record_address
    record_address(store, "n1-a", None)  # as if the record had not landed
    leases = {(x.network, x.endpoint): x for x in A.read_leases(store, "h1")}
    assert A.obtain(store, plugin, "h1", net(store), "n1-a", "/run/netns/c",
                    leases=leases) == "11.1.0.20"
    assert [c[0] for c in plugin.calls] == ["ADD"]


def test_delegate_wanted_fills_pending_endpoints_and_names_the_ones_it_cannot(store) -> None:
    plugin = FakePlugin("11.1.0.20")
    got, obtained, problems = A.delegate_wanted(store, plugin, "h1", want(store, "n1-a", "n1-b"),
                                                {"n1": net(store)}, {})
    assert obtained == ["n1-a"] and list(got) == ["n1-a"]
    assert (got["n1-a"].ip, got["n1-a"].mac) == ("11.1.0.20", "02:00:0b:01:00:14")
    assert problems == ['endpoint n1-b: not plugged: IPAM plugin "fake" ADD: no addresses left']
    A.give_back(store, plugin, A.read_leases(store, "h1"), problems)
    assert plugin.held == {} and ip_of(store, "n1-a") == ""


def test_a_plugin_result_without_an_ipv4_address_is_given_back(store) -> None:
    class NoV4(FakePlugin):
        def add(self, settings, network, handle, netns):
            self.calls.append(("ADD", handle, ""))
            return {"ips": [{"address": "fd00::5/64"}]}

        def delete(self, settings, network, handle, result):
            self.calls.append(("DEL", handle, ""))

    plugin = NoV4()
    with pytest.raises(A.IpamError, match='IPAM plugin "fake" returned no IPv4 address'):
        A.obtain(store, plugin, "h1", net(store), "n1-a", "/run/netns/c")
    assert [c[0] for c in plugin.calls] == ["ADD", "DEL"] and A.read_leases(store, "h1") == []


def test_cni_ipam_names_a_missing_plugin_binary(tmp_path) -> None:
    with pytest.raises(A.IpamError, match=f'IPAM plugin "nope" not found on the CNI path '
                                          f"{tmp_path}"):
        A.CniIpam(str(tmp_path)).add({"type": "nope"}, "n1", "n1-a", "/proc/self/ns/net")


# --------------------------------------------------------------------------- Docker


def test_docker_run_on_a_cni_network_takes_the_plugins_address_and_rm_gives_it_back(
        store) -> None:
    from agent.docker_driver import Driver

    plugin = FakePlugin("11.1.0.30", "11.1.0.9")
    d = Driver(store, "h1", FakePlumbing(), plugin)
    pool = net_create(d, "n" * 64, "n1", subnet="11.1.0.0/24")
    up = run(d, "n" * 64, pool["PoolID"], "e" * 64)
    assert up["Address"] == "11.1.0.30/24" and up["Mac"] == "02:00:0b:01:00:1e"
    eid = "n1-docker-" + "e" * 12
    assert {e.id: e.ip for e in read_resolved(store).endpoints}[eid] == "11.1.0.30"
    # the next address the plugin gives is the static endpoint's: refused, nothing left behind
    again = run(d, "n" * 64, pool["PoolID"], "f" * 64)
    assert "11.1.0.9" in err(again) and 'used by endpoint "n1-s"' in err(again)
    assert list(plugin.held.values()) == ["11.1.0.30"]
    assert sorted(kv.key for kv in store.list(keys.CONFIG_ENDPOINTS)) == sorted(
        keys.endpoint(e) for e in (eid, "n1-s", "n1-a", "n1-b"))  # the refused one is gone
    stop(d, "n" * 64, pool["PoolID"], "e" * 64, "11.1.0.30")
    assert plugin.held == {} and A.read_leases(store, "h1") == []
    assert eid not in {e.id for e in read_resolved(store).endpoints}
    ok(d.handle("/NetworkDriver.DeleteNetwork", {"NetworkID": "n" * 64}))


def test_cni_ipam_runs_the_real_host_local_plugin(tmp_path) -> None:
    """ADD/DEL through the binary Debian ships (no root needed: host-local keeps files)."""
    runner = A.CniIpam(A.DEFAULT_CNI_PATH)
    try:
        runner.binary("host-local")
    except A.IpamError as e:
        pytest.fail(f"{e}: apt-get install containernetworking-plugins (`make setup` does it)")
    settings = {"type": "host-local", "dataDir": str(tmp_path), "ranges": [[{
        "subnet": "11.1.0.0/24", "rangeStart": "11.1.0.10", "rangeEnd": "11.1.0.11"}]]}
    first = runner.add(settings, "n1", "n1-a", A.NO_NETNS)
    assert A.first_ipv4(first, "host-local") == "11.1.0.10"
    assert A.first_ipv4(runner.add(settings, "n1", "n1-b", A.NO_NETNS), "x") == "11.1.0.11"
    with pytest.raises(A.IpamError) as exc:
        runner.add(settings, "n1", "n1-c", A.NO_NETNS)
    assert str(exc.value).startswith('IPAM plugin "host-local" ADD for n1-c in network "n1": ')
    assert "no IP addresses available" in str(exc.value)
    runner.delete(settings, "n1", "n1-a", first)
    assert not (tmp_path / "n1" / "11.1.0.10").exists()
    assert (tmp_path / "n1" / "11.1.0.11").exists()


# --------------------------------------------------------------------------- a reconcile pass


class FakePlumber:
    """OVS and netlink stand-ins: ports by name; ``broken`` endpoints fail to plug."""

    def __init__(self, broken: set[str] = frozenset()) -> None:
        from agent.plumb import Plugged

        self.Plugged = Plugged
        self.ports: dict[str, P.Actual] = {}
        self.broken = set(broken)
        self.links = self

    def actual(self) -> list[P.Actual]:
        return list(self.ports.values())

    def leftover_links(self) -> frozenset[str]:
        return frozenset()

    def delete_link(self, name: str) -> None:
        pass

    def plug(self, w: P.Desired, preferred_ifname: str | None = None):
        from agent.netlink import PlumbingError

        if w.endpoint_id in self.broken:
            raise PlumbingError(f"endpoint {w.endpoint_id}: veth could not be made")
        self.ports[w.port_name] = P.Actual(w.port_name, w.endpoint_id, w.sig, 7, True, w.ip,
                                           w.netns, w.owner, w.container_id)
        return self.Plugged(w.endpoint_id, w.port_name, 7, "eth0", w.mac, w.netns)

    def unplug(self, port_name: str) -> None:
        self.ports.pop(port_name, None)


def test_reconcile_plugs_with_the_plugins_address_rolls_back_a_failed_plug_and_releases(
        store, tmp_path) -> None:
    import json as _json

    from agent.reconcile import reconcile

    netns = tmp_path / "netns-a"
    netns.write_text("")
    for name in ("a", "b"):
        store.put(keys.runtime_container("h1", name), _json.dumps({"netns": str(netns),
                                                                  "id": f"id-{name}"}))
    plugin, plumber = FakePlugin("11.1.0.20", "11.1.0.21"), FakePlumber(broken={"n1-b"})
    lock = str(tmp_path / "lock")
    rep = reconcile(store, plumber, "h1", lock, ipam=plugin)
    assert [p.endpoint_id for p in rep.plugged] == ["n1-a"]
    assert [a.ip for a in plumber.actual()] == ["11.1.0.20"]
    assert rep.problems == ["endpoint n1-b: veth could not be made"]
    # the failed plug left nothing: its address is back with the plugin, the endpoint pending
    assert plugin.held == {"n1-a": "11.1.0.20"} and ip_of(store, "n1-b") == ""
    assert [x.endpoint for x in A.read_leases(store, "h1")] == ["n1-a"]
    # the next pass keeps a's port and lease, and plugs b now that it can
    plumber.broken.clear()
    again = reconcile(store, plumber, "h1", lock, ipam=plugin)
    assert again.kept == ["n1-a"] and [p.endpoint_id for p in again.plugged] == ["n1-b"]
    assert plugin.held == {"n1-a": "11.1.0.20", "n1-b": "11.1.0.21"}
    assert ip_of(store, "n1-b") == "11.1.0.21"
    # the container goes: unplugged, the address given back, the endpoint pending again
    store.delete(keys.runtime_container("h1", "a"))
    store.delete(keys.runtime_container("h1", "b"))
    gone = reconcile(store, plumber, "h1", lock, ipam=plugin)
    assert sorted(gone.unplugged) == ["n1-a", "n1-b"] and plumber.actual() == []
    assert plugin.held == {} and A.read_leases(store, "h1") == []
    assert ip_of(store, "n1-a") == ip_of(store, "n1-b") == ""


def test_a_cni_del_racing_an_agent_pass_leaves_the_endpoint_without_an_address(
        store, tmp_path) -> None:
    """While the CNI DEL gives an address back, the agent may run a pass: it must not plug the
    container again nor ask the plugin for a fresh address for the endpoint (the CI once saw the
    endpoint holding host-local's next address after DEL)."""
    from agent import cni
    from agent.reconcile import reconcile

    netns = tmp_path / "netns-a"
    netns.write_text("")
    store.put(keys.runtime_container("h1", "a"), json.dumps({"netns": str(netns), "id": "id-a"}))
    plugin, plumber = FakePlugin("11.1.0.20", "11.1.0.21"), FakePlumber()
    lock = str(tmp_path / "lock")
    assert [p.endpoint_id for p in reconcile(store, plumber, "h1", lock, ipam=plugin).plugged] \
        == ["n1-a"]
    plugin_delete, passes = plugin.delete, []

    def delete_with_an_agent_pass(*args) -> None:  # the agent wakes in the middle of the DEL
        plugin_delete(*args)
        if not passes:  # once (the pass's own give-back calls this again)
            passes.append(None)
            passes[0] = reconcile(store, plumber, "h1", lock, ipam=plugin)

    plugin.delete = delete_with_an_agent_pass
    assert cni._teardown(store, plumber, "h1", lock, "a", "id-a", plugin) == ["n1-a"]
    assert passes and passes[0].plugged == []
    assert ip_of(store, "n1-a") == "" and plumber.actual() == []
    assert plugin.held == {} and A.read_leases(store, "h1") == []
    assert store.get(keys.runtime_container("h1", "a")) is None
