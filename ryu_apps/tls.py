"""OpenFlow over TLS for the controller: checking os-ken's TLS options before it starts, and one
log line (not a traceback) for each switch or client whose TLS handshake fails.

With ``--ctl-privkey`` and ``--ctl-cert`` os-ken serves OpenFlow over TLS only, on
``--ofp-ssl-listen-port`` (6653 unless given); ``--ca-certs`` makes it require a switch
certificate signed by that CA (switches: ``ssl:IP:PORT`` targets, ``ovs-vsctl set-ssl``).
"""

from __future__ import annotations

import logging


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
    """Whether OpenFlow is served over TLS; ValueError (saying what to do) when the TLS options
    are incomplete or unreadable.  Sets the TLS port's default (6653)."""
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


def install_refusal_filter() -> None:
    """Make failed OpenFlow TLS handshakes one line each in the log."""
    for name in ("os_ken.lib.hub", "ryu.lib.hub"):
        logging.getLogger(name).addFilter(TlsRefusalFilter())
