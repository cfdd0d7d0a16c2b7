"""QoS profiles and multicast in the intent: parsing, checks naming the field, the write path
(profile references counted per tenant, a used profile cannot go alone, receivers exist)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from allocator.write import apply_config
from intent import keys
from intent.errors import ValidationError
from intent.loader import load_config, load_document
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "qos_multicast.json"
T = "tenant-one"


def doc() -> dict:
    return json.loads(EXAMPLE.read_text())


def problems(d: dict) -> str:
    with pytest.raises(ValidationError) as exc:
        load_config(d)
    return str(exc.value)


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    apply_config(s, load_config(doc()))
    return s


def test_profiles_parse_with_units_and_attach_at_three_levels() -> None:
    cfg = load_config(doc())
    gold, bronze = cfg.tenants[0].qos_profiles
    assert (gold.bandwidth, gold.burst, gold.dscp) == (10000, 1000, 46)
    assert (bronze.bandwidth, bronze.dscp) == (None, 10)
    assert cfg.tenants[0].endpoint_groups[0].qos_profile == "gold"
    assert cfg.tenants[0].networks[0].qos_profile == "bronze"
    mc = cfg.tenants[0].networks[0].multicast
    assert mc.snooping and mc.groups[0].address == "239.1.1.1"
    assert mc.groups[0].receivers == ("c1", "c3")


@pytest.mark.parametrize("profile, message", [
    ({"Name": "p", "Bandwidth": 0}, "QosProfiles[2].Bandwidth 0: must be 1-"),
    ({"Name": "p", "Dscp": 64}, "QosProfiles[2].Dscp 64: must be 0-63"),
    ({"Name": "p", "Bandwidth": "fast"}, "QosProfiles[2].Bandwidth 'fast': expected kbit/s"),
    ({"Name": "p", "Burst": 10, "Dscp": 1}, "QosProfiles[2].Burst 10: a burst needs a Bandwidth"),
    ({"Name": "p"}, 'QosProfiles[2]: QoS profile "p" sets neither Bandwidth nor Dscp'),
    ({"Name": "gold", "Dscp": 1}, 'QosProfiles[2].Name "gold": duplicate name'),
    ({"Name": "p", "Rate": 1}, "QosProfiles[2].Rate: unknown key"),
])
def test_bad_profiles_are_named_by_field(profile, message) -> None:
    d = doc()
    d["Tenants"][0]["QosProfiles"].append(profile)
    assert message in problems(d)


def test_unknown_profile_references_are_named() -> None:
    d = doc()
    d["Tenants"][0]["Networks"][0]["Endpoints"][1]["QosProfile"] = "platinum"
    assert ('Networks[0].Endpoints[1].QosProfile "platinum": no such QoS profile in tenant '
            '"tenant-one"') in problems(d)


@pytest.mark.parametrize("group, message", [
    ({"Address": "10.1.1.1"}, 'Groups[1].Address "10.1.1.1": not a multicast address'),
    ({"Address": "224.0.0.251"}, "link-local (224.0.0.0/24 always floods)"),
    ({"Address": "239.1.1.1"}, 'Groups[1].Address "239.1.1.1": group listed twice'),
    ({"Address": "239.2.2.2", "Receivers": ["nobody"]},
     'Receivers[0] "nobody": no endpoint of container "nobody" in this network'),
])
def test_bad_multicast_groups_are_named(group, message) -> None:
    d = doc()
    d["Tenants"][0]["Networks"][0]["Multicast"]["Groups"].append(group)
    assert message in problems(d)


def test_resolved_specs_carry_profiles_and_multicast(store) -> None:
    r = read_resolved(store)
    assert {p.name for p in r.qos_profiles} == {"gold", "bronze"}
    net = r.networks[0]
    assert net.qos_profile == "bronze" and net.multicast.snooping
    assert {g.name: g.qos_profile for g in r.groups} == {"video": "gold"}


def test_a_used_profile_cannot_be_deleted_alone(store) -> None:
    gone = {"Tenants": [{"Name": T, "QosProfiles": [{"Name": "gold"}]}]}
    with pytest.raises(ValidationError) as exc:
        apply_config(store, load_document(gone), "delete")
    assert 'QoS profile "gold" of tenant "tenant-one": still used by 1 endpoint group' in \
        str(exc.value)
    assert store.get(keys.qos_profile(T, "gold")) is not None


def test_a_profile_goes_with_its_users_in_one_write(store) -> None:
    d = doc()
    d["Tenants"][0]["QosProfiles"] = [p for p in d["Tenants"][0]["QosProfiles"]
                                      if p["Name"] != "gold"]
    del d["Tenants"][0]["EndpointGroups"][0]["QosProfile"]
    apply_config(store, load_config(d))
    assert store.get(keys.qos_profile(T, "gold")) is None
    assert store.get(keys.qos_users(T, "gold")) is None


def test_users_are_counted_per_kind_and_follow_changes(store) -> None:
    def users(p):
        kv = store.get(keys.qos_users(T, p))
        return json.loads(kv.value) if kv else None

    assert users("bronze") == {"networks": 1}
    add = {"Tenants": [{"Name": T, "Networks": [{"Name": "orange", "Endpoints": [
        {"Container": "c2", "QosProfile": "bronze"}, {"Container": "c4", "QosProfile": "gold"}]}
    ]}]}
    apply_config(store, load_document(add), "add")
    assert users("bronze") == {"endpoints": 1, "networks": 1}
    assert users("gold") == {"endpoint groups": 1, "endpoints": 1}
    unref = copy.deepcopy(add)
    for e in unref["Tenants"][0]["Networks"][0]["Endpoints"]:
        e["QosProfile"] = ""
    apply_config(store, load_document(unref), "add")
    assert users("bronze") == {"networks": 1}
    spec = {e.id: e for e in read_resolved(store).endpoints}
    assert spec["orange-c2"].qos_profile is None


def test_a_profile_is_replaced_whole_and_checked_again(store) -> None:
    change = {"Tenants": [{"Name": T, "QosProfiles": [{"Name": "gold", "Bandwidth": "20mbps"}]}]}
    apply_config(store, load_document(change), "add")
    gold = json.loads(store.get(keys.qos_profile(T, "gold")).value)
    assert (gold["bandwidth"], gold["burst"], gold["dscp"]) == (20000, None, None)
    empty = {"Tenants": [{"Name": T, "QosProfiles": [{"Name": "gold"}]}]}
    with pytest.raises(ValidationError) as exc:
        apply_config(store, load_document(empty), "add")
    assert 'QoS profile "gold" sets neither Bandwidth nor Dscp' in str(exc.value)


def test_receivers_must_be_endpoints_of_the_network_in_the_write_path(store) -> None:
    add = {"Tenants": [{"Name": T, "Networks": [{"Name": "orange", "Multicast": {
        "Snooping": True, "Groups": [{"Address": "239.9.9.9", "Receivers": ["c2", "ghost"]}]}}]}]}
    with pytest.raises(ValidationError) as exc:
        apply_config(store, load_document(add), "add")
    assert 'Receivers[1] "ghost": no endpoint of container "ghost" in this network' in \
        str(exc.value)
    add["Tenants"][0]["Networks"][0]["Multicast"]["Groups"][0]["Receivers"] = ["c2"]
    apply_config(store, load_document(add), "add")
    mc = read_resolved(store).networks[0].multicast
    assert [(g.address, g.receivers) for g in mc.groups] == [("239.9.9.9", ("c2",))]


def test_a_tenant_goes_whole_with_its_profiles(store) -> None:
    apply_config(store, load_document({"Tenants": [{"Name": T}]}), "delete")
    assert not [k for k in store.snapshot(keys.ROOT).items if "qos" in k]
