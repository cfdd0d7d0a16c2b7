"""``netdcli -audit``: each kind of inconsistency is found and named; a consistent store passes;
switch differences come from the controller's audit route (a stand-in server here)."""

from __future__ import annotations

import io
import json
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from allocator.write import apply_config
from intent import keys
from intent.consistent import read_consistent
from intent.loader import load_config
from intent.store_memory import MemoryStore
from netdcli import cli
from netdcli.audit import audit_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two_hosts_multiple_vxlan_nets.json"


def healthy_store() -> MemoryStore:
    """The example written, both hosts registered and realized, myContainer1 running+plugged."""
    store = MemoryStore()
    rev = apply_config(store, load_config(EXAMPLE)).revision
    for h in ("host1", "host2"):
        store.put(keys.oper_host(h), json.dumps({"name": h}))
        store.put(keys.realized(h), json.dumps({"revision": rev}))
    store.put(keys.runtime_container("host1", "myContainer1"), json.dumps({"netns": "/x"}))
    store.put(keys.oper_endpoint("orange-myContainer1"), json.dumps({"host": "host1"}))
    return store


def problems(store: MemoryStore) -> list[str]:
    return audit_store(read_consistent(store, prefixes=[keys.ROOT]))


def test_a_consistent_store_passes() -> None:
    assert problems(healthy_store()) == []


@pytest.mark.parametrize(("damage", "expected"), [
    (lambda s: s.delete(keys.alloc_ip("orange", "11.1.0.2")),
     "endpoint orange-myContainer1: address 11.1.0.2 is not allocated to it"),
    (lambda s: s.put(keys.alloc_ip("orange", "11.1.0.9"), '{"owner": "orange-gone"}'),
     "/netplugin/alloc/ip/orange/11.1.0.9: allocated to endpoint orange-gone, which does not "
     "exist (leaked)"),
    (lambda s: s.put(keys.alloc_ip("orange", "11.1.0.9"), '{"owner": "orange-myContainer1"}'),
     "endpoint orange-myContainer1 holds 2 addresses"),
    (lambda s: s.put(keys.alloc_vni(10099), '{"owner": "green"}'),
     "/netplugin/alloc/vni/10099: allocated to network green, which does not exist (leaked)"),
    (lambda s: s.delete(keys.alloc_vni(10001)),
     "network orange: vxlan tag 10001 is not allocated to it"),
    (lambda s: s.put(keys.state_endpoint("orange-myContainer3"), s.get(keys.state_endpoint(
        "orange-myContainer1")).value.replace("myContainer1", "myContainer3")),
     "network orange: address 11.1.0.2 is used by both orange-myContainer1 and "
     "orange-myContainer3"),
    (lambda s: s.delete(keys.state_network("purple")),
     "network purple: no resolved state"),
    (lambda s: s.put(keys.state_endpoint("orange-x"), "{not json"),
     "/netplugin/state/endpoints/orange-x: unreadable value"),
    (lambda s: s.put(keys.oper_endpoint("orange-old"), '{"host": "host2"}'),
     "endpoint orange-old: plugged on host2 but not in the intent (stale port)"),
    (lambda s: s.delete(keys.oper_endpoint("orange-myContainer1")),
     "endpoint orange-myContainer1: container myContainer1 runs on host1 but the endpoint is "
     "not plugged"),
    (lambda s: s.put(keys.realized("host2"), json.dumps(
        {"revision": s.get(keys.CONFIG_REV).mod_revision - 1})),
     "host host2: switch realized revision 1, behind the last intent write at 2"),
])
def test_each_inconsistency_is_named(damage, expected: str) -> None:
    store = healthy_store()
    damage(store)
    found = problems(store)
    assert any(expected in p for p in found), found


class _Controller(BaseHTTPRequestHandler):
    answers: dict[str, tuple[int, dict]] = {}

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        code, body = self.answers.get(self.path, (404, {"errors": ["no such host"]}))
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def controller():
    server = HTTPServer(("127.0.0.1", 0), _Controller)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def run_audit(store: MemoryStore, rest: str) -> tuple[int, str]:
    out = io.StringIO()
    args = cli.build_parser().parse_args(["-audit", "-rest", rest])
    return cli.run(args, store, out=out), out.getvalue()


def test_audit_passes_only_when_switches_match_too(controller) -> None:
    _server, url = controller
    ok = {"connected": True, "differences": []}
    _Controller.answers = {"/api/v1/hosts/host1/audit": (200, ok),
                           "/api/v1/hosts/host2/audit": (200, ok)}
    code, out = run_audit(healthy_store(), url)
    assert code == 0 and "audit: consistent" in out
    _Controller.answers["/api/v1/hosts/host2/audit"] = (200, {"differences": [
        "missing flow table=30,priority=100 (owner: endpoint orange-myContainer3)"]})
    code, out = run_audit(healthy_store(), url)
    assert code == cli.EXIT_INCONSISTENT
    assert "audit: host host2 switch: missing flow table=30,priority=100 (owner: endpoint " \
        "orange-myContainer3)" in out and "audit: 1 inconsistencies" in out


def test_unreachable_controller_is_an_inconsistency(free_tcp_port: int) -> None:
    code, out = run_audit(healthy_store(), f"http://127.0.0.1:{free_tcp_port}")
    assert code == cli.EXIT_INCONSISTENT
    assert "host host1: cannot ask the controller at http://127.0.0.1:" in out


@pytest.fixture
def free_tcp_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
