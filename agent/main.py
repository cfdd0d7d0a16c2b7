"""``netplugin-agent``: set up the host, register it under a lease, and keep containers plugged.

The loop reconciles on every change under /netplugin/state/ and /netplugin/runtime/<host>/ (store
watches) and every ``--resync-interval`` seconds (which also repairs bridges and picks up ports
someone else changed in OVS).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import threading
import time

from agent.garp import Announcer
from agent.host import HostOptions, setup_host
from agent.ipam import DEFAULT_CNI_PATH, CniIpam
from agent.metrics import AgentMetrics
from agent.netlink import HostSide
from agent.ovsdb import Ovsdb, OvsdbError, OvsdbUnreachable
from agent.plumb import Plumber, lock_path
from agent.reconcile import reconcile
from agent.view import PREFIXES, IntentView
from intent import keys
from intent.consistent import WatchGate, read_consistent, watch_start
from intent.etcd_conn import DEFAULT_URL, ENV_CA, ENV_CERT, ENV_KEY, ENV_URLS, EtcdTls
from intent.logfmt import logline
from intent.store import LeaseExpired, Store, StoreError
from intent.store_etcd import open_store
from intent.version import version_text

RELOAD = object()  # the watch ended: read the intent again
LOG = logging.getLogger("netplugin.agent")
EXAMPLES = """examples:
  netplugin-agent --host host1 --etcd http://10.0.0.5:2379 --controller tcp:10.0.0.5:6653
  netplugin-agent --host host1 --controller tcp:10.0.0.5:6653,tcp:10.0.0.6:6653,tcp:10.0.0.7:6653
  netplugin-agent --host host2 --underlay-if eth1 --uplink eth2 --log-level DEBUG
  netplugin-agent --host host1 --cni-path /opt/cni/bin:/usr/lib/cni   (networks with "Ipam")
  netplugin-agent --host host1 --controller ssl:10.0.0.1:6653 \\
      --etcd https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 \\
      --etcd-ca ca.pem --etcd-cert host1.pem --etcd-key host1.key
  (an ssl: controller needs OVS's SSL settings: ovs-vsctl set-ssl KEY CERT CA)
"""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="netplugin-agent", description=__doc__.split("\n")[0], epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True, help="this host's name (as in the intent)")
    p.add_argument("--etcd", default=os.environ.get(ENV_URLS, DEFAULT_URL),
                   metavar="URL[,URL...]",
                   help="etcd client URL, or several members of one cluster separated by commas "
                        f"(default: ${ENV_URLS} or %(default)s)")
    p.add_argument("--etcd-ca", help=f"CA certificate that signed etcd's (or ${ENV_CA})")
    p.add_argument("--etcd-cert", help=f"client certificate for etcd (or ${ENV_CERT})")
    p.add_argument("--etcd-key", help=f"private key of --etcd-cert (or ${ENV_KEY})")
    p.add_argument("--ovsdb", default="unix:/var/run/openvswitch/db.sock", help="OVSDB remote")
    p.add_argument("--controller", default=None, metavar="TARGET[,TARGET...]",
                   help="OpenFlow controller target of br-int, or several controllers "
                        "separated by commas (br-int connects to all; they elect its master)")
    p.add_argument("--datapath-type", default="netdev", help="br-int/br-phy datapath type")
    p.add_argument("--vtep-ip", default=None, help="VTEP IP (default: from br-phy / discovered)")
    p.add_argument("--underlay-if", default=None, help="underlay NIC to put in br-phy")
    p.add_argument("--uplink", default=None, help="uplink NIC for VLAN hand-off (on br-int)")
    p.add_argument("--cni-path", default=os.environ.get("CNI_PATH", DEFAULT_CNI_PATH),
                   metavar="DIR[:DIR...]",
                   help="where networks' CNI IPAM plugins are found (default: $CNI_PATH or "
                        "%(default)s)")
    p.add_argument("--resync-interval", type=float, default=5.0, help="seconds between resyncs")
    p.add_argument("--lease-ttl", type=int, default=10, help="registration lease TTL (s)")
    p.add_argument("--metrics-port", type=int, default=0, metavar="PORT",
                   help="serve Prometheus metrics (plug latency and failures) on this port; "
                        "0, the default: off")
    p.add_argument("--metrics-host", default="127.0.0.1", metavar="ADDR",
                   help="address of the metrics endpoint (default %(default)s)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--version", action="version", version=version_text("netplugin-agent"))
    return p.parse_args(argv)


class Agent:
    """The agent's state and loop."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.host = args.host
        self.stop = threading.Event()
        self.events: queue.Queue = queue.Queue()  # watch events, or RELOAD
        self.store: Store | None = None
        self.ovs: Ovsdb | None = None
        self.links = HostSide()
        self.announcer = Announcer()  # gratuitous ARPs after each plug
        self.lease = None
        self.registration: dict | None = None
        self.watchers: list = []
        self.reconciled = -1  # the store revision of the last reconcile pass logged
        self.view = IntentView(self.host)  # the intent, kept current by the watch
        self.view_stale = True  # (re)load it before the next pass
        self.kept = 0  # endpoints the last pass found plugged and right
        self.gate = WatchGate()
        self.generation = 0  # of the watch that feeds the view
        self.metrics = AgentMetrics(self.host)

    # ------------------------------------------------------------------ connections
    def _connect(self) -> None:
        if self.store is None:
            a = self.args
            self.store = open_store(a.etcd, EtcdTls.from_options(a.etcd_ca, a.etcd_cert,
                                                                  a.etcd_key))
        if self.ovs is None:
            self.ovs = Ovsdb(self.args.ovsdb)

    def _options(self) -> HostOptions:
        a = self.args
        intf = vtep = None
        kv = self.store.get(keys.host_config(self.host)) if self.store else None
        if kv is not None:
            try:
                cfg = json.loads(kv.value)
                intf, vtep = cfg.get("intf"), cfg.get("vtep_ip")
            except ValueError:
                LOG.warning("host config %s: not JSON", kv.key)
        return HostOptions(self.host, a.datapath_type, a.controller, a.vtep_ip or vtep,
                           a.underlay_if, a.uplink or intf)

    # ------------------------------------------------------------------ registration
    def _register(self, value: dict) -> None:
        if self.lease is None:
            self.lease = self.store.lease(self.args.lease_ttl)
            self.registration = None
        if value != self.registration:
            self.store.put(keys.oper_host(self.host), json.dumps(value, sort_keys=True),
                           lease=self.lease.id)
            self.registration = value
            LOG.info("registered host %s: %s", self.host, value)

    def _keepalive(self) -> None:
        try:
            self.lease.refresh()
        except LeaseExpired:
            LOG.warning("registration lease expired: registering again")
            self.lease = None
            self._register(dict(self.registration or {}))

    # ------------------------------------------------------------------ watches
    def _load_view(self) -> None:
        """Read the intent this host plans from, then follow it with one watch of the whole
        tree (every event moves the revision a pass reports; few concern this host)."""
        self.generation += 1  # what the previous watch still delivers is dropped
        old, self.watchers = self.watchers, []
        for w in old:
            w.close()
        snap = read_consistent(self.store, (), PREFIXES)
        self.view.load(snap.items.values(), snap.intent_revision or snap.revision)
        self.gate = WatchGate(snap)
        self.view_stale = False
        w = self.store.watch(keys.ROOT, watch_start(snap))
        self.watchers = [w]
        threading.Thread(target=self._watch, args=(w, self.generation), daemon=True,
                         name="watch").start()

    def _watch(self, w, generation: int) -> None:  # noqa: ANN001 - a store Watcher
        try:
            for batch in w.batches():
                self.events.put((generation, batch))
                if self.stop.is_set():
                    return
        except StoreError as e:  # history compacted (or the store went away for good)
            LOG.warning("watch: %s; reading the intent again", e)
        if not self.stop.is_set():
            self.events.put((generation, RELOAD))  # dropped if it was closed for a reload

    def _take(self, item: tuple) -> bool:
        """Apply what the watch delivered (a batch of events, or RELOAD); True when a pass
        should look."""
        generation, item = item
        if generation != self.generation:
            return False
        if item is RELOAD:
            self.view_stale = True
            return True
        look = False
        runtime = keys.runtime_prefix(self.host)
        for ev in item:
            for e in self.gate.feed(ev):
                look |= e.key.startswith(runtime) or self.view.apply(e)
        if not self.gate.holding:
            self.view.passed(item[-1].mod_revision)
        return look

    # ------------------------------------------------------------------ loop
    def _resync(self) -> None:
        self._register(setup_host(self.ovs, self.links, self._options()))

    def _reconcile(self) -> None:
        plumber = Plumber(self.ovs, self.links, announce=self.announcer)
        rep = reconcile(self.store, plumber, self.host, lock_path(self.args.ovsdb, self.host),
                        ipam=CniIpam(self.args.cni_path), view=self.view)
        self.metrics.reconciled(rep)
        self.kept = len(rep.kept)
        if rep.revision != self.reconciled or rep.plugged or rep.unplugged:
            self._passed(rep.revision, len(rep.plugged), len(rep.unplugged), len(rep.problems))

    def _passed(self, revision: int, plugged: int = 0, unplugged: int = 0,
                problems: int = 0) -> None:
        # one line per store revision looked at: what a test (or a user) waits for; events
        # that concern no endpoint of this host are looked at without a pass
        LOG.info("%s", logline("reconcile", host=self.host, revision=revision, plugged=plugged,
                               unplugged=unplugged, kept=self.kept, problems=problems))
        self.reconciled = revision

    def run(self) -> int:
        if self.args.metrics_port:
            self.metrics.serve(self.args.metrics_host, self.args.metrics_port)
            LOG.info("%s", logline("metrics", host=self.host,
                                   url=f"http://{self.args.metrics_host}:{self.args.metrics_port}"
                                   "/metrics"))
        signal.signal(signal.SIGTERM, lambda *_: self.stop.set())
        signal.signal(signal.SIGINT, lambda *_: self.stop.set())
        next_resync = next_refresh = 0.0
        dirty = True
        while not self.stop.is_set():
            now = time.monotonic()
            try:
                self._connect()
                if now >= next_resync:
                    self._resync()
                    dirty, next_resync = True, now + self.args.resync_interval
                if self.view_stale:
                    self._load_view()
                    dirty = True
                if now >= next_refresh:
                    self._keepalive()
                    next_refresh = now + max(1.0, self.args.lease_ttl / 3)
                if dirty:
                    dirty = False
                    self._reconcile()
            except (StoreError, OvsdbError, OSError) as e:
                LOG.error("%s", e)
                dirty, next_resync = True, min(next_resync, now + 1.0)
                if isinstance(e, OvsdbUnreachable) and self.ovs is not None:
                    self.ovs.close()  # connect afresh: no waiting out the IDL's back-off
                    self.ovs = None
                self.stop.wait(1.0)
                continue
            except Exception:  # noqa: BLE001 - a bug must not stop the host's agent
                LOG.exception("unexpected error; retrying")
                dirty = True
                self.stop.wait(1.0)
                continue
            wait = max(0.0, min(next_resync, next_refresh) - time.monotonic())
            try:
                look = self._take(self.events.get(timeout=wait))
                time.sleep(0.05)  # let a burst of events land, then drain it
                while not self.events.empty():
                    look |= self._take(self.events.get_nowait())
            except queue.Empty:
                continue
            if look:
                dirty = True
            elif self.view.revision > self.reconciled:
                self._passed(self.view.revision)
        self._shutdown()
        return 0

    def _shutdown(self) -> None:
        for w in self.watchers:
            w.close()
        if self.lease is not None:
            try:
                self.lease.revoke()
            except StoreError as e:
                LOG.warning("revoking the registration lease: %s", e)
        LOG.info("agent %s stopped", self.host)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return Agent(args).run()
