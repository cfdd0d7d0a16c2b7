"""MemoryStore: etcd's semantics (revisions, txn compares, leases, watch history)."""

from __future__ import annotations

import threading

import pytest

from intent.store import (
    Compare,
    Delete,
    LeaseExpired,
    Put,
    StoreError,
    WatchCompacted,
)
from intent.store_etcd import open_store, prefix_range_end
from intent.store_memory import MemoryStore
from tests.watching import first_events


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def collect(watcher, n: int, timeout: float = 5.0) -> list:
    """The first ``n`` events of ``watcher``, read in a thread (fails rather than hangs)."""
    got, errors = first_events(watcher, n, timeout)
    if errors:
        raise errors[0]
    assert len(got) == n, f"watch delivered {len(got)} of {n} events: {got}"
    return got


def test_revisions_versions_and_snapshot():
    s = MemoryStore()
    assert s.revision() == 1
    assert s.put("/a/x", "1") == 2
    assert s.put("/a/x", "2") == 3
    assert s.put("/b/y", "3") == 4
    kv = s.get("/a/x")
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == ("2", 2, 3, 2)
    snap = s.snapshot("/a/")
    assert snap.revision == 4 and list(snap.items) == ["/a/x"] and snap.value("/a/x") == "2"
    assert [kv.key for kv in s.list("/")] == ["/a/x", "/b/y"]
    assert s.get("/nope") is None


def test_delete_prefix_is_one_revision_and_counts():
    s = MemoryStore()
    for k in ("/p/a", "/p/b", "/q/c"):
        s.put(k, "v")
    w = s.watch("/p/")
    assert s.delete("/p/", prefix=True) == 2
    assert s.delete("/p/a") == 0
    assert s.revision() == 5  # the no-op delete did not bump the revision
    events = collect(w, 2)
    assert [(e.type, e.key, e.mod_revision, e.prev_value) for e in events] == [
        ("delete", "/p/a", 5, "v"), ("delete", "/p/b", 5, "v")]
    assert s.get("/q/c") is not None


def test_txn_create_if_absent_and_cas_conflict():
    s = MemoryStore()
    create = [Compare("/k", "version", "=", 0)]
    assert s.txn(create, [Put("/k", "first")]).succeeded
    assert not s.txn(create, [Put("/k", "second")]).succeeded
    assert s.get("/k").value == "first"
    mod = s.get("/k").mod_revision
    assert s.txn([Compare("/k", "mod", "=", mod)], [Put("/k", "cas1")]).succeeded
    # a second writer holding the same stale mod revision loses
    res = s.txn([Compare("/k", "mod", "=", mod)], [Put("/k", "cas2")], [Put("/lost", "1")])
    assert not res.succeeded and res.revision == s.revision()
    assert s.get("/k").value == "cas1" and s.get("/lost").value == "1"


def test_txn_compare_targets_and_ops():
    s = MemoryStore()
    s.put("/k", "b")
    kv = s.get("/k")
    holds = [
        Compare("/k", "value", "=", "b"), Compare("/k", "value", "!=", "a"),
        Compare("/k", "value", ">", "a"), Compare("/k", "value", "<", "c"),
        Compare("/k", "create", "=", kv.create_revision), Compare("/k", "mod", ">", 1),
        Compare("/k", "version", "<", 2), Compare("/missing", "create", "=", 0),
    ]
    for c in holds:
        assert s.txn([c], []).succeeded, c
    # etcd's rule: any value compare on a missing key is false, even "!="
    assert not s.txn([Compare("/missing", "value", "!=", "x")], []).succeeded
    # all compares must hold
    assert not s.txn([holds[0], Compare("/k", "value", "=", "z")], []).succeeded


def test_txn_is_atomic_one_revision_and_rejects_duplicate_keys():
    s = MemoryStore()
    s.put("/old", "1")
    w = s.watch("/")
    res = s.txn([], [Put("/a", "1"), Put("/b", "2"), Delete("/old")])
    assert res.revision == 3
    assert {e.mod_revision for e in collect(w, 3)} == {3}
    with pytest.raises(StoreError, match="duplicate key"):
        s.txn([], [Put("/a", "x"), Put("/a", "y")])
    assert s.get("/a").value == "1"


