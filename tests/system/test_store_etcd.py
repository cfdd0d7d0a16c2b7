"""EtcdStore against a real etcd: CRUD, CAS, leases, and a watch that survives etcd restarts."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from intent.store import Compare, Delete, Put, StoreError, StoreUnavailable, WatchCompacted
from intent.store_etcd import EtcdStore, open_store
from tests.etcd_server import EtcdServer
from tests.watching import first_events

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def store(etcd: EtcdServer):
    s = EtcdStore(etcd.url)
    yield s
    s.close()


def test_crud_snapshot_and_revisions(store: EtcdStore):
    rev = store.put("/t/a", "ünïcode {json}")
    assert store.put("/t/b", "") == rev + 1
    store.put("/u/c", "other")
    kv = store.get("/t/a")
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (
        "ünïcode {json}", rev, rev, 1)
    snap = store.snapshot("/t/")
    assert snap.revision == rev + 2
    assert snap.items.keys() == {"/t/a", "/t/b"} and snap.value("/t/b") == ""
    assert [kv.key for kv in store.list("/")] == ["/t/a", "/t/b", "/u/c"]
    assert store.delete("/t/", prefix=True) == 2
    assert store.delete("/t/a") == 0
    assert store.get("/t/a") is None and store.get("/u/c").value == "other"


def test_txn_cas_conflict_and_missing_key_rules(store: EtcdStore):
    create = [Compare("/k", "version", "=", 0)]
    assert store.txn(create, [Put("/k", "first")]).succeeded
    assert not store.txn(create, [Put("/k", "second")]).succeeded
    mod = store.get("/k").mod_revision
    assert store.txn([Compare("/k", "mod", "=", mod)], [Put("/k", "cas1")]).succeeded
    res = store.txn([Compare("/k", "mod", "=", mod)], [Put("/k", "cas2")], [Put("/lost", "1")])
    assert not res.succeeded
    assert store.get("/k").value == "cas1" and store.get("/lost").value == "1"
    assert store.txn([Compare("/k", "value", "=", "cas1"), Compare("/k", "version", ">", 1)],
                     [Delete("/k"), Put("/x", "1")]).succeeded
    assert store.get("/k") is None
    # etcd's rule (MemoryStore copies it): a value compare on a missing key is always false
    assert not store.txn([Compare("/k", "value", "!=", "x")], []).succeeded
    with pytest.raises(StoreError, match="duplicate key"):
        store.txn([], [Put("/d", "1"), Put("/d", "2")])


def test_lease_expiry_deletes_key(store: EtcdStore):
    kept = store.lease(30)
    short = store.lease(1)  # etcd rounds very short TTLs up to its minimum (~2 s)
    store.put("/l/kept", "1", lease=kept.id)
    store.put("/l/short", "1", lease=short.id)
    deadline = time.monotonic() + 10
    while store.get("/l/short") is not None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert store.get("/l/short") is None
    kept.refresh()
    assert store.get("/l/kept") is not None
    kept.revoke()
    assert store.get("/l/kept") is None


def test_compacted_watch_raises_watch_compacted(store: EtcdStore):
    first = store.put("/c/a", "1")
    last = store.put("/c/a", "2")
    store.compact(last)
    with pytest.raises(WatchCompacted) as err:
        next(iter(store.watch("/c/", start_revision=first)))
    assert err.value.revision == last




def test_idle_watch_reconnects_without_repeating_events(etcd: EtcdServer):
    store = EtcdStore(etcd.url, watch_idle_timeout=0.3)
    watcher = store.watch("/i/")
    store.put("/i/a", "1")

    def late_write() -> None:
        deadline = time.monotonic() + 10
        while watcher.reconnects < 2 and time.monotonic() < deadline:
            time.sleep(0.05)  # idle timeouts, each a reconnect from the last revision
        store.put("/i/b", "2")
        store.put("/i/zz-sentinel", "end")  # the last event: everything before it has come

    threading.Thread(target=late_write, daemon=True).start()
    got, errors = first_events(watcher, 3, timeout=15)
    assert not errors
    assert watcher.reconnects >= 2
    # up to the sentinel, nothing repeated (a replayed /i/a would come before it), nothing lost
    assert [e.key for e in got] == ["/i/a", "/i/b", "/i/zz-sentinel"]


def test_close_wakes_a_blocked_watch_reader(store: EtcdStore):
    watcher = store.watch("/quiet/")
    got: list = []
    done = threading.Event()
    t = threading.Thread(target=lambda: (got.extend(watcher), done.set()), daemon=True)
    t.start()
    store.put("/quiet/first", "1")  # once the reader has this, it waits on the open stream
    deadline = time.monotonic() + 5
    while not got and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [e.key for e in got] == ["/quiet/first"] and not done.is_set()
    watcher.close()
    assert done.wait(3)


def test_watch_detects_lost_history(etcd_factory):
    server = etcd_factory()
    store = EtcdStore(server.url)
    for i in range(5):
        store.put(f"/h/{i}", "x")
    watcher = store.watch("/h/")
    got, errors = [], []
    t = threading.Thread(target=lambda: _collect_into(watcher, got, errors), daemon=True)
    t.start()
    server.stop()
    shutil.rmtree(server.data_dir)  # etcd comes back empty, at revision 1
    server.start()
    t.join(10)
    watcher.close()
    assert got == [] and len(errors) == 1 and isinstance(errors[0], WatchCompacted)
    assert "history lost" in str(errors[0])


def _collect_into(watcher, got: list, errors: list) -> None:
    try:
        got.extend(watcher)
    except Exception as exc:  # noqa: BLE001 - reported by the test
        errors.append(exc)


def test_unreachable_url_raises_store_unavailable_quickly(free_port):
    url = f"http://127.0.0.1:{free_port()}"
    start = time.monotonic()
    with pytest.raises(StoreUnavailable) as err:
        open_store(url).get("/x")
    assert time.monotonic() - start < 3
    assert url in str(err.value)


def _write_sequence(store: EtcdStore, prefix: str, n: int, progress: list[int]) -> None:
    """Create prefix/000000.. in order; create-only CAS makes a retried write exactly-once."""
    for i in range(n):
        key = f"{prefix}{i:06d}"
        while True:
            try:
                store.txn([Compare(key, "version", "=", 0)], [Put(key, str(i))])
                break
            except StoreError:  # etcd is down: retry; the CAS tells if it landed already
                time.sleep(0.02)
        progress[0] = i + 1
        time.sleep(0.002)


def test_watch_survives_etcd_restarts_without_loss_or_repeat(etcd: EtcdServer):
    n, prefix = 300, "/seq/"
    store = EtcdStore(etcd.url, timeout=2.0)
    watcher = store.watch(prefix)
    got: list = []
    errors: list = []

    def consume() -> None:
        try:
            for ev in watcher:
                got.append(ev)
                if len(got) >= n:
                    return
        except Exception as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    progress = [0]
    writer = threading.Thread(target=_write_sequence, args=(store, prefix, n, progress))
    writer.start()
    try:
        for fraction, kill in ((1 / 3, False), (2 / 3, True)):
            while progress[0] < n * fraction and writer.is_alive():
                time.sleep(0.01)
            etcd.stop(kill=kill)  # writes fail meanwhile; the writer keeps retrying
            time.sleep(0.3)
            etcd.start()
        writer.join(60)
        reader.join(20)
    finally:
        watcher.close()
    assert not errors, errors
    assert [(e.type, e.key, e.value) for e in got] == [
        ("put", f"{prefix}{i:06d}", str(i)) for i in range(n)]
    assert watcher.reconnects >= 2


EVENTLET_SCRIPT = textwrap.dedent("""
    import eventlet
    eventlet.monkey_patch()
    import json, sys
    from pathlib import Path
    from intent.store import Compare, Put, StoreError
    from intent.store_etcd import EtcdStore
    from tests.etcd_server import EtcdServer

    server = EtcdServer(Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])).start()
    Path(sys.argv[1], "etcd.pid").write_text(str(server.pid))
    try:
        store = EtcdStore(server.url, timeout=2.0)
        watcher = store.watch("/ev/")
        got = []

        def consume():
            for ev in watcher:
                got.append(ev.key)
                if len(got) == 60:
                    return

        def write():
            for i in range(60):
                key = "/ev/%03d" % i
                while True:
                    try:
                        store.txn([Compare(key, "version", "=", 0)], [Put(key, str(i))])
                        break
                    except StoreError:
                        eventlet.sleep(0.02)
                if i == 30:
                    server.restart()
                eventlet.sleep(0.005)

        idle = store.watch("/nothing/")
        idle_reader = eventlet.spawn(lambda: list(idle))
        reader = eventlet.spawn(consume)
        eventlet.spawn(write).wait()
        with eventlet.Timeout(20, False):
            reader.wait()
        watcher.close()
        idle.close()  # must wake the greenlet blocked on the idle stream
        with eventlet.Timeout(5, False):
            idle_reader.wait()
        print(json.dumps({"keys": got, "reconnects": watcher.reconnects,
                          "idle_closed": idle_reader.dead}), flush=True)
    finally:
        server.stop()
""")


def test_watch_survives_restart_under_eventlet(tmp_path: Path, free_port):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", EVENTLET_SCRIPT, str(tmp_path), str(free_port()),
             str(free_port())], capture_output=True, text=True, timeout=90, cwd=ROOT, env=env)
    finally:
        pid_file = tmp_path / "etcd.pid"  # never leave the child's etcd behind
        if pid_file.exists():
            pid = int(pid_file.read_text())
            try:  # only if that pid is still the etcd of this test (pids get reused)
                if str(tmp_path) in Path(f"/proc/{pid}/cmdline").read_text():
                    os.kill(pid, 9)
            except (OSError, ProcessLookupError):
                pass
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["keys"] == [f"/ev/{i:03d}" for i in range(60)]
    assert result["reconnects"] >= 1
    assert result["idle_closed"]
