"""The controller's engine: store watch → affected hosts → per-switch worker → realized revision.

Framework-independent apart from the hub: the Ryu app (``ryu_apps.netplugin``) feeds it switch
connections and replies; it feeds itself from the store's watch.  One greenthread per switch does
read-back, compute, diff, bundle and barrier; one greenthread writes realized revisions.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from intent import keys
from intent.store import Put, Store, StoreError, WatchCompacted
from ryu_apps.dataplane import Dataplane
from ryu_apps.framework import blocking, hub
from ryu_apps.intent_cache import IntentCache
from ryu_apps.switch import MessageCache, Session, SwitchError

LOG = logging.getLogger(__name__)
RETRY = 1.0


class Controller:
    """Keeps every connected switch equal to the intent in the store."""

    def __init__(self, store: Store, dataplane: Dataplane, audit_interval: float = 60.0,
                 timeout: float = 60.0) -> None:
        self.store = store
        self.dataplane = dataplane
        self.audit_interval = audit_interval
        self.timeout = timeout
        self.cache = IntentCache()
        self.sessions: dict[int, Session] = {}
        self.messages = MessageCache(dataplane.encode)
        self.running = False
        self.events_seen = 0
        self._realize = hub.Event()
        self._threads: list[Any] = []
        self._watcher: Any = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Load the store and start the watch, realize and audit greenthreads."""
        self.running = True
        self._reload()
        self._threads = [hub.spawn(self._watch_loop), hub.spawn(self._realize_loop)]
        if self.audit_interval > 0:
            self._threads.append(hub.spawn(self._audit_loop))

    def stop(self) -> None:
        self.running = False
        if self._watcher is not None:
            self._watcher.close()
        for s in list(self.sessions.values()):
            s.abort()
        self._realize.set()
        for t in self._threads:
            hub.kill(t)
        self._threads = []

    def _reload(self) -> None:
        while self.running:
            try:
                snap = blocking(self.store.snapshot, keys.ROOT)
                break
            except StoreError as exc:
                LOG.warning("store unavailable (%s); retrying", exc)
                hub.sleep(RETRY)
        else:
            return
        self.cache.load(snap)
        self._bind_hosts()
        for s in self.sessions.values():
            s.kick()
        self._realize.set()

    # ------------------------------------------------------------------ store side

    def _watch_loop(self) -> None:
        while self.running:
            try:
                self._watcher = blocking(self.store.watch, keys.ROOT, self.cache.revision + 1)
                it = iter(self._watcher)
                while self.running:
                    ev = blocking(next, it, None)
                    if ev is None:
                        break
                    self.on_event(ev)
            except WatchCompacted:
                LOG.warning("watch history compacted: re-reading the store")
                self._reload()
            except StoreError as exc:
                LOG.warning("watch failed (%s); resuming", exc)
                hub.sleep(RETRY)
            except Exception:  # noqa: BLE001 - keep the controller alive, log loudly
                LOG.exception("watch loop error")
                hub.sleep(RETRY)

    def on_event(self, ev: Any) -> None:
        """Apply one store event and wake the switches it affects."""
        self.events_seen += 1
        affected = self.cache.apply(ev)
        if ev.key.startswith((keys.OPER_HOSTS,)):
            self._bind_hosts()
        for s in self.sessions.values():
            if affected is None or s.host in affected:
                s.kick()
        self._realize.set()

    def _realize_loop(self) -> None:
        """Record, per in-sync idle switch, the intent revision it now holds."""
        while self.running:
            self._realize.wait()
            self._realize.clear()
            rev = self.cache.revision
            ready = [s for s in self.sessions.values()
                     if s.host and s.in_sync and not s.busy and not s.pending
                     and (s.realized or 0) < rev]
            if not ready:
                continue
            value = json.dumps({"revision": rev})
            try:
                blocking(self.store.txn, [], [Put(keys.realized(s.host), value) for s in ready])
            except StoreError as exc:
                LOG.warning("cannot write realized revisions (%s); retrying", exc)
                hub.sleep(RETRY)
                self._realize.set()
                continue
            for s in ready:
                s.realized = rev

    def _audit_loop(self) -> None:
        while self.running:
            hub.sleep(self.audit_interval)
            for s in list(self.sessions.values()):
                if not s.busy:
                    s.audit()

    # ------------------------------------------------------------------ switch side

    def switch_connected(self, dp: Any) -> Session:
        """A switch finished its handshake: start its session (re-read, then repair)."""
        old = self.sessions.pop(dp.id, None)
        if old is not None:
            old.abort()
        s = Session(dp, self.cache.host_for_dpid(dp.id), timeout=self.timeout)
        self.sessions[dp.id] = s
        LOG.info("switch %016x connected (host %s)", dp.id, s.host or "not registered yet")
        hub.spawn(self._worker, s)
        s.kick(reread=True)
        return s

    def switch_disconnected(self, dp: Any) -> None:
        s = self.sessions.get(dp.id)
        if s is not None and s.dp is dp:
            del self.sessions[dp.id]
            s.abort()
            LOG.info("switch %016x (host %s) disconnected", dp.id, s.host)

    def switch_message(self, dp: Any, msg: Any) -> None:
        s = self.sessions.get(dp.id)
        if s is not None and s.dp is dp:
            s.on_message(msg)

    def _bind_hosts(self) -> None:
        for s in self.sessions.values():
            host = self.cache.host_for_dpid(s.dpid)
            if host != s.host:
                LOG.info("switch %016x is host %s", s.dpid, host)
                s.host, s.realized, s.in_sync = host, None, False
                s.kick(reread=True)

    def _worker(self, s: Session) -> None:
        while s.alive and self.running:
            s.wake.wait()
            s.wake.clear()
            if not (s.alive and (s.pending or s.audit_due) and s.host):
                continue
            s.pending, s.audit_due, s.busy = False, False, True
            try:
                self.sync(s)
            except SwitchError as exc:
                self._failed(s, str(exc))
            except Exception as exc:  # noqa: BLE001 - a bad entry must not kill the worker
                LOG.exception("sync of %s failed", s.host)
                self._failed(s, repr(exc))
            finally:
                s.busy = False
                self._realize.set()

    def _failed(self, s: Session, why: str) -> None:
        LOG.warning("switch %s: %s; re-reading and retrying", s.host, why)
        s.last_error, s.in_sync, s.reread = why, False, True
        if s.alive:
            hub.spawn_after(RETRY, s.kick)

    def sync(self, s: Session) -> int:
        """Bring one switch to the desired state; returns how many changes were sent."""
        if s.reread or s.installed is None:
            s.reread = False
            s.installed = s.read(self.dataplane.decode)
            hub.sleep(0)  # long CPU phases alternate with the hub (echo replies, other switches)
        host = s.host
        desired = self.dataplane.compute(self.cache.resolved(), host, self.cache.ports(host))
        hub.sleep(0)
        changes = self.dataplane.diff(s.installed, desired)
        if changes:
            t0 = time.perf_counter()
            try:
                s.send_bundle(self.messages.messages(changes))
            except SwitchError:
                s.installed = None
                raise
            s.changes_sent += len(changes)
            LOG.info("switch %s: %d changes in %.1f ms", host, len(changes),
                     (time.perf_counter() - t0) * 1e3)
        s.installed = desired
        s.in_sync, s.last_error = True, None
        s.syncs += 1
        return len(changes)

    # ------------------------------------------------------------------ queries

    def desired(self, host: str) -> Any:
        """The state ``host``'s switch should hold now."""
        return self.dataplane.compute(self.cache.resolved(), host, self.cache.ports(host))

    def host_status(self) -> list[dict]:
        """Every registered or connected host with its switch status and realized revision."""
        by_host = {s.host: s for s in self.sessions.values() if s.host}
        out = []
        for name in sorted(set(self.cache.hosts) | set(by_host)):
            s = by_host.get(name)
            reg = self.cache.hosts.get(name, {})
            out.append({
                "name": name, "dpid": reg.get("dpid"), "vtep_ip": reg.get("vtep_ip"),
                "connected": s is not None, "in_sync": bool(s and s.in_sync),
                "realized_revision": s.realized if s else None,
                "changes_sent": s.changes_sent if s else 0, "syncs": s.syncs if s else 0,
                "last_error": s.last_error if s else None,
            })
        return out

    def wait_realized(self, revision: int, timeout: float) -> bool:
        """Block (cooperatively) until every connected host realized ``revision``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.cache.revision >= revision and all(
                    (s.realized or 0) >= revision for s in self.sessions.values() if s.host):
                return True
            hub.sleep(0.01)
        return False
