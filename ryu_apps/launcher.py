"""``netplugin-controller``: start the os-ken app manager with ``ryu_apps.netplugin`` on the
eventlet hub, with ``ryu-manager``-style flags::

    netplugin-controller [--ofp-listen-host 127.0.0.1] [--ofp-tcp-listen-port 6653]
                         [--ofp-ssl-listen-port 6653 --ctl-privkey K --ctl-cert C --ca-certs CA]
                         [--etcd URL[,URL...]] [--etcd-ca CA --etcd-cert C --etcd-key K]
                         [--rest-host 127.0.0.1] [--rest-port 9999] [--rest-token-file F]
                         [--rest-cert C --rest-key K] [--insecure] [--config-file F] [--verbose]

OpenFlow and REST listen on loopback unless told otherwise; REST on any other address needs a
token (or ``--insecure``), else the launcher exits 2 with one line saying what to do.  With
``--ctl-privkey`` and ``--ctl-cert`` OpenFlow is served over TLS only, on
``--ofp-ssl-listen-port`` (switches: ``ssl:IP:PORT`` targets); ``--ca-certs`` makes every switch
show a certificate that CA signed.
"""

from __future__ import annotations

import logging
import os
import sys

EXAMPLES = """examples:
  netplugin-controller --etcd http://127.0.0.1:2379
      OpenFlow on 127.0.0.1:6653, REST API on 127.0.0.1:9999 (no token needed on loopback)
  netplugin-controller --ofp-listen-host 127.0.0.1 --ofp-tcp-listen-port 6653 --rest-port 9999
  NETPLUGIN_REST_TOKEN=$(cat /etc/netplugin/token) netplugin-controller --rest-host 0.0.0.0
  netplugin-controller --ofp-listen-host 10.0.0.1 --rest-host 10.0.0.1 \\
      --rest-token-file /etc/netplugin/token   # clients send "Authorization: Bearer <token>"
  netplugin-controller --rest-host 0.0.0.0 --insecure   # open REST API: trusted networks only
  netplugin-controller --etcd https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 \\
      --etcd-ca ca.pem --etcd-cert ctl.pem --etcd-key ctl.key \\
      --ofp-ssl-listen-port 6653 --ctl-privkey ctl.key --ctl-cert ctl.pem --ca-certs ca.pem \\
      --rest-cert ctl.pem --rest-key ctl.key      # TLS everywhere (switches: ssl:IP:6653)
"""

os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")


def _listen_on_loopback(conf) -> None:
    """OpenFlow on 127.0.0.1 unless ``--ofp-listen-host`` says otherwise (os-ken: 0.0.0.0)."""
    from ryu_apps.framework import cfg

    opt = cfg.StrOpt("ofp-listen-host", default="127.0.0.1",
                     help="address OpenFlow listens on (default 127.0.0.1: switches on this "
                          "machine only)")
    conf.unregister_opt(opt)  # os-ken's, found by name
    conf.register_cli_opt(opt)


class TlsRefusalFilter:
    """os-ken logs a switch whose TLS handshake fails (a plaintext client, a certificate from
    another CA, a port probe) as an uncaught exception with a traceback: one line instead."""

    MARKERS = ("ssl.SSL", "SSLError", "SSLEOFError", "SSLCertVerificationError",
               "SSLZeroReturnError")

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "uncaught exception" in text and "wrap_and_handle_ctx" in text and \
                any(m in text for m in self.MARKERS):
            last = [ln for ln in text.strip().splitlines() if ln.strip()][-1]
            record.msg, record.args = "OpenFlow TLS handshake refused: %s", (last.strip(),)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


def openflow_tls(conf) -> bool:
    """Whether OpenFlow is served over TLS; StartupError-style SystemExit text when the TLS
    options are incomplete or unreadable.  Sets the TLS port's default (6653)."""
    key, cert, ca = conf.ctl_privkey, conf.ctl_cert, conf.ca_certs
    if not (key or cert):
        if conf.ofp_ssl_listen_port or ca:
            raise ValueError("OpenFlow over TLS needs --ctl-privkey and --ctl-cert")
        return False
    if not (key and cert):
        raise ValueError("OpenFlow over TLS needs both --ctl-privkey and --ctl-cert")
    import ssl

    try:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(cert, key)
        if ca:
            ctx.load_verify_locations(ca)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"OpenFlow TLS files (--ctl-cert {cert}, --ctl-privkey {key}"
                         f"{', --ca-certs ' + ca if ca else ''}): cannot load: "
                         f"{getattr(exc, 'strerror', None) or exc}") from None
    if conf.ofp_ssl_listen_port is None:
        conf.set_override("ofp_ssl_listen_port", 6653)
    return True


def main(argv: list[str] | None = None) -> int:
    """Parse flags, monkey-patch (etcd calls become cooperative), run until killed."""
    import eventlet

    eventlet.monkey_patch()
    from ryu_apps import framework
    from ryu_apps import netplugin as app_module

    conf = framework.cfg.CONF
    # os-ken registers --ofp-tcp-listen-port when its controller module is imported.
    from ryu_apps.framework import app_manager  # noqa: F401

    __import__(f"{framework.FRAMEWORK}.controller.controller")
    for opt in (framework.cfg.BoolOpt("verbose", default=False, help="debug output"),
                framework.cfg.StrOpt("log-file", default=None, help="log to this file")):
        try:
            conf.register_cli_opt(opt)
        except Exception:  # noqa: BLE001 - registered already
            pass
    app_module.register_opts(conf)
    _listen_on_loopback(conf)
    args = sys.argv[1:] if argv is None else argv
    try:
        conf(args=args, project="netplugin", prog="netplugin-controller",
             description="The netplugin OpenFlow 1.3 controller and its REST API.")
    except SystemExit:
        if {"-h", "--help"} & set(args):
            print(EXAMPLES)
        raise
    try:
        app_module.rest_token_of(conf)
        app_module.rest_tls(conf.rest_cert, conf.rest_key)
        tls = openflow_tls(conf)
    except (app_module.StartupError, ValueError) as exc:
        print(f"netplugin-controller: {exc}", file=sys.stderr)
        return 2
    if conf.ofp_tcp_listen_port is None:
        conf.set_override("ofp_tcp_listen_port", 6653)
    logging.basicConfig(
        level=logging.DEBUG if conf.verbose else logging.INFO, filename=conf.log_file,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not conf.verbose:
        for noisy in ("os_ken.base.app_manager", "os_ken.controller.controller",
                      "os_ken.lib.hub", "ryu.base.app_manager"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    if tls:
        logging.getLogger("os_ken.lib.hub").addFilter(TlsRefusalFilter())
        logging.getLogger("ryu.lib.hub").addFilter(TlsRefusalFilter())
        if not conf.ca_certs:
            logging.getLogger("netplugin").warning(
                "OpenFlow over TLS without --ca-certs: any switch may connect")
    mgr = framework.app_manager.AppManager
    mgr.run_apps(["ryu_apps.netplugin", f"{framework.FRAMEWORK}.controller.ofp_handler"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
