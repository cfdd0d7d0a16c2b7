"""The REST API as a WSGI app over the in-memory store (no controller, no sockets)."""

from __future__ import annotations

import json
import logging
import re

import pytest
from webob import Request

from intent.store_memory import MemoryStore
from ryu_apps.rest import PREFIX, ROUTES, RestApi

TENANT = {"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
          "AllocSubnetLen": 24, "Vxlans": "10001-10002"}


def call(app, method, path, body=None, token=None):
    req = Request.blank(PREFIX + path, method=method)
    if body is not None:
        req.body = json.dumps(body).encode()
        req.content_type = "application/json"
    if token:
        req.headers["Authorization"] = f"Bearer {token}"
    resp = req.get_response(app)
    return resp.status_int, resp.json


@pytest.fixture
def app():
    return RestApi(MemoryStore())


def test_crud_round_trip(app):
    assert call(app, "POST", "/tenants", TENANT)[0] == 201
    status, out = call(app, "POST", "/tenants/t1/networks", {"Name": "orange"})
    assert status == 201 and out["changed"] and out["revision"] > 0
    assert call(app, "POST", "/networks/orange/endpoints",
                {"Container": "c1", "Host": "host1"})[0] == 201
    status, ep = call(app, "GET", "/endpoints/orange-c1")
    assert status == 200 and ep["host"] == "host1" and ep["ip"].startswith("11.1.")
    status, net = call(app, "GET", "/networks/orange")
    assert net["state"]["tag"] == 10001 and net["endpoints"] == ["orange-c1"]
    assert call(app, "GET", "/tenants/t1")[1]["networks"] == ["orange"]
    assert call(app, "POST", "/bindings", [{"Container": "c1", "Host": "host2"}])[0] == 200
    assert call(app, "GET", "/endpoints/orange-c1")[1]["host"] == "host2"
    assert call(app, "DELETE", "/endpoints/orange-c1")[0] == 200
    assert call(app, "GET", "/endpoints/orange-c1")[0] == 404
    assert call(app, "DELETE", "/tenants/t1")[0] == 200
    assert call(app, "GET", "/tenants")[1] == []


