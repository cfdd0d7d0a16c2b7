"""Endpoint groups and policies through the write path: ids, zones, membership, references."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from allocator.write import apply_config, delete_object
from intent import keys
from intent.errors import NotFoundError, ValidationError
from intent.loader import load_config, load_document
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "policy_web_app.json"


def doc() -> dict:
    return json.loads(EXAMPLE.read_text())


def stored(store: MemoryStore, key: str) -> dict | None:
    kv = store.get(key)
    return json.loads(kv.value) if kv else None


@pytest.fixture
def store() -> MemoryStore:
    s = MemoryStore()
    apply_config(s, load_config(doc()))
    return s


def test_groups_get_ids_networks_get_zones_endpoints_their_group(store) -> None:
    web = stored(store, keys.state_group("tenant-one", "web"))
    app = stored(store, keys.state_group("tenant-one", "app"))
    assert web["id"] and app["id"] and web["id"] != app["id"]
    assert web["policies"] == ["web-in"] and app["policies"] == []
    zones = {n.name: n.zone for n in read_resolved(store).networks}
    assert all(zones.values()) and len(set(zones.values())) == 2
    groups = {e.id: e.group for e in read_resolved(store).endpoints}
    assert groups == {"orange-c1": "web", "orange-c2": "app", "orange-c3": None,
                      "purple-c4": None}
    assert stored(store, keys.members("tenant-one", "web")) == {"count": 1}
    policy = stored(store, keys.policy("tenant-one", "web-in"))
    assert [r["id"] for r in policy["rules"]] == [1, 2, 3, 4]
    assert policy["rules"][3]["port_lo"] == 5000 and policy["rules"][3]["port_hi"] == 5010


def test_a_rule_is_added_and_deleted_by_id_with_a_partial_document(store) -> None:
    add = {"Tenants": [{"Name": "tenant-one", "Policies": [{"Name": "web-in", "Rules": [
        {"Id": 9, "Priority": 20, "Direction": "in", "FromEndpointGroup": "app",
         "Protocol": "tcp", "Port": 443, "Action": "allow"}]}]}]}
    res = apply_config(store, load_document(add), "add")
    assert res.summary == [] or res.changed
    ids = [r["id"] for r in stored(store, keys.policy("tenant-one", "web-in"))["rules"]]
    assert ids == [1, 2, 3, 4, 9]
    apply_config(store, load_document(add), "delete")
    ids = [r["id"] for r in stored(store, keys.policy("tenant-one", "web-in"))["rules"]]
    assert ids == [1, 2, 3, 4]
    with pytest.raises(NotFoundError, match='rule 9 does not exist in policy "web-in"'):
        apply_config(store, load_document(add), "delete")


def test_moving_an_endpoint_between_groups_moves_its_membership(store) -> None:
    move = {"Tenants": [{"Name": "tenant-one", "Networks": [{"Name": "orange", "Endpoints": [
        {"Container": "c1", "EndpointGroup": "app"}]}]}]}
    apply_config(store, load_document(move), "add")
    assert {e.id: e.group for e in read_resolved(store).endpoints}["orange-c1"] == "app"
    assert stored(store, keys.members("tenant-one", "web")) is None
    assert stored(store, keys.members("tenant-one", "app")) == {"count": 2}
    out = copy.deepcopy(move)
    out["Tenants"][0]["Networks"][0]["Endpoints"][0]["EndpointGroup"] = None
    apply_config(store, load_document(out), "add")
    assert {e.id: e.group for e in read_resolved(store).endpoints}["orange-c1"] is None
    assert stored(store, keys.members("tenant-one", "app")) == {"count": 1}


def test_a_group_in_use_cannot_go_unless_its_members_go_too(store) -> None:
    gone = {"Tenants": [{"Name": "tenant-one", "EndpointGroups": [{"Name": "web"}]}]}
    with pytest.raises(ValidationError) as info:
        apply_config(store, load_document(gone), "delete")
    assert info.value.problems == [
        'endpoint group "web" of tenant "tenant-one": still used by 1 endpoint (move or '
        "delete them in the same write)"]
    d = doc()
    d["Tenants"][0]["EndpointGroups"] = [g for g in d["Tenants"][0]["EndpointGroups"]
                                         if g["Name"] != "web"]
    d["Tenants"][0]["Networks"][0]["Endpoints"][0].pop("EndpointGroup")
    apply_config(store, load_config(d))  # desired state: the member moves out with it
    assert stored(store, keys.state_group("tenant-one", "web")) is None
    assert stored(store, keys.members("tenant-one", "web")) is None


def test_a_policy_still_applied_cannot_go(store) -> None:
    gone = {"Tenants": [{"Name": "tenant-one", "Policies": [{"Name": "web-in"}]}]}
    with pytest.raises(ValidationError, match='still applied by endpoint group "web"'):
        apply_config(store, load_document(gone), "delete")


def test_references_are_checked_against_the_stored_tenant(store) -> None:
    bad = {"Tenants": [{"Name": "tenant-one",
                        "EndpointGroups": [{"Name": "db", "Policies": ["nope"]}],
                        "Policies": [{"Name": "db-in", "Rules": [
                            {"Id": 1, "Priority": 5, "Direction": "in",
                             "FromEndpointGroup": "ghost", "Action": "allow"},
                            {"Id": 2, "Priority": 5, "Direction": "in",
                             "FromNetwork": "nowhere", "Action": "allow"}]}],
                        "Networks": [{"Name": "orange", "Endpoints": [
                            {"Container": "c9", "EndpointGroup": "missing"}]}]}]}
    before = {kv.key: kv.value for kv in store.list(keys.ROOT)}
    with pytest.raises(ValidationError) as info:
        apply_config(store, load_document(bad), "add")
    assert sorted(info.value.problems) == sorted([
        'Tenants[0].EndpointGroups[0].Policies[0] "nope": no such policy in tenant '
        '"tenant-one"',
        'Tenants[0].Policies[0].Rules[0].FromEndpointGroup "ghost": no such endpoint group in '
        'tenant "tenant-one"',
        'Tenants[0].Policies[0].Rules[1].FromNetwork "nowhere": no such network in tenant '
        '"tenant-one"',
        'Tenants[0].Networks[0].Endpoints[0].EndpointGroup "missing": no such endpoint group '
        'in tenant "tenant-one"'])
    assert {kv.key: kv.value for kv in store.list(keys.ROOT)} == before


def test_two_tenants_may_use_the_same_group_and_policy_names(store) -> None:
    other = doc()
    t = other["Tenants"][0]
    t.update(Name="tenant-two", Vxlans="20001-20100")
    for n in t["Networks"]:
        n["Name"] = n["Name"] + "-2"
    t["Policies"][0]["Rules"][3]["ToNetwork"] = "purple-2"
    apply_config(store, load_document({"Tenants": [t]}), "add")
    a = stored(store, keys.state_group("tenant-one", "web"))["id"]
    b = stored(store, keys.state_group("tenant-two", "web"))["id"]
    assert a != b


def test_deleting_the_tenant_releases_its_groups_and_zones(store) -> None:
    first = stored(store, keys.state_group("tenant-one", "web"))["id"]
    delete_object(store, "tenant", "tenant-one")
    left = [kv.key for kv in store.list(keys.ROOT) if kv.key.startswith((keys.ALLOC,
                                                                          keys.STATE))]
    assert left == []
    apply_config(store, load_config(doc()))
    assert stored(store, keys.state_group("tenant-one", "web"))["id"] == first  # released


def rule_problems(*rules: dict) -> list[str]:
    d = doc()
    d["Tenants"][0]["Policies"][0]["Rules"] = list(rules)
    with pytest.raises(ValidationError) as info:
        load_config(d)
    return info.value.problems


def test_every_rule_problem_names_its_field() -> None:
    base = {"Id": 1, "Priority": 5, "Direction": "in", "Action": "allow"}
    assert rule_problems({**base, "ToEndpointGroup": "app"}) == [
        "Tenants[0].Policies[0].Rules[0].ToEndpointGroup: a peer of out rules (this rule is "
        "in; use FromEndpointGroup)"]
    assert rule_problems({**base, "Protocol": "icmp", "Port": 80}) == [
        "Tenants[0].Policies[0].Rules[0].Port: ports need Protocol tcp or udp (got icmp)"]
    assert rule_problems({**base, "FromIpAddress": "11.1.0.1/24"}) == [
        'Tenants[0].Policies[0].Rules[0].FromIpAddress "11.1.0.1/24": host bits set (did you '
        'mean "11.1.0.0/24"?)']
    assert rule_problems({**base, "FromIpAddress": "11.1.0/24"})[0].endswith(
        'not an IPv4 CIDR like "11.1.0.0/24"')
    assert rule_problems(base, {**base, "Priority": 7}) == [
        'Tenants[0].Policies[0].Rules[1].Id 1: rule id used twice in policy "web-in" (also '
        "Tenants[0].Policies[0].Rules[0])"]
    assert rule_problems({**base, "Priority": 0}) == [
        "Tenants[0].Policies[0].Rules[0].Priority 0: outside 1-100"]
    assert rule_problems({**base, "Protocol": "gre"}) == [
        'Tenants[0].Policies[0].Rules[0].Protocol "gre": expected tcp, udp, icmp or an IP '
        "protocol number 0-255"]
    assert rule_problems({**base, "Protocol": "tcp", "Port": "90-80"})[0].endswith(
        "ports are 1-65535, the range start not above its end")
    assert rule_problems({**base, "FromNetwork": "orange", "FromEndpointGroup": "app"}) == [
        "Tenants[0].Policies[0].Rules[0]: at most one peer per rule (got FromEndpointGroup, "
        "FromNetwork)"]
