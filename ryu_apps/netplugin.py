"""``netplugin``: a plain Ryu-API app that keeps every host's br-int equal to the intent in etcd.

Thin: it hands switch connections and replies to :class:`ryu_apps.core.Controller` and serves the
REST API (:mod:`ryu_apps.rest`) on the hub.  Works under the project's launcher
(``netplugin-controller``) and under ``ryu-manager ryu_apps.netplugin`` alike.

Safe by default: the REST API listens on 127.0.0.1; on any other address it needs a bearer token
(``--rest-token-file``, ``$NETPLUGIN_REST_TOKEN`` or ``--rest-token``) unless ``--insecure`` is
given, or the controller refuses to start (:func:`rest_token`).  With ``--rest-cert`` and
``--rest-key`` it serves HTTPS only.  The intent store may be several etcd members
(``--etcd URL1,URL2,URL3``) reached over TLS (``--etcd-ca``, ``--etcd-cert``, ``--etcd-key``).
"""

from __future__ import annotations

import ipaddress
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from ryu_apps.core import Controller
from ryu_apps.framework import (
    DEAD_DISPATCHER,
    MAIN_DISPATCHER,
    RyuApp,
    blocking,
    cfg,
    hub,
    install_raw_stats,
    ofp_event,
    ofproto_v1_3,
    set_ev_cls,
)
from ryu_apps.igmp import Snooper, queries
from ryu_apps.rest_input import MAX_BODY

LOG = logging.getLogger(__name__)
TOKEN_ENV = "NETPLUGIN_REST_TOKEN"

