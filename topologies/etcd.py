"""The test bed's etcd: a private server in the work dir and a tiny client of its JSON gateway.

The client talks to etcd's v3 HTTP gateway with the standard library only (the same API etcd3gw
uses), so the test bed's CLI starts fast and needs no event loop.  One member or a cluster
(``up --etcd-members 3``), plain or TLS (``up --tls``).
"""

from __future__ import annotations

import base64
import json
import ssl
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class Etcd:
    """Minimal KV client: get/put/delete/list, and the store revision.

    ``url`` may list several members (comma-separated): a request that cannot reach one goes to
    the next.  ``tls``: a :class:`topologies.certs.CertFiles` for https members.
    """

    def __init__(self, url: str, timeout: float = 5.0, tls: Any = None) -> None:
        self.urls = [u.strip().rstrip("/") for u in url.split(",") if u.strip()]
        self.url = self.urls[0]
        self.timeout = timeout
        self.tls = tls
        handlers: list[Any] = [urllib.request.ProxyHandler({})]  # never via a proxy
        if tls is not None:
            context = ssl.create_default_context(cafile=str(tls.ca))
            context.load_cert_chain(str(tls.cert), str(tls.key))
            handlers.append(urllib.request.HTTPSHandler(context=context))
        self._opener = urllib.request.build_opener(*handlers)

    def _open(self, req: urllib.request.Request | str):
        return self._opener.open(req, timeout=self.timeout)

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        last: Exception | None = None
        for url in [self.url] + [u for u in self.urls if u != self.url]:
            req = urllib.request.Request(url + path, data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
            try:
                with self._open(req) as resp:
                    self.url = url
                    return json.loads(resp.read() or b"{}")
            except urllib.error.HTTPError:
                raise
            except OSError as exc:  # this member is down: try the next
                last = exc
        assert last is not None
        raise last

    def put(self, key: str, value: str) -> int:
        out = self._call("/v3/kv/put", {"key": _b64(key), "value": _b64(value)})
        return int(out["header"]["revision"])

    def get(self, key: str) -> str | None:
        out = self._call("/v3/kv/range", {"key": _b64(key)})
        kvs = out.get("kvs") or []
        return _unb64(kvs[0].get("value", "")) if kvs else None

    def list(self, prefix: str) -> dict[str, str]:
        out = self._call("/v3/kv/range", {"key": _b64(prefix), "range_end": _prefix_end(prefix)})
        return {_unb64(kv["key"]): _unb64(kv.get("value", "")) for kv in out.get("kvs") or []}

    def delete(self, key: str) -> int:
        out = self._call("/v3/kv/deleterange", {"key": _b64(key)})
        return int(out.get("deleted", 0))

    def revision(self) -> int:
        out = self._call("/v3/kv/range", {"key": _b64("\0"), "count_only": True})
        return int(out["header"]["revision"])

    def healthy(self) -> bool:
        """Whether every member answers ``/health`` with true."""
        return all(self.member_healthy(u) for u in self.urls)

    def member_healthy(self, url: str) -> bool:
        try:
            with self._open(url + "/health") as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, urllib.error.URLError, ValueError):
            return False

    def member_status(self, url: str) -> dict[str, Any]:
        """``/v3/maintenance/status`` of one member (its id, the leader's id, raft term)."""
        req = urllib.request.Request(url + "/v3/maintenance/status", data=b"{}",
                                     headers={"Content-Type": "application/json"})
        with self._open(req) as resp:
            return json.loads(resp.read())

    def leader(self) -> str | None:
        """The client URL of the raft leader (None if no member says it is)."""
        for url in self.urls:
            try:
                st = self.member_status(url)
            except (OSError, ValueError):
                continue
            if st.get("leader") and st["leader"] == st.get("header", {}).get("member_id"):
                return url
        return None


def member_name(index: int, members: int) -> str:
    """The recorded process name of etcd member ``index`` (``etcd`` when it is alone)."""
    return "etcd" if members == 1 else f"etcd{index + 1}"


def server_command(workdir: Path, index: int, members: list[tuple[int, int]],
                   tls: Any = None) -> list[str]:
    """The command line of member ``index`` of a cluster whose (client, peer) ports are
    ``members``; its data under ``workdir/etcd/<name>``.  TLS (client and peer, client
    certificates required) with ``tls`` (a CertFiles)."""
    scheme = "https" if tls else "http"
    names = [member_name(i, len(members)) for i in range(len(members))]
    client, peer = (f"{scheme}://127.0.0.1:{p}" for p in members[index])
    cluster = ",".join(f"{n}={scheme}://127.0.0.1:{p}"
                       for n, (_c, p) in zip(names, members, strict=True))
    cmd = ["etcd", "--name", names[index], "--data-dir", str(workdir / "etcd" / names[index]),
           "--listen-client-urls", client, "--advertise-client-urls", client,
           "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
           "--initial-cluster", cluster, "--initial-cluster-state", "new",
           "--log-level", "warn", "--logger", "zap"]
    if tls:
        files = [str(tls.cert), str(tls.key), str(tls.ca)]
        cmd += ["--cert-file", files[0], "--key-file", files[1], "--trusted-ca-file", files[2],
                "--client-cert-auth", "--peer-cert-file", files[0], "--peer-key-file", files[1],
                "--peer-trusted-ca-file", files[2], "--peer-client-cert-auth"]
    return cmd
