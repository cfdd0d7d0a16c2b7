"""IPAM backends and reserved ranges in the intent and the write path (no daemons)."""

from __future__ import annotations

import json

import pytest

from allocator.write import apply_config, delete_object, record_address, replace_endpoint
from intent import codec, keys
from intent.consistent import read_consistent
from intent.errors import ValidationError
from intent.ipam_doc import parse_reserved, plugin_settings, reserved_end
from intent.loader import load_config, load_document
from intent.model import EndpointConfig, EndpointSpec, IpamConfig
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore
from netdcli.audit import audit_store
from tests.unit.test_write_path import STOCK, CountingStore

HOST_LOCAL = {"Type": "cni", "Plugin": "host-local",
              "Config": {"ranges": [[{"subnet": "11.1.0.0/24"}]]},
              "Hosts": {"h1": {"dataDir": "/tmp/x/h1"}}}


def doc(net: dict, endpoints: list[dict] | None = None) -> dict:
    net = {"Name": "n1", "SubnetCIDR": "11.1.0.0/24", "Endpoints": endpoints or []} | net
    return {"Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "Vxlans": "100-200",
                         "Networks": [net]}]}


def problems(source: dict) -> list[str]:
    with pytest.raises(ValidationError) as exc:
        load_config(source)
    return exc.value.problems


def ips(store: MemoryStore) -> dict[str, str]:
    return {e.id: e.ip for e in read_resolved(store).endpoints}


def state(store: MemoryStore, eid: str) -> EndpointSpec:
    return codec.loads(EndpointSpec, store.get(keys.state_endpoint(eid)).value)


# --------------------------------------------------------------------------- the document


def test_ipam_values_are_read_and_bad_ones_name_the_field() -> None:
    cfg = load_config(doc({"Ipam": HOST_LOCAL}))
    ipam = cfg.networks()[0].ipam
    assert ipam.delegated and ipam.plugin == "host-local"
    assert json.loads(ipam.hosts) == {"h1": {"dataDir": "/tmp/x/h1"}}
    assert load_config(doc({"Ipam": "builtin"})).networks()[0].ipam == IpamConfig()
    where = "Tenants[0].Networks[0].Ipam"
    assert problems(doc({"Ipam": "dhcp-server"})) == [
        f'{where} "dhcp-server": expected "builtin" or an object like {{"Type": "cni", '
        f'"Plugin": "host-local", "Config": {{...}}}}']
    assert problems(doc({"Ipam": {"Type": "infoblox"}})) == [
        f'{where}.Type "infoblox": unknown IPAM type (expected builtin or cni)']
    assert problems(doc({"Ipam": {"Type": "cni"}})) == [
        f'{where}.Plugin: required for Type cni (e.g. "host-local")']
    assert problems(doc({"Ipam": {"Type": "cni", "Plugin": "../bin/sh"}}))[0].startswith(
        f'{where}.Plugin "../bin/sh": not a plugin file name')
    assert problems(doc({"Ipam": {"Type": "cni", "Plugin": "static", "Config": [1]}})) == [
        f"{where}.Config: expected an object (the plugin's ipam settings), got [1]"]
    assert problems(doc({"Ipam": {"Type": "cni", "Plugin": "static",
                                  "Config": {"type": "host-local"}}})) == [
        f'{where}.Config.type "host-local": disagrees with Plugin "static" (leave it out)']
    assert problems(doc({"Ipam": {"Type": "cni", "Plugin": "static", "Hosts": {"h1": 3}}}))[
        0].startswith(f"{where}.Hosts: expected an object of host name -> settings")
    assert problems(doc({"Ipam": {"Type": "cni", "Plugin": "x", "Configs": {}}}))[0].startswith(
        f"{where}.Configs: unknown key (did you mean 'Config'?)")


def test_plugin_settings_merge_the_hosts_part_and_default_to_the_networks_subnet() -> None:
    ipam = load_config(doc({"Ipam": HOST_LOCAL})).networks()[0].ipam
    assert plugin_settings(ipam, "h1", "11.1.0.0/24", "11.1.0.1") == {
        "type": "host-local", "ranges": [[{"subnet": "11.1.0.0/24"}]], "dataDir": "/tmp/x/h1"}
    bare = IpamConfig(type="cni", plugin="host-local")
    assert plugin_settings(bare, "h2", "11.1.0.0/24", "11.1.0.1") == {
        "type": "host-local", "ranges": [[{"subnet": "11.1.0.0/24", "gateway": "11.1.0.1"}]]}


