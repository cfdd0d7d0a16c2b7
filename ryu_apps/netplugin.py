"""``netplugin``: a plain Ryu-API app that keeps every host's br-int equal to the intent in etcd.

Thin: it hands switch connections and replies to :class:`ryu_apps.core.Controller` and serves the
REST API (:mod:`ryu_apps.rest`) on the hub.  Works under the project's launcher
(``netplugin-controller``) and under ``ryu-manager ryu_apps.netplugin`` alike.
"""

from __future__ import annotations

import logging

from ryu_apps.core import Controller
from ryu_apps.framework import (
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    RyuApp,
    cfg,
    hub,
    install_raw_stats,
    ofp_event,
    ofproto_v1_3,
    set_ev_cls,
)

LOG = logging.getLogger(__name__)

OPTS = [
    cfg.StrOpt("etcd", default="http://127.0.0.1:2379",
               help="etcd client URL of the intent store (memory:// for a private one)"),
    cfg.StrOpt("rest-host", default="0.0.0.0", help="address the REST API listens on"),
    cfg.IntOpt("rest-port", default=9999, help="REST API port (0: no REST API)"),
    cfg.StrOpt("rest-token", default=None, secret=True,
               help="bearer token the REST API requires (none: open)"),
    cfg.FloatOpt("audit-interval", default=60.0,
                 help="seconds between re-reads of every switch (0: only on connect)"),
    cfg.FloatOpt("switch-timeout", default=60.0, help="seconds to wait for a switch's answer"),
]


def register_opts(conf) -> None:
    """Register the app's options on ``conf`` (CLI options if still possible; idempotent)."""
    for opt in OPTS:
        try:
            conf.register_cli_opt(opt)
        except Exception:  # noqa: BLE001 - already parsed (ryu-manager) or already registered
            try:
                conf.register_opt(opt)
            except Exception:  # noqa: BLE001
                pass


register_opts(cfg.CONF)


class NetPluginApp(RyuApp):
    """Switch lifecycle events → controller engine; REST API on the hub."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from intent.store_etcd import open_store

        conf = self.CONF
        install_raw_stats()
        self.store = kwargs.get("store") or open_store(conf.etcd)
        self.controller = Controller(self.store, audit_interval=conf.audit_interval,
                                     timeout=conf.switch_timeout)
        self.rest_port = conf.rest_port
        self._rest_server = None

    def start(self):
        thread = super().start()
        self.controller.start()
        if self.rest_port:
            from ryu_apps.rest import RestApi

            api = RestApi(self.store, self.controller, token=self.CONF.rest_token)
            self._rest_server = hub.WSGIServer((self.CONF.rest_host, self.rest_port), api)
            hub.spawn(self._rest_server.serve_forever)
            LOG.info("REST API on %s:%d", self.CONF.rest_host, self.rest_port)
        return thread

    def stop(self) -> None:
        self.controller.stop()
        super().stop()

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev) -> None:
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER and dp.id is not None:
            self.controller.switch_connected(dp)
        elif ev.state == DEAD_DISPATCHER and dp.id is not None:
            self.controller.switch_disconnected(dp)

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPGroupDescStatsReply,
                 ofp_event.EventOFPMeterConfigStatsReply, ofp_event.EventOFPBarrierReply,
                 ofp_event.EventOFPErrorMsg], MAIN_DISPATCHER)
    def _reply(self, ev) -> None:
        self.controller.switch_message(ev.msg.datapath, ev.msg)
