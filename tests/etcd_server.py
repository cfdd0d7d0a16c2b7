"""A private single-member etcd for tests: own data dir, loopback ports, stop/restart by pid."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path


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
                 extra_args: tuple[str, ...] = ()):
        self.workdir = Path(workdir)
        self.client_port = client_port
        self.peer_port = peer_port
        self.name = name
        self.extra_args = extra_args
        self.data_dir = self.workdir / f"{name}.data"
        self.log_path = self.workdir / f"{name}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.client_port}"

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
        peer = f"http://127.0.0.1:{self.peer_port}"
        return [binary, "--name", self.name, "--data-dir", str(self.data_dir),
                "--listen-client-urls", self.url, "--advertise-client-urls", self.url,
                "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer,
                "--initial-cluster", f"{self.name}={peer}", *self.extra_args]

    def start(self, timeout: float = 20.0) -> EtcdServer:
        if self.running:
            return self
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
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

    def healthy(self) -> bool:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(self.url + "/health", timeout=1) as resp:
                return json.loads(resp.read()).get("health") == "true"
        except (OSError, ValueError):
            return False

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
