"""The REST API on a real etcd: schemathesis over the served OpenAPI document (no 5xx, every
error ``{"errors": [...]}``, as documented), and an etcd outage answered 503 with Retry-After."""

from __future__ import annotations

import json
import logging
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from allocator import write as apply
from intent.loader import load_config
from intent.store_etcd import EtcdStore
from tests.rest_fuzzing import CASES, TOKEN, fuzz_operation, load_schema, serve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two_hosts_multiple_vxlan_nets.json"
MAX_EXAMPLES = 8  # per operation and mode: about 250 requests
SENT: Counter[str] = Counter()


@pytest.fixture
def live_api(etcd) -> Iterator[str]:
    store = EtcdStore(etcd.url)
    apply.apply_config(store, load_config(EXAMPLE), "desired")
    try:
        with serve(store) as url:
            yield url
    finally:
        store.close()


@pytest.fixture(scope="module", autouse=True)
def _report() -> Iterator[None]:
    yield
    logging.getLogger(__name__).warning("schemathesis sent %d requests to the etcd-backed API",
                                        sum(SENT.values()))


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_rest_api_on_etcd_never_fails(live_api, method, path, mode):
    fuzz_operation(load_schema(live_api), live_api, method, path, mode, MAX_EXAMPLES, SENT)


def _call(url: str, method: str, body: dict | None = None) -> tuple[int, dict, dict]:
    req = urllib.request.Request(url, method=method, headers={
        "Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        data=json.dumps(body).encode() if body is not None else None)
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.load(resp), dict(resp.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc), dict(exc.headers)


def test_etcd_outage_is_503_with_retry_after_and_heals(etcd, live_api):
    base = f"{live_api}/api/v1"
    assert _call(f"{base}/tenants", "GET")[0] == 200
    etcd.stop()
    for method, path, body in (("GET", "/tenants", None), ("GET", "/endpoints/orange-c1", None),
                               ("POST", "/tenants", {"Name": "t9"}),
                               ("DELETE", "/networks/orange", None)):
        status, out, headers = _call(base + path, method, body)
        assert (status, headers.get("Retry-After")) == (503, "2"), (method, path, out)
        assert out == {"errors": [f"intent store unavailable: etcd at {etcd.url} is "
                                  f"unreachable (connection refused); try again later"]}
    etcd.start()
    status, out, _ = _call(f"{base}/tenants", "GET")
    assert status == 200 and [t["name"] for t in out] == ["tenant-one"]
