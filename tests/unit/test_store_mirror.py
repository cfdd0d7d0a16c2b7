"""Small writes that read from the controller's copy of the store (ryu_apps.mirror): right when
the copy is current, and still right (planned again from the store) when it is behind."""

from __future__ import annotations

import json

import pytest

from allocator.write import apply_config, create_endpoints, delete_object
from intent import keys
from intent.errors import NotFoundError
from intent.loader import load_config
from intent.model import EndpointConfig
from intent.store_memory import MemoryStore
from ryu_apps.mirror import StoreMirror
from tests.unit.test_write_path import CountingStore, eps, tenant


def snapshot_copy(store) -> StoreMirror:
    copy = StoreMirror(store)
    copy.load(store.read(prefixes=[keys.ROOT]))
    copy.settle(store.revision(), holding=False)
    return copy


def ip_of(store, eid: str) -> str:
    return json.loads(store.get(keys.state_endpoint(eid)).value)["ip"]


def test_a_current_copy_leaves_only_the_transaction_to_the_store():
    store = CountingStore()
    apply_config(store, load_config(tenant(eps(2))))
    copy = snapshot_copy(store)
    store.round_trips = store.txns = 0
    res = create_endpoints(store, [EndpointConfig("n1", "x", "h1")], copy=copy)
    assert res.summary == ["created endpoint n1-x"]
    assert (store.round_trips, store.txns, copy.hits) == (0, 1, 1)
    assert ip_of(store, "n1-x") == "10.0.0.4"
    # the copy has not seen that write yet: the next one reads the store
    store.round_trips = 0
    create_endpoints(store, [EndpointConfig("n1", "y", "h1")], copy=copy)
    assert store.round_trips == 1 and ip_of(store, "n1-y") == "10.0.0.5"


def test_a_copy_behind_another_writer_costs_a_retry_never_a_wrong_address():
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(2))))
    copy = snapshot_copy(store)
    create_endpoints(store, [EndpointConfig("n1", "other", "h1")])  # not in the copy
    create_endpoints(store, [EndpointConfig("n1", "x", "h1")], copy=copy)
    assert ip_of(store, "n1-other") == "10.0.0.4" and ip_of(store, "n1-x") == "10.0.0.5"


@pytest.mark.parametrize("stale", ["network created", "endpoint deleted"])
def test_a_refusal_decided_on_a_stale_copy_is_checked_against_the_store(stale):
    store = MemoryStore()
    doc = tenant(eps(2))
    if stale == "network created":
        doc["Tenants"][0]["Networks"] = []
        apply_config(store, load_config(doc))
        copy = snapshot_copy(store)  # knows no network n1
        apply_config(store, load_config(tenant(eps(2))))
    else:
        apply_config(store, load_config(doc))
        copy = snapshot_copy(store)  # still holds n1-c1
        delete_object(store, "endpoint", "n1-c1")
    eid = "c9" if stale == "network created" else "c1"
    res = create_endpoints(store, [EndpointConfig("n1", eid, "h1")], copy=copy)
    assert res.summary == [f"created endpoint n1-{eid}"]


def test_a_refusal_the_store_confirms_is_answered():
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(2))))
    copy = snapshot_copy(store)
    with pytest.raises(NotFoundError, match='network "ghost" does not exist'):
        create_endpoints(store, [EndpointConfig("ghost", "x", "h1")], copy=copy)
    assert copy.hits == 1 and copy.misses == 0  # then the store said the same


def test_the_copy_is_not_used_while_a_large_write_is_held_back():
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(1))))
    copy = snapshot_copy(store)
    copy.settle(store.revision(), holding=True)
    copy.read([keys.network("n1")])
    assert copy.misses == 1 and copy.hits == 0


def test_events_keep_the_copy_current_and_an_endpoint_present_is_read_from_the_store():
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(1))))
    copy = StoreMirror(store)
    copy.load(store.read(prefixes=[keys.ROOT]))
    watch = store.watch(keys.ROOT, store.revision() + 1)
    create_endpoints(store, [EndpointConfig("n1", "x", "h1")])
    events = []
    for batch in watch.batches():
        events += batch
        if any(e.key == keys.state_endpoint("n1-x") for e in batch):
            break
    watch.close()
    for ev in events:
        copy.apply(ev)
    copy.settle(events[-1].mod_revision, holding=False)
    pool = copy.read([keys.ip_pool("n1")])  # a value the copy keeps
    assert pool.value(keys.ip_pool("n1")) == store.get(keys.ip_pool("n1")).value
    assert copy.hits == 1
    got = copy.read([keys.endpoint("n1-x")])  # present, its value not kept: from the store
    assert got.value(keys.endpoint("n1-x")) == store.get(keys.endpoint("n1-x")).value
    assert copy.misses == 1
    assert copy.read([keys.endpoint("n1-nope")]).items == {} and copy.hits == 2