def test_reserved_ranges_parse_and_bad_ones_name_the_network_field() -> None:
    ranges, found = parse_reserved("11.1.0.99, 11.1.0.1-11.1.0.50")
    assert found == [] and ranges == ((0x0B010001, 0x0B010032), (0x0B010063, 0x0B010063))
    assert reserved_end(ranges, 0x0B010020) == 0x0B010032
    assert reserved_end(ranges, 0x0B010063) == 0x0B010063
    assert reserved_end(ranges, 0x0B010033) is None
    where = 'Tenants[0].Networks[0].Reserved'
    assert problems(doc({"Reserved": "11.1.0.9-11.1.0.2"})) == [
        f'{where} "11.1.0.9-11.1.0.2": range "11.1.0.9-11.1.0.2": start is above its end']
    assert problems(doc({"Reserved": "11.1.0.1-11.1.0.5,11.1.0.5"})) == [
        f'{where} "11.1.0.1-11.1.0.5,11.1.0.5": ranges 11.1.0.1-11.1.0.5 and '
        f"11.1.0.5-11.1.0.5 overlap"]
    assert problems(doc({"Reserved": "11.1.0.x"})) == [
        f'{where} "11.1.0.x": "11.1.0.x" is not an IPv4 address or range like '
        f'"11.1.0.1-11.1.0.50"']
    assert problems(doc({"Reserved": "11.1.1.1"})) == [
        f'{where} "11.1.1.1": 11.1.1.1-11.1.1.1 is outside the network\'s subnet 11.1.0.0/24']
    assert problems(doc({}, [{"Container": "c", "Reserved": "yes"}])) == [
        "Tenants[0].Networks[0].Endpoints[0].Reserved: expected true or false, got 'yes'"]


# --------------------------------------------------------------------------- reserved ranges


def test_the_allocator_never_hands_out_reserved_addresses() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(doc({"Reserved": "11.1.0.2-11.1.0.50,11.1.0.52"},
                                        [{"Container": f"c{i}"} for i in range(3)])))
    assert ips(store) == {"n1-c0": "11.1.0.51", "n1-c1": "11.1.0.53", "n1-c2": "11.1.0.54"}
    # one by one, through the pool index, too
    apply_config(store, load_document(doc({}, [{"Container": "c3"}])), "add")
    assert ips(store)["n1-c3"] == "11.1.0.55"
    delete_object(store, "endpoint", "n1-c0")
    apply_config(store, load_document(doc({}, [{"Container": "c4"}])), "add")
    assert ips(store)["n1-c4"] == "11.1.0.51"


def test_a_static_address_in_a_reserved_range_needs_the_endpoints_reserved_flag() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(doc({"Reserved": "11.1.0.2-11.1.0.50"})))
    with pytest.raises(ValidationError) as exc:
        apply_config(store, load_document(doc({}, [{"Container": "old",
                                                    "IpAddress": "11.1.0.7"}])), "add")
    assert exc.value.problems == [
        'Tenants[0].Networks[0].Endpoints[0].IpAddress "11.1.0.7": is in the network\'s '
        'Reserved ranges (11.1.0.2-11.1.0.50); give the endpoint "Reserved": true to use it']
    assert ips(store) == {}
    apply_config(store, load_document(doc({}, [{"Container": "old", "IpAddress": "11.1.0.7",
                                                "Reserved": True}])), "add")
    assert ips(store) == {"n1-old": "11.1.0.7"}
    with pytest.raises(ValidationError, match=r'Endpoints\[0\]\.IpAddress "11.1.0.7": is in '):
        apply_config(store, load_document(doc({}, [{"Container": "old", "Reserved": False}])),
                     "add")  # the merged endpoint is checked
    # the whole document is checked the same way
    assert problems(doc({"Reserved": "11.1.0.9"}, [{"Container": "c", "IpAddress": "11.1.0.9"}])
                    )[0].startswith('Tenants[0].Networks[0].Endpoints[0].IpAddress "11.1.0.9": '
                                    "is in the network's Reserved ranges")


# --------------------------------------------------------------------------- delegated addresses


