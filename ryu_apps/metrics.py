"""Prometheus metrics of the controller, served by the REST API at ``GET /metrics``.

Two kinds: events counted or timed as they happen (intent-to-realized latency per host, REST
requests by route and status) and values read from the controller when scraped (entries per
host and table, syncs and their errors, changes sent, watch lag, switches connected, master
ownership).  Each controller has its own registry: nothing is process-global, so tests can run
several controllers in one process.

Master ownership comes from a callable (``master(session) -> bool``); a controller without
roles is the master of every switch connected to it.
"""

from __future__ import annotations

import logging
from collections import Counter as Tally
from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from intent import keys
from intent.store import StoreError

LOG = logging.getLogger(__name__)
NS = "netplugin"
# intent change seen by the controller -> every entry of it acknowledged by the switch
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def always_master(session: Any) -> bool:
    """Without controller roles, a connected controller is master of its switches."""
    return bool(session.alive)


class ControllerMetrics:
    """The metrics of one :class:`ryu_apps.core.Controller`."""

    def __init__(self, controller: Any, master: Callable[[Any], bool] | None = None) -> None:
        self.controller = controller
        by_host = getattr(controller, "is_master", None)  # Controller.is_master(host)
        self.master = master or (by_host and (lambda s: bool(s.host) and by_host(s.host))) \
            or always_master
        self.registry = CollectorRegistry(auto_describe=True)
        self.realize_latency = Histogram(
            f"{NS}_intent_realized_seconds", "Seconds from an intent change reaching the "
            "controller to the host's switch acknowledging every entry it changed",
            ["host"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.rest_requests = Counter(
            f"{NS}_rest_requests", "REST API requests by route, method and HTTP status",
            ["route", "method", "status"], registry=self.registry)
        self.registry.register(_StateCollector(self))
        controller.realizer.on_realized = self.realized

    def realized(self, host: str, seconds: float) -> None:
        """``host``'s switch realized every change pending on it; the oldest was ``seconds``
        old."""
        self.realize_latency.labels(host=host).observe(seconds)

    def rest_request(self, route: str, method: str, status: int) -> None:
        self.rest_requests.labels(route=route, method=method, status=str(status)).inc()

    def render(self) -> tuple[bytes, str]:
        """The exposition text and its content type."""
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _StateCollector:
    """Reads the controller's state at scrape time."""

    def __init__(self, metrics: ControllerMetrics) -> None:
        self.m = metrics

    def describe(self) -> list[Metric]:
        return []  # values come and go with hosts: nothing to pre-declare

    def collect(self) -> Iterator[Metric]:
        ctl = self.m.controller
        sessions = [s for s in list(ctl.sessions.values()) if s.alive]
        connected = GaugeMetricFamily(f"{NS}_switches_connected",
                                      "Switches connected to this controller")
        connected.add_metric([], len(sessions))
        yield connected
        master = GaugeMetricFamily(f"{NS}_switch_master", "1 when this controller is the "
                                   "master of the host's switch, else 0", labels=["host", "dpid"])
        in_sync = GaugeMetricFamily(f"{NS}_switch_in_sync", "1 when the switch's last sync "
                                    "succeeded", labels=["host"])
        for s in sessions:
            host = s.host or ""
            master.add_metric([host, f"{s.dpid:016x}"], 1 if self.m.master(s) else 0)
            in_sync.add_metric([host], 1 if s.in_sync else 0)
        yield master
        yield in_sync
        yield from self._entries(ctl)
        for name, what, tally in (
                ("syncs", "Completed syncs of each host's switch", ctl.syncs_total),
                ("sync_errors", "Failed syncs of each host's switch (retried)", ctl.sync_errors),
                ("changes_sent", "Flow, group and meter changes sent to each host's switch",
                 ctl.changes_total)):
            yield _per_host(CounterMetricFamily(f"{NS}_{name}", what, labels=["host"]), tally)
        yield from self._revisions(ctl)

    @staticmethod
    def _entries(ctl: Any) -> Iterator[Metric]:
        flows = GaugeMetricFamily(f"{NS}_flows", "Flows each host's switch should hold, per "
                                  "table", labels=["host", "table"])
        groups = GaugeMetricFamily(f"{NS}_groups", "Groups each host's switch should hold",
                                   labels=["host"])
        meters = GaugeMetricFamily(f"{NS}_meters", "Meters each host's switch should hold",
                                   labels=["host"])
        for host, table in sorted(ctl.engine.tables.items()):
            per_table = Tally(k[0] for k in table.flows)
            for t, n in sorted(per_table.items()):
                flows.add_metric([host, str(t)], n)
            groups.add_metric([host], len(table.groups))
            meters.add_metric([host], len(table.meters))
        yield flows
        yield groups
        yield meters

    @staticmethod
    def _revisions(ctl: Any) -> Iterator[Metric]:
        applied = ctl.realizer.applied
        yield GaugeMetricFamily(f"{NS}_applied_revision", "Store revision up to which the "
                                "controller applied every intent event", value=applied)
        # the controller's own writes (realized revisions) move the store but not the intent
        seen = max(applied, getattr(ctl, "watch_revision", 0))
        try:
            from ryu_apps.framework import blocking

            store_rev = blocking(ctl.store.read, [keys.OPER_APPLIED]).revision
        except StoreError as exc:
            LOG.warning("metrics: cannot read the store revision: %s", exc)
            return
        yield GaugeMetricFamily(f"{NS}_store_revision", "The intent store's current revision",
                                value=store_rev)
        yield GaugeMetricFamily(f"{NS}_watch_lag_revisions", "Store revision minus the "
                                "revision the controller has applied every event up to (0: it "
                                "has seen every change; writes to the same etcd outside "
                                "/netplugin/ count too)", value=max(0, store_rev - seen))


def _per_host(family: CounterMetricFamily, tally: Tally) -> CounterMetricFamily:
    for host, n in sorted(tally.items()):
        family.add_metric([host], n)
    return family
