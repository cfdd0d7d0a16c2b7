"""The test bed's etcd: a private server in the work dir and a tiny client of its JSON gateway.

The client talks to etcd's v3 HTTP gateway with the standard library only (the same API etcd3gw
uses), so the test bed's CLI starts fast and needs no event loop.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from topologies import proc


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _unb64(text: str) -> str:
    return base64.b64decode(text).decode()


def _prefix_end(prefix: str) -> str:
    raw = bytearray(prefix.encode())
    raw[-1] += 1
    return base64.b64encode(bytes(raw)).decode()


class Etcd:
    """Minimal KV client: get/put/delete/list, and the store revision."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(self.url + path, data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=self.timeout) as resp:
            return json.loads(resp.read() or b"{}")

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
        try:
            with urllib.request.urlopen(self.url + "/health", timeout=self.timeout) as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, urllib.error.URLError, ValueError):
            return False


def start_server(workdir: Path, client_port: int, peer_port: int) -> int:
    """Start a fresh single-member etcd with its data under ``workdir``; returns its pid."""
    data = workdir / "etcd"
    if data.exists():
        proc.run(["rm", "-rf", str(data)])
    client = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{peer_port}"
    return proc.spawn([
        "etcd", "--name", "bed", "--data-dir", str(data),
        "--listen-client-urls", client, "--advertise-client-urls", client,
        "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
        "--initial-cluster", f"bed={peer}", "--initial-cluster-state", "new",
        "--log-level", "warn", "--logger", "zap"],
        workdir / "logs" / "etcd.log")
