"""The incremental write path: partial documents, cost per write, large writes, write ids."""

from __future__ import annotations

import copy
import json
import threading
from pathlib import Path

import pytest

from allocator import bulk
from allocator.write import Change, Writer, apply_config, delete_object
from intent import keys
from intent.consistent import WatchGate, read_consistent, watch_start
from intent.errors import ConflictError, ValidationError
from intent.loader import load_config, load_document
from intent.resolved import read_resolved
from intent.store import Put, StoreUnavailable
from intent.store_memory import MemoryStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
STOCK = {"max_txn_ops": 128, "max_request_bytes": 1536 * 1024}  # etcd 3.4 defaults


def dump(store: MemoryStore) -> dict[str, str]:
    return {kv.key: kv.value for kv in store.list(keys.ROOT)
            if kv.key != keys.CONFIG_REV and not kv.key.startswith(keys.WRITES)}


def tenant(endpoints: list[dict], name: str = "t1", net: str = "n1") -> dict:
    return {"Tenants": [{"Name": name, "DefaultNetType": "vxlan", "SubnetPool": "10.0.0.0/8",
                         "AllocSubnetLen": 16, "Vxlans": "100-200",
                         "Networks": [{"Name": net, "Endpoints": endpoints}]}]}


def eps(n: int, host: str = "h1", prefix: str = "c") -> list[dict]:
    return [{"Container": f"{prefix}{i}", "Host": host} for i in range(n)]


# --------------------------------------------------------------------------- partial documents


def test_the_originals_partial_tenant_adds_and_deletes_just_that_endpoint() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(EXAMPLES / "two_hosts_multiple_vxlan_nets.json"))
    before = dump(store)
    partial = load_document(EXAMPLES / "two_hosts_multiple_vxlan_add_del_ep.json")
    added = apply_config(store, partial, "add")
    assert added.summary == ["created endpoint orange-myContainer2"]
    got = {e.id: e for e in read_resolved(store).endpoints}
    assert got["orange-myContainer2"].host == "host1"
    assert got["orange-myContainer2"].ip == "11.1.0.4"  # after myContainer1 .2 and 3 .3
    t = json.loads(store.get(keys.tenant("tenant-one")).value)
    assert t["default_net_type"] == "vxlan" and t["vxlans"] == [[10001, 14000]]
    removed = apply_config(store, partial, "delete")
    assert removed.summary == ["deleted endpoint orange-myContainer2"]
    assert {k: v for k, v in dump(store).items() if not k.startswith(keys.ALLOC_POOL)} == \
        {k: v for k, v in before.items() if not k.startswith(keys.ALLOC_POOL)}


def test_a_partial_document_updates_only_the_fields_it_gives() -> None:
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(1))))
    apply_config(store, load_document({"Tenants": [{"Name": "t1", "Vxlans": "100-300"}]}), "add")
    t = json.loads(store.get(keys.tenant("t1")).value)
    assert t["vxlans"] == [[100, 300]] and t["subnet_pool"] == "10.0.0.0/8"
    assert t["default_net_type"] == "vxlan"


def test_a_partial_new_tenant_is_checked_once_merged() -> None:
    store = MemoryStore()
    with pytest.raises(ValidationError) as info:
        apply_config(store, load_document({"Tenants": [{"Name": "new", "Networks": [
            {"Name": "n"}]}]}), "add")
    assert info.value.problems == [
        'Tenants[0].Networks[0]: vlan network "n" has no PktTag and its tenant "new" has no '
        'Vlans range to allocate one from',
        'Tenants[0].Networks[0]: network "n" has no SubnetCIDR and its tenant "new" has no '
        'SubnetPool and AllocSubnetLen to allocate one from']
    assert dump(store) == {}


# --------------------------------------------------------------------------- names and ids


def test_names_must_be_safe_key_segments() -> None:
    d = tenant([{"Container": "../x", "Host": "h1"}], name="a/b", net="n..1")
    with pytest.raises(ValidationError) as info:
        load_config(d)
    found = "\n".join(info.value.problems)
    assert 'Tenants[0].Name "a/b": not a valid name' in found
    assert 'Tenants[0].Networks[0].Endpoints[0].Container "../x": not a valid name' in found
    assert "Networks[0].Name" not in found  # "n..1" is a valid name (dots are allowed)