def test_watch_replays_history_from_a_start_revision_in_order():
    s = MemoryStore()
    s.put("/w/a", "1")  # rev 2
    s.put("/other", "x")  # rev 3
    s.put("/w/a", "2")  # rev 4
    s.delete("/w/a")  # rev 5
    events = collect(s.watch("/w/", start_revision=2), 3)
    assert [(e.type, e.value, e.prev_value, e.mod_revision) for e in events] == [
        ("put", "1", None, 2), ("put", "2", "1", 4), ("delete", None, "2", 5)]


def test_watch_default_start_sees_only_later_writes():
    s = MemoryStore()
    s.put("/w/old", "1")
    w = s.watch("/w/")
    s.put("/w/new", "2")
    assert [e.key for e in collect(w, 1)] == ["/w/new"]


def test_watch_sees_concurrent_writers_in_revision_order_exactly_once():
    s = MemoryStore()
    w = s.watch("/c/")
    writers = [threading.Thread(target=lambda i=i: [s.put(f"/c/{i}/{j}", str(j))
                                                   for j in range(100)]) for i in range(4)]
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    events = collect(w, 400)
    revs = [e.mod_revision for e in events]
    assert revs == sorted(revs) and len(set(revs)) == 400
    for i in range(4):
        assert [e.value for e in events if e.key.startswith(f"/c/{i}/")] == [
            str(j) for j in range(100)]


def test_close_ends_a_blocked_iteration():
    s = MemoryStore()
    w = s.watch("/")
    done = threading.Event()
    t = threading.Thread(target=lambda: (list(w), done.set()), daemon=True)
    t.start()
    w.close()
    assert done.wait(2)


def test_compacted_watch_raises_and_relist_recovers():
    s = MemoryStore()
    for i in range(5):
        s.put(f"/r/{i}", str(i))
    s.compact(s.revision())
    with pytest.raises(WatchCompacted) as err:
        next(iter(s.watch("/r/", start_revision=2)))
    assert err.value.revision == 6
    snap = s.snapshot("/r/")  # the documented recovery: re-list, then watch from there
    w = s.watch("/r/", snap.revision + 1)
    s.put("/r/5", "5")
    assert len(snap.items) == 5 and [e.key for e in collect(w, 1)] == ["/r/5"]


def test_lease_expiry_deletes_keys_and_wakes_watchers():
    clock = FakeClock()
    s = MemoryStore(clock=clock)
    lease = s.lease(10)
    s.put("/l/host1", "up", lease=lease.id)
    s.put("/l/keep", "x")
    w = s.watch("/l/")
    clock.now += 5
    lease.refresh()
    clock.now += 9  # 14 s after grant, 9 s after the refresh: still alive
    assert s.get("/l/host1") is not None
    clock.now += 2
    events = collect(w, 1)  # no write needed: the waiting watcher notices the expiry
    assert (events[0].type, events[0].key, events[0].prev_value) == ("delete", "/l/host1", "up")
    assert s.get("/l/host1") is None and s.get("/l/keep") is not None
    with pytest.raises(LeaseExpired):
        lease.refresh()
    with pytest.raises(LeaseExpired):
        s.put("/l/again", "x", lease=lease.id)


def test_lease_revoke_and_forced_expiry():
    s = MemoryStore()
    a, b = s.lease(60), s.lease(60)
    s.put("/a", "1", lease=a.id)
    s.put("/b", "1", lease=b.id)
    a.revoke()
    s.expire_lease(b.id)
    assert s.get("/a") is None and s.get("/b") is None
    a.revoke()  # revoking twice is harmless


def test_overwriting_a_key_without_lease_detaches_it():
    s = MemoryStore()
    lease = s.lease(60)
    s.put("/k", "1", lease=lease.id)
    s.put("/k", "2")
    lease.revoke()
    assert s.get("/k").value == "2" and s.get("/k").lease == 0


def test_open_store_memory_and_prefix_range_end():
    assert isinstance(open_store("memory://"), MemoryStore)
    assert prefix_range_end("/a/") == b"/a0"
    assert prefix_range_end("") == b"\0"
