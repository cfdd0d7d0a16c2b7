"""One etcd member's JSON gateway over plain ``http.client``, on a small pool of kept connections.

Every store call is one small POST; ``requests`` (with urllib3's pool and hooks) costs about
0.4 ms of CPU and 0.45 ms of latency more per call than the standard library on the same
connection, and a write makes several calls.  This is the whole client: POST a JSON body, read
a JSON answer, tell apart a request that certainly never reached the member (connecting failed:
safe to send elsewhere) from one whose answer was lost.

A kept connection that the member closed while idle is noticed before it is reused (it reads
as ready), as urllib3 does, so a member restart does not turn the next call into a lost answer.
Under eventlet the ``socket``/``ssl``/``select`` modules are green: calls yield as they wait.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import ssl
import threading
from typing import Any
from urllib.parse import urlsplit

POOL = 8  # idle connections kept per member
UNAVAILABLE = (408, 503, 504)  # the member cannot serve it now: like no answer (maybe applied)


class Unreachable(Exception):
    """The member did not answer; ``never_sent``: the request certainly did not reach it."""

    def __init__(self, reason: str, never_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.never_sent = never_sent


class HttpError(Exception):
    """The member answered with an HTTP error; ``detail_text`` is its body."""

    def __init__(self, status: int, reason: str, detail_text: str) -> None:
        super().__init__(f"HTTP {status} {reason}: {detail_text[:200]}")
        self.status = status
        self.detail_text = detail_text


def tls_context(ca: str | None, cert: str | None, key: str | None) -> ssl.SSLContext:
    """Verify the members with ``ca`` (else the system's CAs); present ``cert``/``key``."""
    ctx = ssl.create_default_context(cafile=ca) if ca else ssl.create_default_context()
    if cert and key:
        ctx.load_cert_chain(cert, key)
    return ctx


def _ssl_reason(exc: BaseException) -> str:
    text = str(exc)
    for marker in ("CERTIFICATE_VERIFY_FAILED", "certificate required", "WRONG_VERSION_NUMBER",
                   "unknown ca", "bad certificate", "hostname mismatch"):
        if marker.lower() in text.lower():
            return marker.replace("_", " ").lower()
    return text[:200]


class MemberClient:
    """POSTs JSON to one member (``http[s]://host:port``) under ``api_path``."""

    def __init__(self, url: str, api_path: str, context: ssl.SSLContext | None,
                 connect_timeout: float, timeout: float) -> None:
        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "", parts.port or 2379
        self.https = parts.scheme == "https"
        self.api_path = api_path
        self.context = context
        self.connect_timeout, self.timeout = connect_timeout, timeout
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()

    def url(self, path: str) -> str:
        scheme = "https" if self.https else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}{self.api_path}{path}"

    # ------------------------------------------------------------------ connections
    def _connect(self) -> http.client.HTTPConnection:
        if self.https:
            conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                self.host, self.port, timeout=self.connect_timeout, context=self.context)
        else:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except ssl.SSLError as exc:
            conn.close()
            raise Unreachable(f"TLS handshake failed: {_ssl_reason(exc)}", True) from exc
        except ConnectionRefusedError as exc:
            conn.close()
            raise Unreachable("connection refused", True) from exc
        except TimeoutError as exc:
            conn.close()
            raise Unreachable("connection timed out", True) from exc
        except OSError as exc:
            conn.close()
            raise Unreachable(f"cannot connect ({exc.strerror or exc})", True) from exc
        assert conn.sock is not None
        conn.sock.settimeout(self.timeout)
        return conn

    def _take(self) -> http.client.HTTPConnection:
        """An idle kept connection the member did not close meanwhile, or a new one."""
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self._connect()
            if conn.sock is not None and not _dropped(conn.sock):
                return conn
            conn.close()

    def _give_back(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < POOL:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    # ------------------------------------------------------------------ requests
    def post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        """The member's JSON answer; raises :class:`Unreachable` or :class:`HttpError`."""
        conn = self._take()
        body = json.dumps(payload)
        try:
            conn.request("POST", self.api_path + path, body,
                         {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except ssl.SSLError as exc:  # TLS 1.3: the member refuses our certificate only now
            conn.close()
            raise Unreachable(f"TLS handshake failed: {_ssl_reason(exc)}", True) from exc
        except TimeoutError as exc:
            conn.close()
            raise Unreachable("no answer in time", False) from exc
        except (http.client.HTTPException, OSError) as exc:
            conn.close()
            raise Unreachable("connection closed before the answer", False) from exc
        if resp.will_close:
            conn.close()
        else:
            self._give_back(conn)
        text = data.decode("utf-8", "replace")
        if resp.status in UNAVAILABLE:  # no leader, leader changed, timed out in the member
            raise Unreachable(f"member unavailable ({_error(text)})", False)
        if resp.status != 200:
            raise HttpError(resp.status, resp.reason, text)
        try:
            return json.loads(text)
        except ValueError as exc:
            raise HttpError(resp.status, "not JSON", text) from exc


def _error(text: str) -> str:
    try:
        return str(json.loads(text).get("error", text))[:200]
    except (ValueError, AttributeError):
        return text.strip()[:200]


def _dropped(sock: socket.socket) -> bool:
    """A kept connection is ready to read only when the member closed it (or misbehaves)."""
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