def test_colliding_endpoint_ids_are_refused_naming_both() -> None:
    d = tenant([{"Container": "b-c"}], net="a")
    d["Tenants"][0]["Networks"].append({"Name": "a-b", "Endpoints": [{"Container": "c"}]})
    with pytest.raises(ValidationError) as info:
        load_config(d)
    assert info.value.problems == [
        'Tenants[0].Networks[1].Endpoints[0]: endpoint id "a-b-c" of network "a-b" and '
        'container "c" collides with network "a" and container "b-c" '
        "(Tenants[0].Networks[0].Endpoints[0]); rename one of them"]
    store = MemoryStore()
    apply_config(store, load_config(tenant([{"Container": "b-c"}], net="a")))
    later = tenant([], net="a-b")
    later["Tenants"][0]["Networks"][0]["Endpoints"] = [{"Container": "c"}]
    with pytest.raises(ValidationError) as info:
        apply_config(store, load_document(later), "add")
    assert 'collides with network "a" and container "b-c"' in info.value.problems[0]


# --------------------------------------------------------------------------- cost per write


class CountingStore(MemoryStore):
    """Counts the keys every read returns."""

    def __init__(self, **kw) -> None:
        super().__init__(**kw)
        self.keys_read = 0
        self.round_trips = 0

    def read(self, keys=(), prefixes=(), revision=None):
        snap = super().read(keys, prefixes, revision)
        self.keys_read += len(snap.items)
        self.round_trips += 1
        return snap

    def key_names(self, prefix, revision=None):
        rev, names = super().key_names(prefix, revision)
        self.keys_read += len(names)
        return rev, names

    txns = 0
    written: list[str] = []

    def txn(self, compares, ops, *args, **kw):
        self.txns += 1
        res = super().txn(compares, ops, *args, **kw)
        if res.succeeded:
            self.written = self.written + [o.key for o in ops]
        return res


@pytest.mark.parametrize("others", [0, 300])
def test_adding_one_endpoint_reads_the_same_whatever_the_store_holds(others: int) -> None:
    store = CountingStore(**STOCK)
    apply_config(store, load_config(tenant(eps(others, prefix="old"))))
    store.keys_read = store.round_trips = store.txns = 0
    store.written = []
    add = apply_config(store, load_document({"Tenants": [{"Name": "t1", "Networks": [
        {"Name": "n1", "Endpoints": [{"Container": "new", "Host": "h2"}]}]}]}), "add")
    assert add.summary == ["created endpoint n1-new"]
    # tenant, its index, ranges, network config/state/pool, the lock, candidate addresses
    assert store.keys_read <= 12, store.keys_read
    # the named objects only: the network is unchanged (its spec stands) and the address at
    # the pool's ``next`` is claimed unread, on the condition that its owner key is absent
    assert store.round_trips == 1
    assert store.txns == 1
    assert not [k for k in store.written if "/alloc/subnet/" in k or "/alloc/vni/" in k
                or "/alloc/zone/" in k or k.startswith("/netplugin/config/networks/")]
    assert {e.id: e.ip for e in read_resolved(store).endpoints}["n1-new"] == \
        f"10.0.{(others + 2) // 256}.{(others + 2) % 256}"


def test_an_address_claimed_unread_but_taken_is_read_and_skipped_on_the_retry() -> None:
    store = CountingStore()
    base = tenant(eps(1))  # n1-c0 holds 10.9.0.2
    base["Tenants"][0]["Networks"][0]["SubnetCIDR"] = "10.9.0.0/24"
    apply_config(store, load_config(base))
    static = copy.deepcopy(base)
    static["Tenants"][0]["Networks"][0]["Endpoints"] = [{"Container": "s",
                                                         "IpAddress": "10.9.0.4"}]
    apply_config(store, load_document(static), "add")
    apply_config(store, load_document(tenant([{"Container": "x"}])), "add")
    store.txns = store.round_trips = 0
    store.written = []
    add = apply_config(store, load_document(tenant([{"Container": "y"}])), "add")
    assert add.summary == ["created endpoint n1-y"]
    # the unread claim of 10.9.0.4 failed its compare; the retry read the candidates
    assert store.txns == 2 and store.round_trips == 3
    ips = {e.id: e.ip for e in read_resolved(store).endpoints}
    assert (ips["n1-x"], ips["n1-s"], ips["n1-y"]) == ("10.9.0.3", "10.9.0.4", "10.9.0.5")
    assert json.loads(store.get("/netplugin/alloc/ip/n1/10.9.0.4").value)["owner"] == "n1-s"


