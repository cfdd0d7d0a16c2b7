"""Private etcd for tests: one member (:class:`EtcdServer`) or a cluster (:class:`EtcdCluster`),
own data dirs, loopback ports, optional TLS, stop/restart by pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any


def etcd_binary() -> str | None:
    """The etcd executable (``ETCD_BIN`` overrides), or ``None`` when it is not installed."""
    return os.environ.get("ETCD_BIN") or shutil.which("etcd") or (
        "/usr/bin/etcd" if os.path.exists("/usr/bin/etcd") else None)


def port_is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


class EtcdServer:
    """One etcd process.  ``start`` waits until ``/health`` answers; ``restart`` keeps the data."""

    def __init__(self, workdir: Path, client_port: int, peer_port: int, name: str = "etcd",
                 extra_args: tuple[str, ...] = (), initial_cluster: str | None = None,
                 tls: Any = None):
        self.workdir = Path(workdir)
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.extra_args = extra_args
        self.tls = tls  # topologies.certs.CertFiles: https, client certificates required
        self.initial_cluster = initial_cluster
        self.data_dir = self.workdir / f"{name}.data"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.client_port}"

    @property
    def peer_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.peer_port}"

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def command(self) -> list[str]:
        binary = etcd_binary()
        if binary is None:
            raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
        peer = self.peer_url
        tls: list[str] = []
        if self.tls:
            t = self.tls
            tls = ["--cert-file", str(t.cert), "--key-file", str(t.key),
                   "--trusted-ca-file", str(t.ca), "--client-cert-auth",
                   "--peer-cert-file", str(t.cert), "--peer-key-file", str(t.key),
                   "--peer-trusted-ca-file", str(t.ca), "--peer-client-cert-auth"]
        return [binary, "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", self.initial_cluster or f"{self.name}={peer}", *tls,
                *self.extra_args]

    def spawn(self) -> None:
        """Start the process without waiting for it to be healthy."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    def start(self, timeout: float = 20.0) -> EtcdServer:
        if self.running:
            return self
        self.spawn()
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"etcd exited with {self.proc.returncode}; log:\n"
                                   + self.log_tail())
            if self.healthy():
                return self
            time.sleep(0.05)
        self.stop(kill=True)
        raise RuntimeError(f"etcd at {self.url} not healthy after {timeout}s; log:\n"
                           + self.log_tail())

    def _opener(self) -> urllib.request.OpenerDirector:
        handlers: list[Any] = [urllib.request.ProxyHandler({})]
        if self.tls:
            ctx = ssl.create_default_context(cafile=str(self.tls.ca))
            ctx.load_cert_chain(str(self.tls.cert), str(self.tls.key))
            handlers.append(urllib.request.HTTPSHandler(context=ctx))
        return urllib.request.build_opener(*handlers)

    def healthy(self) -> bool:
        try:
            with self._opener().open(self.url + "/health", timeout=1) as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

    def status(self) -> dict[str, Any]:
        """This member's ``/v3/maintenance/status`` (its id, the leader's id, its revision)."""
        req = urllib.request.Request(self.url + "/v3/maintenance/status", data=b"{}",
                                     headers={"Content-Type": "application/json"})
        with self._opener().open(req, timeout=2) as resp:
            return json.loads(resp.read())

    def stop(self, kill: bool = False, timeout: float = 10.0) -> None:
        """Stop the process (SIGTERM, or SIGKILL with ``kill=True``) and wait for it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL if kill else signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.proc = None

    def restart(self, kill: bool = False) -> EtcdServer:
        self.stop(kill=kill)
        return self.start()

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> EtcdServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EtcdCluster:
    """``size`` members on loopback, started together; ``leader()`` finds the raft leader."""

    def __init__(self, workdir: Path, ports: list[tuple[int, int]], tls: Any = None) -> None:
        scheme = "https" if tls else "http"
        names = [f"m{i + 1}" for i in range(len(ports))]
        initial = ",".join(f"{n}={scheme}://127.0.0.1:{peer}"
                           for n, (_c, peer) in zip(names, ports, strict=True))
        self.members = [EtcdServer(workdir, c, p, name=n, initial_cluster=initial, tls=tls)
                        for n, (c, p) in zip(names, ports, strict=True)]

    @property
    def urls(self) -> list[str]:
        return [m.url for m in self.members]

    @property
    def url(self) -> str:
        """All client URLs, comma-separated (what ``--etcd`` takes)."""
        return ",".join(self.urls)

    def start(self, timeout: float = 30.0) -> EtcdCluster:
        for m in self.members:
            if not m.running:
                m.spawn()
        deadline = time.monotonic() + timeout
        while not all(m.healthy() for m in self.members if m.running):
            dead = [m for m in self.members if m.proc is not None and m.proc.poll() is not None]
            if dead:
                raise RuntimeError(f"etcd {dead[0].name} exited; log:\n{dead[0].log_tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError("etcd cluster not healthy; log:\n"
                                   + self.members[0].log_tail())
            time.sleep(0.1)
        return self

    def leader(self, timeout: float = 15.0) -> EtcdServer:
        """The member that is the raft leader (asked of every running member)."""
        deadline = time.monotonic() + timeout
        while True:
            for m in self.members:
                if not m.running:
                    continue
                try:
                    st = m.status()
                except (OSError, ValueError):
                    continue
                if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                    return m
            if time.monotonic() > deadline:
                raise RuntimeError("no etcd leader")
            time.sleep(0.1)

    def stop(self) -> None:
        for m in self.members:
            m.stop()