OPTS = [
    cfg.StrOpt("etcd", default="http://127.0.0.1:2379",
               help="etcd client URL of the intent store, or several members of one cluster "
                    "separated by commas (memory:// for a private store)"),
    cfg.StrOpt("etcd-ca", default=None,
               help="CA certificate that signed etcd's (https:// URLs; or $NETPLUGIN_ETCD_CA)"),
    cfg.StrOpt("etcd-cert", default=None,
               help="client certificate for etcd (or $NETPLUGIN_ETCD_CERT)"),
    cfg.StrOpt("etcd-key", default=None,
               help="private key of the etcd client certificate (or $NETPLUGIN_ETCD_KEY)"),
    cfg.StrOpt("rest-cert", default=None,
               help="certificate of the REST API: serve HTTPS only (with --rest-key)"),
    cfg.StrOpt("rest-key", default=None, help="private key of --rest-cert"),
    cfg.StrOpt("rest-host", default="127.0.0.1",
               help="address the REST API listens on; any but loopback needs a token "
                    "(or --insecure)"),
    cfg.IntOpt("rest-port", default=9999, help="REST API port (0: no REST API)"),
    cfg.StrOpt("rest-token-file", default=None,
               help=f"file holding the bearer token the REST API requires (or ${TOKEN_ENV})"),
    cfg.StrOpt("rest-token", default=None, secret=True,
               help="bearer token the REST API requires (visible in ps: prefer "
                    "--rest-token-file)"),
    cfg.BoolOpt("insecure", default=False,
                help="allow the REST API on a non-loopback address without a token"),
    cfg.IntOpt("rest-max-body", default=MAX_BODY, min=1,
               help="largest REST request body in bytes (larger: 413)"),
    cfg.FloatOpt("audit-interval", default=60.0,
                 help="seconds between re-reads of every switch (0: only on connect)"),
    cfg.IntOpt("master-lease-ttl", default=5, min=0,
               help="seconds a controller's etcd lease lives without a refresh: when it dies, "
                    "another controller becomes master of its switches that long after (several "
                    "controllers; 0: no election, this controller writes every switch)"),
    cfg.StrOpt("controller-name", default=None,
               help="this controller's name in the election, unique among the controllers "
                    "(default: HOSTNAME:REST-PORT)"),
    cfg.FloatOpt("switch-timeout", default=60.0, help="seconds to wait for a switch's answer"),
    cfg.FloatOpt("igmp-query-interval", min=1.0,
                 default=float(os.environ.get("NETPLUGIN_IGMP_QUERY_INTERVAL") or 60.0),
                 help="seconds between IGMP general queries in snooping networks (Q; a "
                      "learned membership expires after 2Q + 10 s without a report)"),
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


class StartupError(Exception):
    """The controller must not start as configured; the message says what to do."""


def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps a service reachable from this machine only."""
    if host.lower() in ("localhost", "localhost.localdomain", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def rest_token(host: str, port: int, token: str | None, token_file: str | None,
               insecure: bool, environ: Mapping[str, str] = os.environ) -> str | None:
    """The REST API's bearer token (None: open), or StartupError when it would listen beyond
    loopback without one and without ``insecure``."""
    if token and token_file:
        raise StartupError("give only one of --rest-token and --rest-token-file")
    if token_file:
        try:
            token = Path(token_file).read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            raise StartupError(f"--rest-token-file {token_file}: cannot read: {why}") from None
        if not token:
            raise StartupError(f"--rest-token-file {token_file}: the file is empty")
    token = token or environ.get(TOKEN_ENV, "").strip() or None
    if port and not token and not insecure and not is_loopback(host):
        raise StartupError(
            f"refusing to serve the REST API on {host}:{port} without a token: give "
            f"--rest-token-file FILE (or ${TOKEN_ENV}), or listen on --rest-host 127.0.0.1, "
            f"or add --insecure to serve it open")
    return token


def rest_tls(cert: str | None, key: str | None) -> tuple[str, str] | None:
    """(cert, key) for an HTTPS REST API, None for plain HTTP; StartupError when only one is
    given, or a file cannot be read."""
    if not cert and not key:
        return None
    if not (cert and key):
        raise StartupError("HTTPS for the REST API needs both --rest-cert and --rest-key")
    import ssl

    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise StartupError(f"--rest-cert {cert} / --rest-key {key}: cannot load: "
                           f"{getattr(exc, 'strerror', None) or exc}") from None
    return cert, key


def rest_token_of(conf) -> str | None:
    """:func:`rest_token` for the parsed options ``conf``."""
    return rest_token(conf.rest_host, conf.rest_port, conf.rest_token, conf.rest_token_file,
                      conf.insecure)


def _serve_https(listen: tuple[str, int], app, cert: str, key: str) -> None:
    """The REST API over TLS only.  The handshake happens in each connection's own
    greenthread, never in the accept loop; a client that fails it (plaintext HTTP, an
    untrusted certificate) gets one log line, not a traceback."""
    import ssl

    import eventlet
    import eventlet.wsgi

    class Protocol(eventlet.wsgi.HttpProtocol):
        def handle(self) -> None:
            try:
                super().handle()
            except (ssl.SSLError, ConnectionError) as exc:
                LOG.warning("REST: TLS connection from %s refused: %s", self.client_address[0],
                            exc)

    sock = eventlet.wrap_ssl(eventlet.listen(listen), certfile=cert, keyfile=key,
                             server_side=True)
    eventlet.wsgi.server(sock, app, log=logging.getLogger("ryu_apps.rest.access"),
                         protocol=Protocol)


def _election(conf, store, https: bool):
    """The etcd election of masters among several controllers (None: ``--master-lease-ttl 0``)."""
    if not conf.master_lease_ttl:
        return None
    import socket

    from ryu_apps.election import Election

    rest = (f"{'https' if https else 'http'}://{conf.rest_host}:{conf.rest_port}"
            if conf.rest_port else None)
    name = conf.controller_name or f"{socket.gethostname()}:{conf.rest_port or os.getpid()}"
    return Election(store, name, conf.master_lease_ttl, rest)


class NetPluginApp(RyuApp):
    """Switch lifecycle events → controller engine; REST API on the hub."""

    OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        from intent.store_etcd import open_store

        conf = self.CONF
        from intent.etcd_conn import EtcdTls

        try:
            self._rest_token = rest_token_of(conf)
            self._rest_tls = rest_tls(conf.rest_cert, conf.rest_key)
        except StartupError as exc:  # ryu-manager: exit with the message, not a traceback
            raise SystemExit(f"netplugin: {exc}") from None
        install_raw_stats()
        self.store = kwargs.get("store") or open_store(
            conf.etcd, EtcdTls.from_options(conf.etcd_ca, conf.etcd_cert, conf.etcd_key))
        self.controller = Controller(self.store, audit_interval=conf.audit_interval,
                                     timeout=conf.switch_timeout, election=_election(
                                         conf, self.store, self._rest_tls is not None))
        self.rest_port = conf.rest_port
        self._rest_server = None
        self.snooper = Snooper(self.store, self._locate, conf.igmp_query_interval)

    def start(self):
        thread = super().start()
        self.controller.start(background=True)  # OpenFlow listens while the store loads
        self._querier_thread = hub.spawn(self._querier)
        conf = self.CONF
        if getattr(conf, "ctl_privkey", None) and getattr(conf, "ctl_cert", None):
            LOG.info("OpenFlow over TLS on %s:%s (switch certificates %s)",
                     getattr(conf, "ofp_listen_host", "?"), conf.ofp_ssl_listen_port or 6653,
                     f"signed by {conf.ca_certs}" if conf.ca_certs else "not checked")
        else:
            LOG.info("OpenFlow on %s:%s", getattr(conf, "ofp_listen_host", "?"),
                     getattr(conf, "ofp_tcp_listen_port", None) or 6653)
        if self.rest_port:
            from ryu_apps.metrics import ControllerMetrics
            from ryu_apps.rest import RestApi

            api = RestApi(self.store, self.controller, token=self._rest_token,
                          max_body=self.CONF.rest_max_body,
                          metrics=ControllerMetrics(self.controller))
            listen = (self.CONF.rest_host, self.rest_port)
            if self._rest_tls:
                hub.spawn(_serve_https, listen, api, *self._rest_tls)
            else:
                self._rest_server = hub.WSGIServer(listen, api)
                hub.spawn(self._rest_server.serve_forever)
            LOG.info("REST API on %s://%s:%d (%s)", "https" if self._rest_tls else "http",
                     self.CONF.rest_host, self.rest_port,
                     "bearer token required" if self._rest_token else "open")
            if not self._rest_token and not is_loopback(self.CONF.rest_host):
                LOG.warning("REST API on %s without a token (--insecure): anyone who reaches "
                            "it can change every network", self.CONF.rest_host)
        return thread

    def stop(self) -> None:
        if getattr(self, "_querier_thread", None) is not None:
            hub.kill(self._querier_thread)
        self.controller.stop()
        super().stop()

    # ------------------------------------------------------------------ IGMP (ryu_apps.igmp)
    def _locate(self, host: str, ofport: int):
        engine = self.controller.engine
        ep = engine.endpoint_at(host, ofport)
        net = ep and engine.networks.get(ep.network)
        return (ep, net) if net else None

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _igmp_packet_in(self, ev) -> None:
        msg = ev.msg
        host = self.controller.cache.host_for_dpid(msg.datapath.id)
        in_port = msg.match.get("in_port") if msg.match else None
        if in_port is not None:
            blocking(self.snooper.packet_in, host, in_port, bytes(msg.data))

    def _querier(self) -> None:
        interval = self.snooper.query_interval
        while True:
            hub.sleep(interval)
            try:
                sessions = {s.host: s for s in list(self.controller.sessions.values())
                            if s.host and s.alive and self.controller.is_master(s.host)}
                for q in queries(sessions, self.controller.engine, min(10.0, interval / 2)):
                    dp = sessions[q.host].dp
                    parser, ofp = dp.ofproto_parser, dp.ofproto
                    dp.send_msg(parser.OFPPacketOut(
                        datapath=dp, buffer_id=ofp.OFP_NO_BUFFER, in_port=ofp.OFPP_CONTROLLER,
                        actions=[parser.OFPActionOutput(p, 0) for p in q.ports], data=q.frame))
            except Exception:  # noqa: BLE001 - the querier must keep running
                LOG.exception("IGMP querier round failed")

    @set_ev_cls(ofp_event.EventOFPStateChange, [MAIN_DISPATCHER, DEAD_DISPATCHER])
    def _state_change(self, ev) -> None:
        dp = ev.datapath
        if ev.state == MAIN_DISPATCHER and dp.id is not None:
            self.controller.switch_connected(dp)
        elif ev.state == DEAD_DISPATCHER and dp.id is not None:
            self.controller.switch_disconnected(dp)

    @set_ev_cls([ofp_event.EventOFPFlowStatsReply, ofp_event.EventOFPGroupDescStatsReply,
                 ofp_event.EventOFPMeterConfigStatsReply, ofp_event.EventOFPBarrierReply,
                 ofp_event.EventOFPRoleReply, ofp_event.EventOFPErrorMsg,
                 ofp_event.EventONFBundleCtrlMsg], MAIN_DISPATCHER)
    def _reply(self, ev) -> None:
        self.controller.switch_message(ev.msg.datapath, ev.msg)

    @set_ev_cls(ofp_event.EventOFPPacketIn, MAIN_DISPATCHER)
    def _packet_in(self, ev) -> None:
        self.controller.packet_in(ev.msg.datapath, ev.msg.data)
