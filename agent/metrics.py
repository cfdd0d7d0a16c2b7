"""The agent's Prometheus metrics, served on ``--metrics-port`` (off by default, loopback).

Plug latency (the veth, addresses and OVS port of one endpoint, until OVS gave it an ofport),
plug failures, and reconcile passes.  One registry per agent: nothing process-global.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

PLUG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class AgentMetrics:
    """Counters and histograms of one host's agent."""

    def __init__(self, host: str) -> None:
        self.host = host
        self.registry = CollectorRegistry()
        self.plug_seconds = Histogram(
            "netplugin_agent_plug_seconds", "Seconds to plug one endpoint (veth, addresses, "
            "OVS port with its ofport)", ["host"], buckets=PLUG_BUCKETS, registry=self.registry)
        self.plug_failures = Counter("netplugin_agent_plug_failures",
                                     "Endpoints whose plug failed (retried)", ["host"],
                                     registry=self.registry)
        self.unplugs = Counter("netplugin_agent_unplugs", "Endpoints unplugged", ["host"],
                               registry=self.registry)
        self.reconciles = Counter("netplugin_agent_reconciles", "Reconcile passes", ["host"],
                                  registry=self.registry)
        for m in (self.plug_seconds, self.plug_failures, self.unplugs, self.reconciles):
            m.labels(host=host)  # present (at 0) from the first scrape

    def reconciled(self, report: Any) -> None:
        """Account one reconcile pass (an ``agent.reconcile.Report``)."""
        self.reconciles.labels(host=self.host).inc()
        for s in report.plug_seconds:
            self.plug_seconds.labels(host=self.host).observe(s)
        if report.plug_failures:
            self.plug_failures.labels(host=self.host).inc(report.plug_failures)
        if report.unplugged:
            self.unplugs.labels(host=self.host).inc(len(report.unplugged))

    def serve(self, address: str, port: int) -> Any:
        """Serve ``/metrics`` on ``address:port`` in a daemon thread; the HTTP server."""
        server, _thread = start_http_server(port, addr=address, registry=self.registry)
        return server