def test_a_new_network_beside_an_unchanged_one_never_takes_its_subnet_or_tag() -> None:
    store = MemoryStore()
    one = {"Name": "t1", "DefaultNetType": "vlan", "SubnetPool": "11.1.0.0/16",
           "AllocSubnetLen": 24, "Vlans": "11-28",
           "Networks": [{"Name": "orange", "Endpoints": [{"Container": "a"}]}]}
    apply_config(store, load_config({"Tenants": [one]}))
    two = copy.deepcopy(one)
    two["Networks"].append({"Name": "purple", "Endpoints": [{"Container": "b"}]})
    apply_config(store, load_config({"Tenants": [two]}))  # orange as it was, purple new
    specs = {n: json.loads(store.get(keys.state_network(n)).value) for n in ("orange", "purple")}
    assert specs["orange"]["subnet"] != specs["purple"]["subnet"]
    assert specs["orange"]["tag"] != specs["purple"]["tag"]
    assert specs["orange"]["zone"] != specs["purple"]["zone"]


def test_a_released_address_is_the_next_one_handed_out() -> None:
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(5))))
    delete_object(store, "endpoint", "n1-c1")  # held 10.0.0.3
    apply_config(store, load_document(tenant([{"Container": "x"}])), "add")
    ips = {e.id: e.ip for e in read_resolved(store).endpoints}
    assert ips["n1-x"] == "10.0.0.3"
    apply_config(store, load_document(tenant([{"Container": "y"}])), "add")
    assert {e.id: e.ip for e in read_resolved(store).endpoints}["n1-y"] == "10.0.0.7"


def test_a_static_address_held_by_another_endpoint_is_refused() -> None:
    store = MemoryStore()
    d = tenant(eps(2))
    d["Tenants"][0]["Networks"][0]["SubnetCIDR"] = "10.9.0.0/24"
    apply_config(store, load_config(d))
    before = dump(store)
    clash = copy.deepcopy(d)
    clash["Tenants"][0]["Networks"][0]["Endpoints"] = [{"Container": "z",
                                                        "IpAddress": "10.9.0.3"}]
    with pytest.raises(ValidationError) as info:
        apply_config(store, load_document(clash), "add")
    assert info.value.problems == [
        'Tenants[0].Networks[0].Endpoints[0].IpAddress "10.9.0.3": used by endpoint "n1-c1" '
        'in network "n1"']
    assert dump(store) == before


# --------------------------------------------------------------------------- large writes


def test_five_thousand_endpoints_in_one_write_on_a_stock_etcd() -> None:
    store = MemoryStore(**STOCK)
    result = apply_config(store, load_config(tenant(eps(2500, "h1") + eps(2500, "h2", "d"))))
    assert result.changed and len(read_resolved(store).endpoints) == 5000
    assert store.get(keys.CONFIG_TXN) is None and not store.list(keys.LOCKS)
    ips = [e.ip for e in read_resolved(store).endpoints]
    assert len(set(ips)) == 5000
    again = apply_config(store, load_config(tenant(eps(2500, "h1") + eps(2500, "h2", "d"))))
    assert not again.changed


class PausingStore(MemoryStore):
    """Runs ``hook`` before every transaction (to look at the store between batches)."""

    hook = None

    def txn(self, compares, success, failure=None):
        if self.hook is not None:
            self.hook()
        return super().txn(compares, success, failure)


def test_a_concurrent_reader_never_sees_part_of_a_large_write() -> None:
    store = PausingStore(**STOCK)
    apply_config(store, load_config(tenant(eps(3))))
    seen: list[int] = []
    store.hook = lambda: seen.append(len(read_resolved(store).endpoints))
    apply_config(store, load_config(tenant(eps(600))), "add")
    store.hook = None
    assert len(seen) > 10  # the write took many transactions
    assert set(seen) <= {3, 600}, sorted(set(seen))
    assert len(read_resolved(store).endpoints) == 600


def test_a_watch_releases_a_large_write_only_when_it_is_complete() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(tenant(eps(3))))
    snap = read_consistent(store, prefixes=[keys.ROOT])
    watcher = store.watch(keys.ROOT, watch_start(snap))
    apply_config(store, load_config(tenant(eps(400))), "add")
    gate, released = WatchGate(snap), []
    for ev in watcher:
        out = gate.feed(ev)
        if out:
            released.append(out)
        if ev.key == keys.CONFIG_TXN and ev.type == "delete":
            break
    watcher.close()
    states = [e for batch in released for e in batch if e.key.startswith(keys.STATE_ENDPOINTS)]
    assert len(states) == 397
    assert len([b for b in released if any(e.key.startswith(keys.STATE) for e in b)]) == 1


