"""How the etcd backend reaches a cluster: several endpoints, failover, client TLS.

An :class:`Endpoints` holds the cluster's client URLs (``"URL1,URL2,URL3"``) and the one in use.
A request that cannot reach the member in use moves on to the next member.  It is retried there
at once when that cannot apply it twice: it never reached the first member (connection refused,
TLS handshake failed), or it only reads.  A write whose answer was lost is not retried here (it
may have landed): the caller gets ``StoreUnavailable`` and decides (``allocator.write`` looks
for its write id).

TLS (:class:`EtcdTls`): ``https://`` URLs, the CA that signed the members' certificates, and a
client certificate and key when the cluster requires client authentication
(``--client-cert-auth``).  The command-line flags ``--etcd-ca``, ``--etcd-cert`` and
``--etcd-key`` (or ``$NETPLUGIN_ETCD_CA``, ``$NETPLUGIN_ETCD_CERT``, ``$NETPLUGIN_ETCD_KEY``)
give them.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests

from intent.etcd_http import MemberClient, Unreachable, tls_context
from intent.store import StoreError, StoreUnavailable

LOG = logging.getLogger(__name__)

API_PATH = "/v3/"  # etcd >= 3.4 (3.4 also answers /v3beta/; /v3alpha/ is gone)
DEFAULT_URL = "http://127.0.0.1:2379"
ENV_URLS = "NETPLUGIN_ETCD"
ENV_CA, ENV_CERT, ENV_KEY = "NETPLUGIN_ETCD_CA", "NETPLUGIN_ETCD_CERT", "NETPLUGIN_ETCD_KEY"


@dataclass(frozen=True)
class EtcdTls:
    """Client TLS settings: ``ca`` verifies the members, ``cert`` + ``key`` identify us."""

    ca: str | None = None
    cert: str | None = None
    key: str | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.ca or self.cert or self.key)

    @classmethod
    def from_options(cls, ca: str | None = None, cert: str | None = None,
                     key: str | None = None,
                     environ: Mapping[str, str] = os.environ) -> EtcdTls:
        """Flags first, then ``$NETPLUGIN_ETCD_CA`` / ``_CERT`` / ``_KEY``."""
        return cls(ca or environ.get(ENV_CA) or None, cert or environ.get(ENV_CERT) or None,
                   key or environ.get(ENV_KEY) or None)

    def check(self) -> None:
        """StoreError naming the flag when a file is missing or only half a key pair is given."""
        if bool(self.cert) != bool(self.key):
            raise StoreError("etcd client TLS needs both a certificate (--etcd-cert) and its "
                             "key (--etcd-key)")
        for flag, path in (("--etcd-ca", self.ca), ("--etcd-cert", self.cert),
                           ("--etcd-key", self.key)):
            if path and not os.path.isfile(path):
                raise StoreError(f"{flag} {path}: no such file")


def parse_urls(urls: str | Sequence[str]) -> list[str]:
    """``"URL1,URL2"`` (or a list) as normalised ``scheme://host:port`` URLs."""
    items = urls.split(",") if isinstance(urls, str) else list(urls)
    out: list[str] = []
    for raw in (u.strip() for u in items):
        if not raw:
            continue
        parts = urlsplit(raw if "://" in raw else "http://" + raw)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreError(f"bad etcd URL {raw!r} (expected http://HOST:PORT or "
                             "https://HOST:PORT, several separated by commas)")
        try:
            port = parts.port or 2379
        except ValueError:
            raise StoreError(f"bad etcd URL {raw!r}: bad port") from None
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        url = f"{parts.scheme}://{host}:{port}"
        if url not in out:
            out.append(url)
    if not out:
        raise StoreError("no etcd URL given")
    return out


def session(tls: EtcdTls | None = None) -> requests.Session:
    """An HTTP session for etcd: never through a proxy from the environment; TLS as given."""
    s = requests.Session()
    s.trust_env = False
    if tls is not None:
        if tls.ca:
            s.verify = tls.ca
        if tls.cert and tls.key:
            s.cert = (tls.cert, tls.key)
    return s


class Endpoints:
    """The members of one cluster, the one in use, and failover between them."""

    def __init__(self, urls: str | Sequence[str], tls: EtcdTls | None = None,
                 timeout: float = 5.0, connect_timeout: float = 2.0) -> None:
        self.urls = parse_urls(urls)
        self.tls = tls or EtcdTls()
        self.tls.check()
        plain = [u for u in self.urls if u.startswith("http://")]
        if self.tls.enabled and plain:
            raise StoreError(f"etcd TLS options given, but {', '.join(plain)} is not https://")
        self.connect_timeout = connect_timeout
        self.session = session(self.tls)  # the watch's streams
        context = tls_context(self.tls.ca, self.tls.cert, self.tls.key) \
            if any(u.startswith("https://") for u in self.urls) else None
        self._clients = [MemberClient(url, API_PATH, context, connect_timeout, timeout)
                         for url in self.urls]
        self._index = 0
        self._lock = threading.Lock()
        self.failovers = 0

    @property
    def url(self) -> str:
        """The member in use."""
        return self.urls[self._index]

    def describe(self) -> str:
        return self.url if len(self.urls) == 1 else f"{self.url} (of {', '.join(self.urls)})"

    def index(self) -> int:
        return self._index

    def failover(self, failed: int) -> int:
        """Member ``failed`` did not answer: use the next one (unless someone already moved
        on); returns the index now in use."""
        with self._lock:
            if self._index == failed and len(self.urls) > 1:
                self._index = (failed + 1) % len(self.urls)
                self.failovers += 1
                LOG.warning("etcd at %s did not answer: using %s", self.urls[failed],
                            self.urls[self._index])
            return self._index

    def watch_url(self, index: int) -> str:
        return self._clients[index].url("watch")

    def post(self, path: str, payload: dict[str, Any], retry: bool) -> dict[str, Any]:
        """POST to the member in use, moving on to the next on failure (see module doc);
        ``retry``: the request may be sent again even if it reached a member."""
        errors: list[str] = []
        for _ in range(len(self.urls)):
            i = self._index
            client = self._clients[i]
            try:
                return client.post(path, payload)
            except Unreachable as exc:
                errors.append(f"{self.urls[i]}: {exc.reason}")
                self.failover(i)
                if not (retry or exc.never_sent):
                    break
        if len(self.urls) == 1:
            raise StoreUnavailable(f"etcd at {self.urls[0]} is unreachable "
                                   f"({errors[0].split(': ', 1)[1]})")
        raise StoreUnavailable("etcd is unreachable: " + "; ".join(errors))

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self.session.close()