def test_an_endpoint_of_a_cni_network_waits_for_its_address_then_it_is_recorded() -> None:
    store = CountingStore(**STOCK)
    apply_config(store, load_config(doc({"Ipam": HOST_LOCAL, "Reserved": "11.1.0.200"},
                                        [{"Container": "a", "Host": "h1"},
                                         {"Container": "b", "Host": "h1"},
                                         {"Container": "s", "IpAddress": "11.1.0.9"}])))
    spec = codec.loads(codec.NetworkSpec, store.get(keys.state_network("n1")).value)
    assert spec.ipam is not None and spec.ipam.plugin == "host-local"
    assert (state(store, "n1-a").ip, state(store, "n1-a").mac) == ("", "")
    assert ips(store) == {"n1-s": "11.1.0.9"}  # pending endpoints are not in the data plane
    assert store.get(keys.alloc_delegated("n1", "n1-a")) is not None
    store.keys_read = 0
    record_address(store, "n1-a", "11.1.0.20")
    assert store.keys_read <= 12, store.keys_read  # the endpoint, its network, one address
    assert state(store, "n1-a").mac == "02:00:0b:01:00:14"
    assert store.get(keys.alloc_delegated("n1", "n1-a")) is None
    assert json.loads(store.get(keys.alloc_ip("n1", "11.1.0.20")).value) == {"owner": "n1-a"}
    for ip, why in (("11.1.0.20", 'is used by endpoint "n1-a" in network "n1"'),
                    ("11.1.0.9", 'is used by endpoint "n1-s" in network "n1"'),
                    ("11.1.1.5", 'is not a host address of network "n1" (11.1.0.0/24)'),
                    ("11.1.0.1", 'is the gateway of network "n1"'),
                    ("11.1.0.200", 'is in the Reserved ranges of network "n1" (11.1.0.200)')):
        with pytest.raises(ValidationError) as exc:
            record_address(store, "n1-b", ip)
        assert exc.value.problems == [
            f'endpoint "n1-b": address {ip} from IPAM plugin "host-local" {why}']
    assert state(store, "n1-b").ip == ""
    # giving it back: pending again, the address free for another
    record_address(store, "n1-a", None)
    assert state(store, "n1-a").ip == "" and store.get(keys.alloc_ip("n1", "11.1.0.20")) is None
    record_address(store, "n1-b", "11.1.0.20")
    assert ips(store) == {"n1-s": "11.1.0.9", "n1-b": "11.1.0.20"}
    # a re-applied document keeps a recorded address
    apply_config(store, load_document(doc({}, [{"Container": "b", "Host": "h1"}])), "add")
    assert ips(store)["n1-b"] == "11.1.0.20"
    assert audit_store(read_consistent(store, prefixes=[keys.ROOT])) == []  # pending is sound


def test_deleting_a_cni_network_deletes_its_pending_and_recorded_endpoints() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(doc({"Ipam": HOST_LOCAL}, [{"Container": "a"},
                                                               {"Container": "b"}])))
    record_address(store, "n1-b", "11.1.0.30")
    delete_object(store, "network", "n1")
    left = [kv.key for kv in store.list(keys.ROOT) if "/n1" in kv.key]
    assert left == []


def test_recording_an_address_in_a_builtin_network_is_refused() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(doc({}, [{"Container": "a"}])))
    with pytest.raises(ValidationError, match='network "n1" takes no addresses from an IPAM'):
        record_address(store, "n1-a", "11.1.0.30")


def test_replace_endpoint_moves_a_static_address_in_one_write() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(doc({}, [{"Container": "tmp", "IpAddress": "11.1.0.40"}])))
    old = codec.loads(EndpointConfig, store.get(keys.endpoint("n1-tmp")).value)
    replace_endpoint(store, old, EndpointConfig(network="n1", container="web", host="h1",
                                                ip_address="11.1.0.40"))
    assert ips(store) == {"n1-web": "11.1.0.40"}


def test_the_controller_takes_a_pending_endpoint_for_absent_until_its_address_is_recorded(
        ) -> None:
    from ryu_apps.intake import decode_endpoint

    store = MemoryStore(**STOCK)
    apply_config(store, load_config(doc({"Ipam": HOST_LOCAL}, [{"Container": "a", "Host": "h1"}])))
    assert decode_endpoint("n1-a", store.get(keys.state_endpoint("n1-a")).value) is None
    record_address(store, "n1-a", "11.1.0.20")
    got = decode_endpoint("n1-a", store.get(keys.state_endpoint("n1-a")).value)
    assert (got.ip, got.mac, got.host) == ("11.1.0.20", "02:00:0b:01:00:14", "h1")