def test_a_writer_that_dies_half_way_is_rolled_back_by_the_next() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(tenant(eps(3))))
    before = dump(store)
    dying = bulk.LargeWrite(store, "dead" + "0" * 28)
    dying.__enter__()
    dying.write([Put(keys.endpoint(f"n1-ghost{i}"), "{}") for i in range(300)])
    dying._stop.set()  # the writer dies: nobody refreshes its lease
    store.expire_lease(dying.lease.id)
    assert len(read_resolved(store).endpoints) == 3  # readers see the store before it
    apply_config(store, load_document(tenant([{"Container": "after"}])), "add")
    after = dump(store)
    assert not any("ghost" in k for k in after)
    mine = {k for k, v in after.items() if "after" in k + v or k.startswith(keys.ALLOC_POOL)}
    assert {k: v for k, v in after.items() if k not in mine} == \
        {k: v for k, v in before.items() if not k.startswith(keys.ALLOC_POOL)}
    assert store.get(keys.CONFIG_TXN) is None


def test_a_live_large_writer_blocks_small_writes_until_it_commits() -> None:
    store = MemoryStore(**STOCK)
    apply_config(store, load_config(tenant(eps(1))))
    holder = bulk.LargeWrite(store, "a" * 32).__enter__()
    done = threading.Event()

    def small() -> None:
        apply_config(store, load_document(tenant([{"Container": "late"}])), "add")
        done.set()

    t = threading.Thread(target=small)
    t.start()
    assert not done.wait(0.3)  # the small write waits for the lock ...
    holder.commit([])
    holder.__exit__(None, None, None)
    assert done.wait(5)  # ... and lands once it is gone
    t.join()
    assert "n1-late" in {e.id for e in read_resolved(store).endpoints}


# --------------------------------------------------------------------------- write ids


class LosesAnswers(MemoryStore):
    """Applies the next ``lose`` transactions, then raises as if the answer was lost."""

    lose = 0

    def txn(self, compares, success, failure=None):
        res = super().txn(compares, success, failure)
        if self.lose and res.succeeded:
            self.lose -= 1
            raise StoreUnavailable("etcd at memory:// is unreachable")
        return res


def test_a_write_whose_answer_was_lost_is_neither_lost_nor_doubled() -> None:
    store = LosesAnswers()
    apply_config(store, load_config(tenant(eps(1))))
    store.lose = 1
    res = Writer(store).apply(Change("add", load_document(tenant([{"Container": "x"}])),
                                     create_only=frozenset({("endpoint", "n1-x")})))
    assert res.changed and res.summary == ["created endpoint n1-x"]
    assert [e.id for e in read_resolved(store).endpoints].count("n1-x") == 1
    rec = json.loads(store.get(keys.write_record(res.write_id)).value)
    assert rec["id"] == res.write_id


def test_creating_what_exists_is_a_conflict() -> None:
    store = MemoryStore()
    apply_config(store, load_config(tenant(eps(1))))
    with pytest.raises(ConflictError, match='endpoint "n1-c0" exists already'):
        apply_config(store, load_document(tenant(eps(1))), "add",
                     create_only=frozenset({("endpoint", "n1-c0")}))


@pytest.mark.parametrize("n", [31, 100])
def test_one_add_of_many_new_networks_allocates_each_once(n: int) -> None:
    """Every new network asks for its next tag/zone candidate in the same read round (the
    planner used to settle one network per round and gave up after 32)."""
    store = MemoryStore(**STOCK)
    doc = tenant([])
    doc["Tenants"][0]["Networks"] = []
    apply_config(store, load_config(doc))
    add = {"Tenants": [{"Name": "t1", "Networks": [
        {"Name": f"n{i}", "Endpoints": [{"Container": f"c{i}", "Host": "h1"}]}
        for i in range(n)]}]}
    assert apply_config(store, load_document(add), "add").changed
    nets = read_resolved(store).networks
    assert len(nets) == n
    assert len({x.tag for x in nets}) == len({x.zone for x in nets}) == \
        len({x.subnet for x in nets}) == n
    assert len(read_resolved(store).endpoints) == n
