"""TLS options are checked before anything starts, with a message naming the flag; a refused
OpenFlow handshake is one log line; the test bed's certificates verify as a chain."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from pathlib import Path

import pytest

from ryu_apps.netplugin import StartupError, rest_tls
from ryu_apps.tls import TlsRefusalFilter, openflow_tls
from topologies.certs import Authority, bed_certificates


class Conf:
    """The part of oslo.config's CONF that openflow_tls reads."""

    def __init__(self, **kw) -> None:
        self.ctl_privkey = self.ctl_cert = self.ca_certs = self.ofp_ssl_listen_port = None
        self.__dict__.update(kw)

    def set_override(self, name: str, value) -> None:
        setattr(self, name, value)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    return Authority(tmp_path_factory.mktemp("tls")).issue("controller")


def test_openflow_tls_needs_key_and_cert_that_load(files, tmp_path: Path) -> None:
    assert openflow_tls(Conf()) is False
    with pytest.raises(ValueError, match="needs --ctl-privkey and --ctl-cert"):
        openflow_tls(Conf(ca_certs=str(files.ca)))
    with pytest.raises(ValueError, match="needs both --ctl-privkey and --ctl-cert"):
        openflow_tls(Conf(ctl_cert=str(files.cert)))
    with pytest.raises(ValueError, match="cannot load"):
        openflow_tls(Conf(ctl_cert=str(files.cert), ctl_privkey=str(tmp_path / "nope.key")))
    conf = Conf(ctl_cert=str(files.cert), ctl_privkey=str(files.key), ca_certs=str(files.ca))
    assert openflow_tls(conf) is True and conf.ofp_ssl_listen_port == 6653


def test_rest_tls_needs_both_files(files, tmp_path: Path) -> None:
    assert rest_tls(None, None) is None
    with pytest.raises(StartupError, match="both --rest-cert and --rest-key"):
        rest_tls(str(files.cert), None)
    with pytest.raises(StartupError, match="cannot load"):
        rest_tls(str(tmp_path / "none.pem"), str(files.key))
    assert rest_tls(str(files.cert), str(files.key)) == (str(files.cert), str(files.key))


def test_refused_handshake_is_one_warning_line() -> None:
    text = ("hub: uncaught exception: Traceback (most recent call last):\n"
            '  File "hub.py", line 62, in wrap_and_handle_ctx\n'
            "ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:992)\n")
    rec = logging.LogRecord("os_ken.lib.hub", logging.ERROR, "hub.py", 1, "%s", (text,), None)
    assert TlsRefusalFilter().filter(rec)
    assert rec.levelname == "WARNING" and rec.getMessage() == (
        "OpenFlow TLS handshake refused: ssl.SSLError: [SSL: WRONG_VERSION_NUMBER] wrong "
        "version number (_ssl.c:992)")
    other = logging.LogRecord("os_ken.lib.hub", logging.ERROR, "hub.py", 1, "boom", (), None)
    TlsRefusalFilter().filter(other)
    assert other.getMessage() == "boom" and other.levelname == "ERROR"


def test_bed_certificates_chain_to_the_bed_ca(tmp_path: Path) -> None:
    made = bed_certificates(tmp_path, ["host1", "host2"])
    assert set(made) == {"etcd", "client", "controller", "switch-host1", "switch-host2"}
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(made["etcd"].ca))
    server.load_cert_chain(str(made["etcd"].cert), str(made["etcd"].key))
    server.verify_mode = ssl.CERT_REQUIRED  # as etcd --client-cert-auth
    client = ssl.create_default_context(cafile=str(made["client"].ca))
    client.load_cert_chain(str(made["client"].cert), str(made["client"].key))
    a, b = socket.socketpair()
    peer: list = []
    with server.wrap_socket(a, server_side=True, do_handshake_on_connect=False) as srv:
        t = threading.Thread(target=lambda: (srv.do_handshake(), peer.append(srv.getpeercert())))
        t.start()
        with client.wrap_socket(b, server_hostname="127.0.0.1") as cli:  # SAN 127.0.0.1
            assert cli.getpeercert()["subject"][-1][0][1] == "etcd"
        t.join(5)
    assert peer and peer[0]["subject"][-1][0][1] == "client"
    assert (made["etcd"].key.stat().st_mode & 0o777) == 0o600
    again = bed_certificates(tmp_path, ["host1", "host2"])  # kept, not re-issued
    assert again["etcd"].cert.read_bytes() == made["etcd"].cert.read_bytes()
