"""Controller benchmarks against real OVS and etcd (prints numbers; run as root):

    python -m tests.bench.bench_controller [--changes 200] [--sizes 10000,50000]

1. intent write -> flows installed and barrier-acked (realized revision written), p50/p99;
2. full resync of N flows (switch emptied, controller restarted) vs ``ovs-ofctl --bundle
   add-flows`` of the very same flows on the same switch.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import statistics
import time
from pathlib import Path

from allocator.write import apply_config
from intent import codec, keys
from intent.loader import load_config
from intent.model import EndpointSpec, NetworkSpec
from intent.store import Put
from intent.store_etcd import EtcdStore
from tests.etcd_server import EtcdServer
from tests.system.test_controller import DPID, ControllerProc, Ovs, wait

WORK = Path("/tmp/np-ctl/bench")


def realized(store: EtcdStore) -> int:
    kv = store.get(keys.realized("host1"))
    return json.loads(kv.value)["revision"] if kv else 0


def register(store: EtcdStore) -> None:
    store.put(keys.oper_host("host1"), json.dumps({
        "name": "host1", "dpid": DPID, "vtep_ip": "192.168.2.10", "uplink": None,
        "uplink_ofport": None, "vxlan_ofport": 100, "version": "bench"}))


def latency(store: EtcdStore, changes: int) -> list[float]:
    doc = {"Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.0.0.0/8",
                        "AllocSubnetLen": 16, "Vxlans": "10001-10100",
                        "Networks": [{"Name": "net", "Endpoints": []}]}]}
    apply_config(store, load_config(doc), "desired")
    for i in range(changes):  # plugged ports first: each intent write then changes flows
        store.put(keys.oper_endpoint(f"net-c{i}"), json.dumps({"host": "host1", "ofport": 10 + i}))
    last = store.put(keys.oper_endpoint("net-none"), "{}")
    wait(lambda: realized(store) >= last, 60)
    out = []
    for i in range(changes):
        add = {"Tenants": [{"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.0.0.0/8",
                            "AllocSubnetLen": 16, "Vxlans": "10001-10100", "Networks": [
                                {"Name": "net", "Endpoints": [
                                    {"Container": f"c{i}", "Host": "host1"}]}]}]}
        t0 = time.perf_counter()
        rev = apply_config(store, load_config(add), "add").revision
        while realized(store) < rev:
            time.sleep(0.0005)
        out.append(time.perf_counter() - t0)
    return out


def fill(store: EtcdStore, n_flows: int) -> None:
    """State keys for endpoints whose flows add up to about ``n_flows`` on host1."""
    store.delete(keys.ROOT, prefix=True)
    register(store)
    n_eps = n_flows // 4
    ops: list[Put] = []
    per_net = 500  # one BUM group per network: keep it under the 64 KiB message limit
    for k in range((n_eps + per_net - 1) // per_net):
        net = f"n{k}"
        ops.append(Put(keys.state_network(net), codec.dumps(NetworkSpec(
            net, "t1", "vxlan", 20000 + k, f"10.{k}.0.0/16", f"10.{k}.0.1"))))
        for j in range(min(per_net, n_eps - k * per_net)):
            ep = f"{net}-c{j}"
            ip = f"10.{k}.{(j + 2) // 256}.{(j + 2) % 256}"
            mac = f"02:00:{k:02x}:{(j >> 16) & 255:02x}:{(j >> 8) & 255:02x}:{j & 255:02x}"
            ops.append(Put(keys.state_endpoint(ep), codec.dumps(EndpointSpec(
                ep, net, f"c{j}", "host1", ip, mac))))
            ops.append(Put(keys.oper_endpoint(ep), json.dumps(
                {"host": "host1", "ofport": 1000 + k * per_net + j})))
    for i in range(0, len(ops), 100):
        store.txn([], ops[i:i + 100])


def resync(etcd: EtcdServer, store: EtcdStore, ovs: Ovs, n_flows: int) -> dict:
    ovs.ofctl("del-flows")  # every run starts from an empty switch
    ovs.ofctl("del-groups")
    fill(store, n_flows)
    log = WORK / f"ctl-{n_flows}.log"
    log.unlink(missing_ok=True)
    ctl = ControllerProc(etcd.url, log, audit=0).start()
    try:
        wait(lambda: realized(store) > 0, 300)
        m = re.findall(r"switch host1: (\d+) changes in ([\d.]+) ms", log.read_text())
        changes, ms = int(m[-1][0]), float(m[-1][1])
        flows = ovs.ofctl("dump-flows", "--no-stats")
    finally:
        ctl.stop()
    text = WORK / "flows.txt"
    text.write_text("\n".join(line.strip() for line in flows.splitlines()
                              if "priority" in line) + "\n")
    ovs.ofctl("del-flows")
    t0 = time.perf_counter()
    ovs.run("ovs-ofctl", "-O", "OpenFlow13", "--bundle", "add-flows",
            f"unix:{ovs.dir}/npcbr1.mgmt", str(text))
    t_ofctl = time.perf_counter() - t0
    ovs.ofctl("del-flows")
    return {"flows": n_flows, "changes": changes, "controller_s": ms / 1e3,
            "ofctl_bundle_s": t_ofctl, "ratio": ms / 1e3 / t_ofctl}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--changes", type=int, default=200)
    ap.add_argument("--sizes", default="10000,50000")
    args = ap.parse_args()
    shutil.rmtree(WORK, ignore_errors=True)
    WORK.mkdir(parents=True)
    etcd = EtcdServer(WORK / "etcd", 26791, 26792).start()
    ovs = Ovs(WORK).start()
    store = EtcdStore(etcd.url)
    try:
        register(store)
        ctl = ControllerProc(etcd.url, WORK / "ctl-latency.log", audit=0).start()
        try:
            lat = sorted(latency(store, args.changes))
        finally:
            ctl.stop()
        p = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1e3  # noqa: E731
        print(f"intent write -> barrier-acked on switch, {len(lat)} changes: "
              f"p50 {p(0.5):.1f} ms  p99 {p(0.99):.1f} ms  max {lat[-1] * 1e3:.1f} ms "
              f"mean {statistics.mean(lat) * 1e3:.1f} ms")
        resync(etcd, store, ovs, 1000)  # warm-up: imports, first connection
        for size in (int(s) for s in args.sizes.split(",")):
            r = resync(etcd, store, ovs, size)
            print(f"resync {r['changes']} changes (~{size} flows): "
                  f"controller {r['controller_s']:.2f} s (encode+bundle+barrier), "
                  f"ovs-ofctl --bundle add-flows {r['ofctl_bundle_s']:.2f} s, "
                  f"ratio {r['ratio']:.1f}x")
    finally:
        store.close()
        ovs.stop()
        etcd.stop()


if __name__ == "__main__":
    main()