class Counting(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def read(self, keys=(), prefixes=(), revision=None):
        self.calls.append("read")
        return super().read(keys, prefixes, revision)

    def txn(self, compares, ops, *args, **kw):
        self.calls.append("txn")
        return super().txn(compares, ops, *args, **kw)


def test_adding_an_endpoint_is_one_read_and_one_transaction():
    store = Counting()
    app = RestApi(store)
    call(app, "POST", "/tenants", TENANT)
    call(app, "POST", "/tenants/t1/networks", {"Name": "orange"})
    call(app, "POST", "/networks/orange/endpoints", {"Container": "c0", "Host": "host1"})
    store.calls = []
    status, out = call(app, "POST", "/networks/orange/endpoints",
                       {"Container": "c1", "Host": "host1"})
    assert status == 201 and out["summary"] == ["created endpoint orange-c1"]
    assert store.calls == ["read", "txn"]
    assert call(app, "GET", "/endpoints/orange-c1")[1]["ip"] == "11.1.0.3"
    assert call(app, "POST", "/networks/orange/endpoints", {"Container": "c1"}) == (
        409, {"errors": ['endpoint "orange-c1" exists already']})
    assert call(app, "POST", "/networks/ghost/endpoints", {"Container": "c1"}) == (
        404, {"errors": ['network "ghost" does not exist']})
    status, out = call(app, "POST", "/networks/orange/endpoints",
                       {"Container": "c2", "EndpointGroup": "nope"})
    assert status == 400 and "nope" in out["errors"][0], out
    assert call(app, "GET", "/endpoints/orange-c2")[0] == 404


def test_errors_are_json_with_every_message(app):
    status, out = call(app, "POST", "/tenants", {"Name": "t", "Vlans": "9-1", "Bogus": 1})
    assert status == 400 and len(out["errors"]) == 2
    assert call(app, "GET", "/networks/nope")[0] == 404
    assert call(app, "POST", "/tenants/nope/networks", {"Name": "x"})[0] == 404
    call(app, "POST", "/tenants", TENANT)
    assert call(app, "POST", "/tenants", TENANT)[0] == 409
    for name in ("a", "b"):
        call(app, "POST", "/tenants/t1/networks", {"Name": name})
    status, out = call(app, "POST", "/tenants/t1/networks", {"Name": "c"})
    assert status == 409 and "exhausted" in out["errors"][0]
    assert [n["name"] for n in call(app, "GET", "/networks")[1]] == ["a", "b"]  # nothing half
    assert call(app, "PUT", "/tenants")[0] == 405
    req = Request.blank(PREFIX + "/tenants", method="POST", body=b"{not json")
    assert req.get_response(app).status_int == 400


def test_bearer_token_is_required_and_never_logged_or_echoed(caplog):
    caplog.set_level(logging.DEBUG)
    app = RestApi(MemoryStore(), token="s3cret-7d1f")
    assert call(app, "GET", "/tenants")[0] == 401
    status, out = call(app, "GET", "/tenants", token="guess-4be2")
    assert status == 401 and out == {"errors": ["missing or wrong bearer token"]}
    assert call(app, "GET", "/tenants", token="s3cret-7d1f")[0] == 200
    assert call(app, "GET", "/openapi.json")[0] == 200
    # the refusals are logged (so this log is one someone writes to) ...
    refused = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert refused == [f"GET {PREFIX}/tenants from ? refused: no bearer token",
                       f"GET {PREFIX}/tenants from ? refused: wrong bearer token"]
    # ... and neither the real token nor a guessed one ever appears in it
    assert "s3cret-7d1f" not in caplog.text and "guess-4be2" not in caplog.text


# The REST contract: every operation the API offers (a route renamed or dropped is a break).
CONTRACT = {
    ("GET", "/openapi.json"), ("POST", "/config"), ("GET", "/tenants"), ("POST", "/tenants"),
    ("GET", "/tenants/{tenant}"), ("DELETE", "/tenants/{tenant}"),
    ("POST", "/tenants/{tenant}/networks"), ("GET", "/networks"), ("GET", "/networks/{network}"),
    ("DELETE", "/networks/{network}"), ("POST", "/networks/{network}/endpoints"),
    ("GET", "/endpoints"), ("GET", "/endpoints/{id}"), ("DELETE", "/endpoints/{id}"),
    ("POST", "/bindings"), ("GET", "/hosts"), ("GET", "/hosts/{host}/flows"), ("GET", "/wait"),
    ("GET", "/hosts/{host}/audit"),
    ("GET", "/problems"), ("GET", "/trace"), ("PATCH", "/endpoints/{id}"),
    ("GET", "/tenants/{tenant}/policies"), ("POST", "/tenants/{tenant}/policies"),
    ("GET", "/tenants/{tenant}/policies/{policy}"),
    ("DELETE", "/tenants/{tenant}/policies/{policy}"),
    ("POST", "/tenants/{tenant}/policies/{policy}/rules"),
    ("DELETE", "/tenants/{tenant}/policies/{policy}/rules/{rule}"),
    ("GET", "/tenants/{tenant}/endpointgroups"), ("POST", "/tenants/{tenant}/endpointgroups"),
    ("GET", "/tenants/{tenant}/endpointgroups/{group}"),
    ("DELETE", "/tenants/{tenant}/endpointgroups/{group}"),
    ("GET", "/tenants/{tenant}/routers"), ("POST", "/tenants/{tenant}/routers"),
    ("GET", "/tenants/{tenant}/routers/{router}"),
    ("DELETE", "/tenants/{tenant}/routers/{router}"),
    ("GET", "/tenants/{tenant}/qosprofiles"), ("POST", "/tenants/{tenant}/qosprofiles"),
    ("GET", "/tenants/{tenant}/qosprofiles/{qosprofile}"),
    ("PUT", "/tenants/{tenant}/qosprofiles/{qosprofile}"),
    ("DELETE", "/tenants/{tenant}/qosprofiles/{qosprofile}"),
    ("GET", "/networks/{network}/multicast"),
}


def test_openapi_documents_the_contract_and_what_each_operation_answers(app):
    doc = call(app, "GET", "/openapi.json")[1]
    ops = {(m.upper(), p[len(PREFIX):]): op for p, methods in doc["paths"].items()
           for m, op in methods.items()}
    assert set(ops) == CONTRACT == {(r.method, r.path) for r in ROUTES}
    for (method, path), op in sorted(ops.items()):
        # called for an object that does not exist and without a body, each operation answers
        # with one of the statuses its document lists (and is dispatched: not 404 "no such")
        concrete = re.sub(r"\{\w+\}", "nope", path)
        status, out = call(app, method, concrete)
        assert str(status) in op["responses"], (method, path, status, out)
        assert not (status == 404 and "no such resource" in out["errors"][0]), (method, path)
    params = {p["name"] for p in ops[("POST", "/config")]["parameters"]}
    assert {"mode", "wait"} <= params
    assert call(app, "POST", "/config?mode=bogus", {})[0] == 400
