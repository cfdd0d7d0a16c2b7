"""Allocation and intent writes against the in-memory store."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.pools import mac_for, next_free_id, next_free_ip, next_free_subnet
from allocator.write import apply_bindings, apply_config, delete_object
from intent import keys
from intent.errors import NotFoundError, PoolExhausted, ValidationError
from intent.loader import load_bindings, load_config
from intent.resolved import read_resolved
from intent.store_memory import MemoryStore
from tests.examples import complete_examples

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

DOC = {
    "Hosts": [{"Name": "host1"}, {"Name": "host2"}],
    "Tenants": [{
        "Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
        "AllocSubnetLen": 24, "Vxlans": "10001-10003",
        "Networks": [
            {"Name": "orange", "Endpoints": [{"Container": "a", "Host": "host1"},
                                             {"Container": "b", "Host": "host2"}]},
            {"Name": "purple", "PktTag": 10001, "SubnetCIDR": "11.1.0.0/24",
             "Endpoints": [{"Container": "c", "Host": "host1", "IpAddress": "11.1.0.2"},
                           {"Container": "d", "Host": "host2"}]},
        ],
    }],
}


def cfg(d=None):
    return load_config(copy.deepcopy(d or DOC))


def dump(store: MemoryStore) -> dict[str, str]:
    return {kv.key: kv.value for kv in store.list(keys.ROOT) if kv.key != keys.CONFIG_REV}


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


def test_pools_pick_lowest_free_and_name_the_pool_when_exhausted() -> None:
    assert next_free_id([(5, 7)], {5}, "p") == 6
    assert next_free_subnet("10.0.0.0/16", 24, ["10.0.0.0/24", "10.0.2.0/23"], "p") == \
        "10.0.1.0/24"
    assert next_free_ip("10.0.0.0/29", "10.0.0.1", {"10.0.0.2"}, "p") == "10.0.0.3"
    with pytest.raises(PoolExhausted) as info:
        next_free_id([(5, 5)], {5}, 'tenant "t" Vlans')
    assert info.value.pool == 'tenant "t" Vlans'
    assert mac_for("10.1.2.3") == "02:00:0a:01:02:03"


def test_explicit_values_are_reserved_before_automatic_allocation(store: MemoryStore) -> None:
    apply_config(store, cfg())
    r = read_resolved(store)
    nets = {n.name: n for n in r.networks}
    eps = {e.id: e for e in r.endpoints}
    # purple holds 10001 and 11.1.0.0/24 explicitly: orange must get others
    assert nets["purple"].tag == 10001 and nets["orange"].tag == 10002
    assert nets["purple"].subnet == "11.1.0.0/24" and nets["orange"].subnet == "11.1.1.0/24"
    assert nets["orange"].gateway == "11.1.1.1"
    # c holds .2 statically; d must not get it; gateway .1 never handed out
    assert eps["purple-c"].ip == "11.1.0.2" and eps["purple-d"].ip == "11.1.0.3"
    assert {eps["orange-a"].ip, eps["orange-b"].ip} == {"11.1.1.2", "11.1.1.3"}
    assert eps["orange-a"].mac == mac_for(eps["orange-a"].ip)


def test_applying_twice_changes_nothing(store: MemoryStore) -> None:
    first = apply_config(store, cfg())
    before = dump(store)
    second = apply_config(store, cfg())
    assert first.changed and not second.changed
    assert "no change" in second.summary[0]
    assert dump(store) == before


def test_desired_state_removes_and_releases(store: MemoryStore) -> None:
    apply_config(store, cfg())
    d = copy.deepcopy(DOC)
    d["Tenants"][0]["Networks"] = d["Tenants"][0]["Networks"][:1]  # drop purple
    d["Tenants"][0]["Networks"][0]["Endpoints"].pop()  # drop orange-b
    result = apply_config(store, load_config(d))
    assert "deleted network purple" in result.summary
    assert "deleted endpoint orange-b" in result.summary
    left = dump(store)
    assert not any("purple" in k for k in left)
    assert keys.alloc_vni(10001) not in left
    assert not any(k.startswith(keys.alloc_ip_prefix("orange")) and k.endswith(".3")
                   for k in left)


def test_endpoints_keep_their_ip_while_others_come_and_go(store: MemoryStore) -> None:
    apply_config(store, cfg())
    b_ip = {e.id: e.ip for e in read_resolved(store).endpoints}["orange-b"]
    delete_object(store, "endpoint", "orange-a")
    assert {e.id: e.ip for e in read_resolved(store).endpoints}["orange-b"] == b_ip


def test_tenant_delete_and_recreate(store: MemoryStore) -> None:
    apply_config(store, cfg())
    first = dump(store)
    delete_object(store, "tenant", "t1")
    assert not any(k.startswith((keys.STATE, keys.ALLOC)) for k in dump(store))
    apply_config(store, cfg())
    assert {k for k in dump(store) if k.startswith(keys.STATE)} == \
        {k for k in first if k.startswith(keys.STATE)}


def test_exhausted_vni_pool_is_a_typed_error_and_writes_nothing(store: MemoryStore) -> None:
    apply_config(store, cfg())
    before = dump(store)
    d = copy.deepcopy(DOC)
    d["Tenants"][0]["Networks"] += [{"Name": "n3"}, {"Name": "n4"}]
    with pytest.raises(PoolExhausted) as info:
        apply_config(store, load_config(d))
    assert info.value.pool == 'tenant "t1" Vxlans'
    assert dump(store) == before


def test_exhausted_ip_pool() -> None:
    store = MemoryStore()
    d = copy.deepcopy(DOC)
    d["Tenants"][0]["AllocSubnetLen"] = 30  # two host addresses: gateway + one endpoint
    with pytest.raises(PoolExhausted) as info:
        apply_config(store, load_config(d))
    assert info.value.pool.startswith('network "orange" subnet 11.1.')


def test_add_and_delete_incremental(store: MemoryStore) -> None:
    apply_config(store, cfg())
    add = {"Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
                        "AllocSubnetLen": 24, "Vxlans": "10001-10003",
                        "Networks": [{"Name": "orange", "Endpoints": [
                            {"Container": "e", "Host": "host1"}]}]}]}
    result = apply_config(store, load_config(add), "add")
    assert result.summary == ["created endpoint orange-e"]
    ids = {e.id for e in read_resolved(store).endpoints}
    assert {"orange-a", "orange-b", "orange-e", "purple-c", "purple-d"} == ids
    apply_config(store, load_config(add), "delete")
    assert "orange-e" not in {e.id for e in read_resolved(store).endpoints}
    with pytest.raises(NotFoundError):
        apply_config(store, load_config(add), "delete")


def test_conflict_with_stored_intent_is_rejected_whole(store: MemoryStore) -> None:
    apply_config(store, cfg())
    before = dump(store)
    other = {"Tenants": [{"Name": "t2", "Vxlans": "10003-10010", "SubnetPool": "12.0.0.0/16",
                          "AllocSubnetLen": 24, "DefaultNetType": "vxlan",
                          "Networks": [{"Name": "orange"}]}]}
    with pytest.raises(ValidationError) as info:
        apply_config(store, load_config(other), "add")
    text = "\n".join(info.value.problems)
    assert 'duplicate network name' in text and "overlaps 10001-10003" in text
    assert dump(store) == before


def test_late_host_bindings(store: MemoryStore) -> None:
    apply_config(store, load_config(EXAMPLES / "late_host_bindings.json"))
    assert {e.host for e in read_resolved(store).endpoints} == {None}
    result = apply_bindings(store, load_bindings(EXAMPLES / "late_host_bindings.bindings.json"))
    assert result.changed
    hosts = {e.container: e.host for e in read_resolved(store).endpoints}
    assert hosts == {"myContainer1": "host1", "myContainer2": "host2"}
    with pytest.raises(NotFoundError):
        apply_bindings(store, load_bindings([{"Container": "ghost", "Host": "host1"}]))


def test_overlapping_subnets_across_tenants(store: MemoryStore) -> None:
    apply_config(store, load_config(EXAMPLES / "two_tenants_overlapping_subnets.json"))
    r = read_resolved(store)
    assert {n.subnet for n in r.networks} == {"10.1.1.0/24"}
    assert sorted(e.ip for e in r.endpoints) == ["10.1.1.10", "10.1.1.10", "10.1.1.11",
                                                 "10.1.1.11"]


@pytest.mark.parametrize("path", complete_examples(), ids=lambda p: p.name)
def test_every_example_resolves(path: Path) -> None:
    store = MemoryStore()
    assert apply_config(store, load_config(path)).changed
    r = read_resolved(store)
    assert len(r.endpoints) == len(load_config(path).endpoints())
    for net in r.networks:
        ips = [e.ip for e in r.endpoints if e.network == net.name]
        assert len(ips) == len(set(ips)) and net.gateway not in ips


def _lowest_free_block(pool: str, length: int, used: list[str]) -> str | None:
    """The reference: try every aligned block of the pool against the set of used addresses."""
    from netaddr import IPAddress, IPNetwork, IPSet

    taken, size, base = IPSet(IPNetwork(c) for c in used), 1 << (32 - length), IPNetwork(pool)
    for start in range(base.first, base.last - size + 2, size):
        block = IPNetwork(f"{IPAddress(start)}/{length}")
        if not IPSet([block]) & taken:
            return str(block)
    return None


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 255), st.integers(0, 255),
                          st.sampled_from([15, 16, 20, 22, 24, 25, 28, 32])), max_size=12),
       st.sampled_from([20, 22, 24, 26]), st.sampled_from(["10.0.0.0/14", "10.1.0.0/16",
                                                           "10.2.128.0/17"]))
def test_next_free_subnet_is_the_lowest_free_aligned_block(spans, length, pool) -> None:
    from netaddr import IPNetwork

    used = [str(IPNetwork(f"10.{a}.{b}.{c}/{n}").cidr) for a, b, c, n in spans]
    try:
        got = next_free_subnet(pool, length, used, "p")
    except PoolExhausted:
        got = None
    assert got == _lowest_free_block(pool, length, used)
