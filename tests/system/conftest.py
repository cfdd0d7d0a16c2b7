"""System-test fixtures: real etcd on loopback.

* ``etcd``: a started ``EtcdServer`` shared by the test module, emptied before every test (and
  started again if a test stopped it).  Restarting it inside a test is fine.
* ``etcd_factory``: ``etcd_factory()`` starts a private ``EtcdServer`` for one test (stopped after).

Ports: free loopback ports, from ``NETPLUGIN_TEST_PORTS=lo-hi`` when set, else ephemeral ones.
Every test under tests/system is marked ``system``.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.etcd_server import EtcdServer, etcd_binary, port_is_free

_HERE = Path(__file__).parent
_handed_out: set[int] = set()
_cursor = [0]


def free_port() -> int:
    """A loopback TCP port nobody listens on, not handed out recently by this session."""
    spec = os.environ.get("NETPLUGIN_TEST_PORTS")
    if spec:  # a fixed range: go round it, so a port is reused only after all others
        lo, hi = (int(p) for p in spec.split("-"))
        size = hi - lo + 1
        for step in range(size):
            port = lo + (_cursor[0] + step) % size
            if port_is_free(port):
                _cursor[0] = port - lo + 1
                return port
        raise RuntimeError(f"no free port left in NETPLUGIN_TEST_PORTS={spec}")
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def new_etcd(workdir: Path, name: str = "etcd") -> EtcdServer:
    if etcd_binary() is None:
        pytest.fail("etcd is not installed (apt-get install etcd-server; `make test` does it)")
    return EtcdServer(workdir, free_port(), free_port(), name=name).start()


@pytest.fixture(scope="module")
def _etcd_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    server = new_etcd(tmp_path_factory.mktemp("etcd"))
    yield server
    server.stop()


@pytest.fixture
def etcd(_etcd_module: EtcdServer) -> EtcdServer:
    """The module's etcd, running and empty."""
    server = _etcd_module.start()
    from intent.store_etcd import EtcdStore

    store = EtcdStore(server.url)
    try:
        store.delete("", prefix=True)
    finally:
        store.close()
    return server


@pytest.fixture(name="free_port")
def free_port_fixture() -> Callable[[], int]:
    """``free_port()`` for tests that start their own daemons."""
    return free_port


@pytest.fixture
def etcd_factory(tmp_path: Path) -> Iterator[Callable[[], EtcdServer]]:
    """Start private etcd instances (own ports and data dir) for one test."""
    servers: list[EtcdServer] = []

    def make() -> EtcdServer:
        server = new_etcd(tmp_path / f"etcd{len(servers)}", name=f"etcd{len(servers)}")
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.stop()


def pytest_terminal_summary(terminalreporter) -> None:  # noqa: ANN001 - pytest's hook
    """The fault matrix measured by this run (tests/system/fault_bed.py), if any."""
    from tests.system.fault_bed import ROWS, format_rows

    if ROWS:
        terminalreporter.write_sep("-", "fault matrix")
        for line in format_rows():
            terminalreporter.write_line(line)
