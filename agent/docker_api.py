"""A small client of the Docker Engine API over its unix socket (stdlib ``http.client``).

The driver asks Docker only what the plugin protocol does not tell it: which container an
endpoint belongs to (``GET /networks/<id>``), and when that changes (``GET /events``).
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from urllib.parse import quote


class DockerUnavailable(Exception):
    """The Docker daemon cannot be reached or answered with an error."""


@dataclass(frozen=True)
class DockerEndpoint:
    container: str  # the container's name
    ip: str  # IPv4 address without prefix ("" when none)


@dataclass
class DockerView:
    """What Docker holds, per Docker network id of interest: its joined endpoints."""

    networks: dict[str, dict[str, DockerEndpoint]] = field(default_factory=dict)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float | None) -> None:
        super().__init__("docker", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def socket_path(url: str) -> str:
    """``unix:///run/docker.sock`` -> ``/run/docker.sock``."""
    if url.startswith("unix://"):
        return url[len("unix://"):]
    if url.startswith("/"):
        return url
    raise ValueError(f"docker host {url!r}: only unix:///path sockets are supported")


class DockerAPI:
    """``GET`` requests to one Docker daemon."""

    def __init__(self, url: str, timeout: float = 5.0) -> None:
        self.url = url
        self.path = socket_path(url)
        self.timeout = timeout

    def _get(self, path: str, stream: bool = False) -> http.client.HTTPResponse:
        conn = _UnixConnection(self.path, self.timeout)
        try:
            if stream:  # connect with a timeout, then wait for events as long as it takes
                conn.connect()
                conn.sock.settimeout(None)
            conn.request("GET", path, headers={"Host": "docker"})
            return conn.getresponse()
        except OSError as e:
            conn.close()
            raise DockerUnavailable(f"Docker at {self.url}: {e}") from e

    def _json(self, path: str) -> object | None:
        resp = self._get(path)
        try:
            body = resp.read()
        except OSError as e:
            raise DockerUnavailable(f"Docker at {self.url}: {e}") from e
        finally:
            resp.close()
        if resp.status == 404:
            return None
        if resp.status != 200:
            raise DockerUnavailable(f"Docker at {self.url}: GET {path}: HTTP {resp.status}: "
                                    f"{body[:200]!r}")
        return json.loads(body)

    def ping(self) -> bool:
        try:
            resp = self._get("/_ping")
            resp.read()
            resp.close()
            return resp.status == 200
        except (DockerUnavailable, OSError):
            return False

    def network_endpoints(self, network_id: str) -> dict[str, DockerEndpoint] | None:
        """Endpoint id -> container of every joined endpoint; None if Docker has no such
        network."""
        data = self._json(f"/networks/{quote(network_id)}")
        if data is None:
            return None
        out = {}
        for info in (data.get("Containers") or {}).values():  # type: ignore[union-attr]
            eid = info.get("EndpointID")
            if eid:
                out[eid] = DockerEndpoint(info.get("Name", ""),
                                          (info.get("IPv4Address") or "").split("/")[0])
        return out

    def view(self, network_ids: list[str]) -> DockerView:
        """The joined endpoints of each network Docker still has (absent ones are left out)."""
        view = DockerView()
        for nid in network_ids:
            eps = self.network_endpoints(nid)
            if eps is not None:
                view.networks[nid] = eps
        return view

    def events(self, filters: dict[str, list[str]]) -> Iterator[dict]:
        """Docker's event stream (one dict per event) until the connection ends.  Subscribed
        when this returns: nothing after that is missed."""
        query = quote(json.dumps(filters, separators=(",", ":")))
        resp = self._get(f"/events?filters={query}", stream=True)
        if resp.status != 200:
            body = resp.read()[:200]
            resp.close()
            raise DockerUnavailable(f"Docker at {self.url}: GET /events: HTTP {resp.status}: "
                                    f"{body!r}")
        return self._lines(resp)

    def _lines(self, resp: http.client.HTTPResponse) -> Iterator[dict]:
        try:
            while True:
                try:
                    line = resp.readline()
                except OSError as e:
                    raise DockerUnavailable(f"Docker at {self.url}: events: {e}") from e
                if not line:
                    return
                line = line.strip()
                if line:
                    try:
                        yield json.loads(line)
                    except ValueError:
                        continue
        finally:
            resp.close()
