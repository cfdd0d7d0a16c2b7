"""What the controller benchmarks write: intent documents (through ``netdcli``, the user's path)
and simulated port plugs (the oper keys an agent would write: ``{"host", "ofport"}``).

A layout is ``{network: [(container, host), ...]}`` in one VXLAN tenant; endpoint ids are
``<network>-<container>``.  Networks hold at most :data:`PER_NETWORK` endpoints so that a BUM
group (one bucket per local port) stays far below OpenFlow's 64 KiB message limit.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from intent import keys
from intent.store import Delete, Put
from intent.store_etcd import EtcdStore

ROOT = Path(__file__).resolve().parents[2]
TENANT = "bench"
PER_NETWORK = 500
NETS_PER_WRITE = 25
TXN_OPS = 128  # stock etcd: at most 128 operations per transaction
TICK_HOST = "bench-no-host"
TICK = keys.oper_endpoint("bench-tick")
FIRST_OFPORT = 100  # ofports 1 and 2 are the vxlan port and the uplink
Layout = dict[str, list[tuple[str, str]]]


class Ports:
    """Hands out made-up ofports per host (the ports do not exist: OVS accepts flows and group
    buckets that name them)."""

    def __init__(self) -> None:
        self.next: dict[str, int] = {}

    def take(self, host: str) -> int:
        port = self.next.get(host, FIRST_OFPORT)
        self.next[host] = port + 1
        return port


def tenant_doc(layout: Layout) -> dict:
    """A seed-schema document with one VXLAN tenant holding ``layout``."""
    return {"Tenants": [{
        "Name": TENANT, "DefaultNetType": "vxlan", "SubnetPool": "10.0.0.0/8",
        "AllocSubnetLen": 20, "Vxlans": "10001-14000",
        "Networks": [{"Name": net, "Endpoints": [{"Container": c, "Host": h} for c, h in eps]}
                     for net, eps in layout.items()]}]}


def netdcli(etcd_url: str, flag: str, doc: dict, path: Path, timeout: float = 900) -> float:
    """Run ``netdcli <flag> FILE`` on ``doc``; returns its wall-clock seconds."""
    path.write_text(json.dumps(doc))
    t0 = time.perf_counter()
    res = subprocess.run([sys.executable, "-m", "netdcli.cli", "-etcd", etcd_url, flag,
                          str(path), "-q"], capture_output=True, text=True, cwd=ROOT,
                         timeout=timeout)
    took = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(f"netdcli {flag} {path}: exit {res.returncode}: "
                           f"{(res.stderr or res.stdout).strip()[-1500:]}")
    return took


def put_all(store: EtcdStore, items: Iterable[tuple[str, str]]) -> int:
    """Write keys in transactions of at most 128 puts; returns the last revision."""
    items = list(items)
    rev = 0
    for i in range(0, len(items), TXN_OPS):
        rev = store.txn([], [Put(k, v) for k, v in items[i:i + TXN_OPS]]).revision
    return rev


def plug(store: EtcdStore, plugs: Iterable[tuple[str, str, int]]) -> int:
    """Simulated plugs ``(endpoint id, host, ofport)``; returns the last revision (a tick's
    when there are none)."""
    plugs = list(plugs)
    if not plugs:
        return tick(store)
    return put_all(store, ((keys.oper_endpoint(eid), json.dumps({"host": h, "ofport": p}))
                           for eid, h, p in plugs))


def _tick() -> Put:
    """A plug of no endpoint on no host: an event the controller applies (its applied revision
    moves) that changes no table.  A revision without such an event is never "applied": the
    controller learns revisions from events only."""
    return Put(TICK, json.dumps({"host": TICK_HOST, "ofport": 1, "at": time.time()}))


def tick(store: EtcdStore) -> int:
    """Write the tick; returns its revision (wait on it after writes that may have no event)."""
    return store.txn([], [_tick()]).revision


def wipe(store: EtcdStore) -> int:
    """Delete every intent object and plug (host registrations and realized keys stay), at most
    128 keys per transaction; returns a revision the controller will apply.

    Never one prefix delete: a revision with ~50k events is more than etcd's JSON gateway
    delivers to a watch (the watchers resume at it forever), and etcd 3.4.23 once panicked in
    its watch send loop right after such a delete (etcd-io/etcd#12672)."""
    names = [k for p in (keys.CONFIG, keys.ALLOC, keys.STATE, keys.OPER_ENDPOINTS, keys.WRITES)
             for k in store.key_names(p)[1]]
    for i in range(0, len(names), TXN_OPS):
        store.txn([], [Delete(k) for k in names[i:i + TXN_OPS]])
    return tick(store)


def load(store: EtcdStore, etcd_url: str, layout: Layout, ports: Ports, path: Path) -> int:
    """Write ``layout`` with ``netdcli -add-cfg`` (at most 25 networks per call) and plug every
    endpoint on its host; returns the revision after the last write.

    (One ``-add-cfg`` that creates more than 30 networks fails today with "planning did not
    settle": allocator.write plans in at most 32 read rounds, one per new network.)"""
    load_config(etcd_url, layout, path)
    plug(store, [(f"{net}-{c}", h, ports.take(h)) for net, eps in layout.items() for c, h in eps])
    return tick(store)


def load_config(etcd_url: str, layout: Layout, path: Path) -> None:
    """``netdcli -add-cfg`` of ``layout``, at most NETS_PER_WRITE networks per call."""
    nets = list(layout)
    for i in range(0, len(nets), NETS_PER_WRITE):
        part = {n: layout[n] for n in nets[i:i + NETS_PER_WRITE]}
        netdcli(etcd_url, "-add-cfg", tenant_doc(part), path)


def split(prefix: str, members: list[tuple[str, str]]) -> Layout:
    """``members`` in networks ``<prefix>0, <prefix>1 …`` of at most PER_NETWORK endpoints."""
    return {f"{prefix}{k}": members[i:i + PER_NETWORK]
            for k, i in enumerate(range(0, len(members), PER_NETWORK))}


def on_hosts(n: int, hosts: list[str], tag: str = "c") -> list[tuple[str, str]]:
    """``n`` containers spread round-robin over ``hosts``."""
    return [(f"{tag}{i}", hosts[i % len(hosts)]) for i in range(n)]


def spanning(hosts: list[str], span: int, per_host: int, wide_per_host: int) -> Layout:
    """Blocks of ``span`` hosts, each with 5 networks over the block's hosts; plus network
    ``wide`` over every host: ``per_host`` endpoints per host in all."""
    block_per_host = per_host - wide_per_host
    nets_per_block = 5 if block_per_host >= 5 else max(1, block_per_host)
    layout: Layout = {}
    for b in range(0, len(hosts), span):
        block = hosts[b:b + span]
        for k in range(nets_per_block):
            count = block_per_host // nets_per_block + (k < block_per_host % nets_per_block)
            layout[f"b{b // span}n{k}"] = [(f"c{j}-{h}", h) for h in block
                                           for j in range(count)]
    layout["wide"] = [(f"w{j}-{h}", h) for h in hosts for j in range(wide_per_host)]
    return layout


def netdcli_help() -> None:
    """``netdcli --help`` (the CLI's start-up cost alone)."""
    subprocess.run([sys.executable, "-m", "netdcli.cli", "--help"], capture_output=True,
                   cwd=ROOT, check=True, timeout=60)
