"""netdcli and the allocator against a real etcd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from intent import keys
from intent.resolved import read_resolved
from intent.store_etcd import EtcdStore

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
NETDCLI = [sys.executable, "-m", "netdcli.cli"]


def netdcli(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*NETDCLI, "-etcd", url, *args], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)


def dump(url: str) -> list[tuple[str, str, int, int]]:
    store = EtcdStore(url)
    try:
        return [(kv.key, kv.value, kv.create_revision, kv.mod_revision) for kv in store.list("/")]
    finally:
        store.close()


def test_netdcli_cfg_get_and_idempotence(etcd) -> None:
    example = str(EXAMPLES / "two_hosts_multiple_vxlan_nets.json")
    first = netdcli(etcd.url, "-cfg", example)
    assert first.returncode == 0, first.stderr
    assert "created endpoint orange-myContainer1" in first.stdout
    got = netdcli(etcd.url, "-oper", "get", "-construct", "endpoint", "orange-myContainer3")
    ep = json.loads(got.stdout)
    assert ep["IpAddress"] == "11.1.0.3" and ep["Host"] == "host2" and ep["Vni"] == 10001
    before = dump(etcd.url)
    again = netdcli(etcd.url, "-cfg", example)
    assert again.returncode == 0 and "no change" in again.stdout
    assert dump(etcd.url) == before


def test_invalid_file_leaves_etcd_byte_identical(etcd, tmp_path: Path) -> None:
    assert netdcli(etcd.url, "-cfg", str(EXAMPLES / "two_hosts_vlan.json")).returncode == 0
    before = dump(etcd.url)
    doc = json.loads((EXAMPLES / "two_hosts_vlan.json").read_text())
    doc["Tenants"][0]["Networks"].insert(1, {"Name": "bad", "SubnetCIDR": "10.0.0.0/24",
                                             "Endpoints": [{"Container": "x",
                                                            "IpAddress": "10.0.0.255"}]})
    doc["Tenants"][0]["Networks"].append({"Name": "green"})
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(doc))
    result = netdcli(etcd.url, "-cfg", str(path))
    assert result.returncode == 2
    assert ('Tenants[0].Networks[1].Endpoints[0].IpAddress "10.0.0.255": is the broadcast '
            "address of 10.0.0.0/24") in result.stderr
    assert "nothing was written" in result.stderr
    assert dump(etcd.url) == before


def test_desired_state_update_and_delete(etcd) -> None:
    assert netdcli(etcd.url, "-cfg", str(EXAMPLES / "two_hosts_multiple_vxlan_nets.json")
                   ).returncode == 0
    result = netdcli(etcd.url, "-cfg", str(EXAMPLES / "two_hosts_vxlan.json"))
    assert result.returncode == 0, result.stderr
    assert "deleted network purple" in result.stdout
    store = EtcdStore(etcd.url)
    try:
        resolved = read_resolved(store)
        assert [n.name for n in resolved.networks] == ["orange"]
        assert {e.id for e in resolved.endpoints} == {"orange-myContainer1",
                                                     "orange-myContainer2"}
        assert not store.list(keys.alloc_ip_prefix("purple"))
    finally:
        store.close()


def test_four_processes_allocate_concurrently_without_duplicates(etcd) -> None:
    workers, per_worker = 4, 200
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    procs = [subprocess.Popen([sys.executable, "-m", "tests.system.alloc_worker", etcd.url,
                               str(w), str(per_worker)], cwd=ROOT, env=env,
                              stderr=subprocess.PIPE, text=True)
             for w in range(workers)]
    for p in procs:
        _, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
    store = EtcdStore(etcd.url)
    try:
        endpoints = read_resolved(store).endpoints
        ips = [e.ip for e in endpoints]
        assert len(endpoints) == workers * per_worker
        assert len(set(ips)) == len(ips)
        assert len(store.list(keys.alloc_ip_prefix("race"))) == workers * per_worker
    finally:
        store.close()


def test_unreachable_etcd(tmp_path: Path) -> None:
    result = netdcli("http://127.0.0.1:9", "-cfg", str(EXAMPLES / "one_host_vlan.json"))
    assert result.returncode == 1
    assert len(result.stderr.strip().splitlines()) == 1 and "127.0.0.1:9" in result.stderr


def test_the_originals_partial_document_adds_and_deletes_one_endpoint(etcd) -> None:
    """The original's two files: -cfg of the full two-network file, then -add-cfg of the
    partial one (tenant and network named, nothing else) adds orange-myContainer2 and changes
    nothing else; -del-cfg of the same file deletes just that endpoint."""
    full = str(EXAMPLES / "two_hosts_multiple_vxlan_nets.json")
    partial = str(EXAMPLES / "two_hosts_multiple_vxlan_add_del_ep.json")
    assert netdcli(etcd.url, "-cfg", full).returncode == 0

    def state() -> dict[str, str]:
        return {k: v for k, v, _c, _m in dump(etcd.url)  # (config/rev: the last write's id)
                if k.startswith((keys.CONFIG, keys.STATE)) and "orange-myContainer2" not in k
                and k != keys.CONFIG + "rev"}

    before = state()
    added = netdcli(etcd.url, "-add-cfg", partial)
    assert added.returncode == 0, added.stderr
    assert "created endpoint orange-myContainer2" in added.stdout
    got = json.loads(netdcli(etcd.url, "-oper", "get", "-construct", "endpoint",
                             "orange-myContainer2").stdout)
    assert got["Host"] == "host1" and got["Vni"] == 10001 and got["IpAddress"].startswith("11.1.0.")
    others = json.loads(netdcli(etcd.url, "-oper", "get", "-construct", "endpoint",
                                "purple-myContainer2").stdout)
    assert others["Host"] == "host1"
    after_add = state()
    changed = {k for k in before.keys() | after_add.keys() if before.get(k) != after_add.get(k)}
    # only the network's endpoint index and allocation bookkeeping may move; no other object
    assert not [k for k in changed if k.startswith((keys.CONFIG_TENANTS, keys.CONFIG_NETWORKS,
                                                    keys.STATE_NETWORKS, keys.CONFIG_ENDPOINTS,
                                                    keys.STATE_ENDPOINTS))], changed
    deleted = netdcli(etcd.url, "-del-cfg", partial)
    assert deleted.returncode == 0, deleted.stderr
    assert "deleted endpoint orange-myContainer2" in deleted.stdout
    gone = netdcli(etcd.url, "-oper", "get", "-construct", "endpoint", "orange-myContainer2")
    assert gone.returncode == 3
    after_del = state()
    assert {k: v for k, v in after_del.items() if k.startswith((keys.CONFIG, keys.STATE_NETWORKS,
                                                                 keys.STATE_ENDPOINTS))} == \
        {k: v for k, v in before.items() if k.startswith((keys.CONFIG, keys.STATE_NETWORKS,
                                                           keys.STATE_ENDPOINTS))}
