"""Endpoint lists, failover rules and TLS options of the etcd backend, against loopback
stand-ins (a closed port, a server that answers, a server that hangs up mid-request)."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from intent.etcd_conn import Endpoints, EtcdTls, parse_urls
from intent.store import StoreError, StoreUnavailable


def test_urls_are_split_normalised_and_checked() -> None:
    assert parse_urls(" http://a:1, b:2 ,https://[::1]:3,http://a:1") == [
        "http://a:1", "http://b:2", "https://[::1]:3"]
    assert parse_urls(["http://x"]) == ["http://x:2379"]
    for bad, why in (("", "no etcd URL"), ("ftp://a:1", "bad etcd URL"),
                     ("http://a:port", "bad port"), ("http://", "bad etcd URL")):
        with pytest.raises(StoreError, match=why):
            parse_urls(bad)


def test_tls_options_come_from_flags_then_environment() -> None:
    env = {"NETPLUGIN_ETCD_CA": "/e/ca", "NETPLUGIN_ETCD_CERT": "/e/c",
           "NETPLUGIN_ETCD_KEY": "/e/k"}
    assert EtcdTls.from_options("/f/ca", environ=env) == EtcdTls("/f/ca", "/e/c", "/e/k")
    assert not EtcdTls.from_options(environ={}).enabled


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class _Etcd(BaseHTTPRequestHandler):
    hang_up = False
    seen: list[str] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).seen.append(self.path)
        if type(self).hang_up:
            self.connection.close()  # the request arrived; its answer never leaves
            return
        body = json.dumps({"header": {"revision": "7"}, "kvs": []}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def member():
    _Etcd.hang_up, _Etcd.seen = False, []
    server = HTTPServer(("127.0.0.1", 0), _Etcd)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_a_request_moves_on_from_a_member_that_refuses(member: str) -> None:
    dead = f"http://127.0.0.1:{_closed_port()}"
    ep = Endpoints([dead, member], connect_timeout=1)
    assert ep.post("kv/put", {}, retry=False)["header"]["revision"] == "7"  # never sent: safe
    assert ep.url == member and ep.failovers == 1


def test_a_write_that_reached_a_member_is_not_sent_again(member: str) -> None:
    other = f"http://127.0.0.1:{_closed_port()}"
    _Etcd.hang_up = True
    ep = Endpoints([member, other], connect_timeout=1, timeout=2)
    with pytest.raises(StoreUnavailable, match="connection closed before the answer"):
        ep.post("kv/txn", {}, retry=False)
    assert _Etcd.seen == ["/v3/kv/txn"] and ep.url == other  # the next call goes elsewhere
    _Etcd.seen = []
    ep = Endpoints([member, other], connect_timeout=1, timeout=2)
    with pytest.raises(StoreUnavailable) as err:  # a read is retried on the next member
        ep.post("kv/range", {}, retry=True)
    assert _Etcd.seen == ["/v3/kv/range"] and f"{other}: connection refused" in str(err.value)
