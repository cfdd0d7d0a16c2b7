"""Writes of any size on an etcd with its default limits (128 ops, 1.5 MiB per request)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from pathlib import Path

from intent import keys
from intent.resolved import read_resolved
from intent.store_etcd import EtcdStore

ROOT = Path(__file__).resolve().parents[2]


def doc(n: int) -> dict:
    return {"Tenants": [{"Name": "big", "DefaultNetType": "vxlan", "SubnetPool": "10.0.0.0/8",
                         "AllocSubnetLen": 16, "Vxlans": "100-200", "Networks": [
                             {"Name": "wide", "Endpoints": [
                                 {"Container": f"c{i}", "Host": f"h{i % 2}"}
                                 for i in range(n)]}]}]}


def test_five_thousand_endpoints_in_one_cfg_and_a_reader_never_sees_part(etcd, tmp_path: Path
                                                                           ) -> None:
    path = tmp_path / "big.json"
    path.write_text(json.dumps(doc(5000)))
    store = EtcdStore(etcd.url)
    seen: list[int] = []
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            seen.append(len(read_resolved(store).endpoints))

    t = threading.Thread(target=reader)
    t.start()
    try:
        res = subprocess.run([sys.executable, "-m", "netdcli.cli", "-etcd", etcd.url, "-cfg",
                              str(path)], capture_output=True, text=True, cwd=ROOT, timeout=120)
    finally:
        stop.set()
        t.join()
    assert res.returncode == 0, res.stderr
    assert "written at revision" in res.stdout
    final = read_resolved(store)
    assert len(final.endpoints) == 5000
    assert len({e.ip for e in final.endpoints}) == 5000
    assert len(seen) >= 3, seen  # the reader did look while the write was under way
    assert set(seen) <= {0, 5000}, sorted(set(seen))
    assert store.get(keys.CONFIG_TXN) is None
    # the etcd really has its default limit: one oversized transaction is refused
    bad = subprocess.run([sys.executable, "-c", (
        "import sys; from intent.store_etcd import EtcdStore; from intent.store import Put;"
        f"s = EtcdStore('{etcd.url}'); s.txn([], [Put(f'/x/{{i}}', 'v') for i in range(129)])")],
        capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "too many operations in txn request" in bad.stderr
    store.close()
