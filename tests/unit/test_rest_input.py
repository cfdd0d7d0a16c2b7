"""What the REST API accepts: body limits, nesting, UTF-8, path names, query parameters, store
outage (503), internal errors (500 without a traceback), and ``POST /config`` modes."""

from __future__ import annotations

import io
import json
import logging
import re

import pytest
from webob import Request

from intent.store import StoreUnavailable
from intent.store_memory import MemoryStore
from ryu_apps.rest import PREFIX, RestApi

TENANT = {"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
          "AllocSubnetLen": 24, "Vxlans": "10001-10002"}
NAME_RULE = "[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"
ID_RULE = "[A-Za-z0-9][A-Za-z0-9_.-]{0,126}"


def call(app, method: str, path: str, body: bytes | dict | list | None = None,
         headers: dict | None = None):
    req = Request.blank(PREFIX + path, method=method)
    if body is not None:
        req.body = body if isinstance(body, bytes) else json.dumps(body).encode()
        req.content_type = "application/json"
    req.headers.update(headers or {})
    resp = req.get_response(app)
    return resp.status_int, resp.json, resp.headers


def errors(app, method: str, path: str, body=None) -> tuple[int, list[str]]:
    status, out, _ = call(app, method, path, body)
    assert set(out) == {"errors"}, out
    return status, out["errors"]


@pytest.fixture
def app():
    return RestApi(MemoryStore())


# ---------------------------------------------------------------------- body

def test_body_over_the_limit_is_413_before_reading_it():
    app = RestApi(MemoryStore(), max_body=100)
    body = json.dumps({"Name": "t", "SubnetPool": "x" * 200}).encode()
    assert errors(app, "POST", "/tenants", body) == (
        413, [f"request body: {len(body)} bytes is over the limit of 100 bytes"])
    assert app.store.list("/") == []


def chunked(app, path: str, data: bytes):
    """A request with a chunked body (no Content-Length), as eventlet's server hands it on."""
    req = Request.blank(PREFIX + path, method="POST", headers={"Transfer-Encoding": "chunked"})
    req.environ.pop("CONTENT_LENGTH", None)
    req.body_file_raw = io.BytesIO(data)
    resp = req.get_response(app)
    return resp.status_int, resp.json


def test_chunked_body_is_read_and_cut_at_the_limit():
    app = RestApi(MemoryStore(), max_body=100)
    assert chunked(app, "/tenants", b"[" * 50 + b"]" * 50 + b" " * 10) == (
        413, {"errors": ["request body: more is over the limit of 100 bytes"]})
    status, out = chunked(app, "/tenants", json.dumps({"Name": "t1"}).encode())
    assert status == 201 and out["summary"] == ["created tenant t1"]


def test_nesting_limit_names_the_depth(app):
    assert errors(app, "POST", "/config", b"[" * 40 + b"]" * 40) == (
        400, ["request body: JSON nested 40 levels deep (at most 32)"])
    assert errors(app, "POST", "/config", b"[" * 100000 + b"]" * 100000)[0] == 400
    # brackets inside strings do not count
    status, out, _ = call(app, "POST", "/tenants", {"Name": "t", "Vlans": "[" * 40})
    assert status == 400 and "nested" not in out["errors"][0]


def test_non_utf8_body_is_400(app):
    assert errors(app, "POST", "/tenants", b'{"Name": "\xff"}') == (
        400, ["request body: not UTF-8 text (byte 0xff at offset 10)"])


@pytest.mark.parametrize(("body", "problem"), [
    (b"", "request body: empty; expected a JSON Tenant"),
    (b"{not json", "request body: invalid JSON at line 1 column 2: Expecting property name "
                   "enclosed in double quotes"),
    (b'{"Name": NaN}', "request body: NaN is not valid JSON"),
    (b'{"AllocSubnetLen": 1e999}', "request body: number 1e999 is out of range"),
    (b'{"AllocSubnetLen": ' + b"9" * 5000 + b"}",
     "request body: number 999999999999… has 5000 digits (at most 64)"),
    (b'{"Name": "\\ud800"}', "request body: a string holds an unpaired UTF-16 surrogate "
                             "('\\ud800')"),
])
def test_bad_json_bodies(app, body, problem):
    assert errors(app, "POST", "/tenants", body) == (400, [problem])


# ---------------------------------------------------------------------- path names

@pytest.mark.parametrize(("path", "param", "value", "rule", "what"), [
    ("/tenants/..", "tenant", "..", NAME_RULE, "a tenant name"),
    ("/tenants/-x", "tenant", "-x", NAME_RULE, "a tenant name"),
    ("/networks/a:b", "network", "a:b", NAME_RULE, "a network name"),
    ("/networks/" + "n" * 64, "network", "n" * 64, NAME_RULE, "a network name"),
    ("/hosts/h,x/flows", "host", "h,x", NAME_RULE, "a host name"),
    ("/endpoints/" + "e" * 128, "id", "e" * 70 + "…", ID_RULE,
     "an endpoint id <network>-<container>"),
])
def test_path_names_are_checked_naming_the_parameter(app, path, param, value, rule, what):
    assert errors(app, "GET", path) == (
        400, [f'path parameter {param} "{value}": not {what} (must match {rule})'])


def test_longest_valid_names_pass_the_check(app):
    assert errors(app, "GET", "/networks/" + "n" * 63) == (
        404, [f'network "{"n" * 63}" does not exist'])
    eid = "n" * 63 + "-" + "c" * 63
    assert errors(app, "GET", f"/endpoints/{eid}") == (404, [f'endpoint "{eid}" does not exist'])


def test_url_that_is_not_utf8_is_400(app):
    req = Request.blank("/")
    req.environ["PATH_INFO"] = PREFIX + "/tenants/\xff"  # WSGI: latin-1 decoded bytes
    resp = req.get_response(app)
    assert (resp.status_int, resp.json) == (400, {"errors": ["request URL: not UTF-8"]})


# ---------------------------------------------------------------------- query parameters

@pytest.mark.parametrize(("query", "problem"), [
    ("wait=nan", 'query parameter wait: expected seconds 0-3600, got "nan"'),
    ("wait=inf", 'query parameter wait: expected seconds 0-3600, got "inf"'),
    ("wait=-1", 'query parameter wait: expected seconds 0-3600, got "-1"'),
    ("wait=1e3", 'query parameter wait: expected seconds 0-3600, got "1e3"'),
    ("wait=3601", 'query parameter wait: expected seconds 0-3600, got "3601"'),
    ("wait=", 'query parameter wait: expected seconds 0-3600, got ""'),
    ("wait=1&wait=2", "query parameter wait: given 2 times"),
    ("bogus=1", 'unknown query parameter "bogus" (this operation takes: wait)'),
    ("b=1&a=2&wait=1", 'unknown query parameters "a", "b" (this operation takes: wait)'),
])
def test_write_query_parameters(app, query, problem):
    assert errors(app, "DELETE", f"/tenants/t1?{query}") == (400, [problem])


@pytest.mark.parametrize(("query", "problem"), [
    ("", "query parameter revision: required"),
    ("revision=nan", 'query parameter revision: expected an integer 0-9223372036854775807, '
                     'got "nan"'),
    ("revision=1.5", 'query parameter revision: expected an integer 0-9223372036854775807, '
                     'got "1.5"'),
    ("revision=-3", 'query parameter revision: expected an integer 0-9223372036854775807, '
                    'got "-3"'),
    ("revision=9223372036854775808", "query parameter revision: expected an integer "
                                     '0-9223372036854775807, got "9223372036854775808"'),
    ("revision=1&timeout=inf", 'query parameter timeout: expected seconds 0-3600, got "inf"'),
    ("revision=1&wait=1", 'unknown query parameter "wait" (this operation takes: revision, '
                          'timeout)'),
])
def test_wait_query_parameters(app, query, problem):
    assert errors(app, "GET", f"/wait?{query}") == (400, [problem])


def test_valid_query_parameters_are_used(app):
    status, out, _ = call(app, "GET", "/wait?revision=0&timeout=0.5")
    assert status == 200 and out == {"revision": 0, "realized": False}
    status, out, _ = call(app, "POST", "/tenants?wait=0", TENANT)
    assert status == 201 and out["realized"] is False  # no controller: nothing realizes it


def test_reads_take_no_query_parameters(app):
    assert errors(app, "GET", "/tenants?limit=1") == (
        400, ['unknown query parameter "limit" (this operation takes: none)'])
    assert errors(app, "GET", "/tenants?%ff=1") == (400, ["request URL: not UTF-8"])


def test_mode_must_be_known(app):
    assert errors(app, "POST", "/config?mode=replace", {"Tenants": []}) == (
        400, ['query parameter mode: "replace" is not add, desired or delete'])


# ---------------------------------------------------------------------- POST /config modes

def test_config_adds_by_default_and_replaces_only_when_asked(app):
    other = dict(TENANT, Name="t2", SubnetPool="12.1.0.0/16", Vxlans="20001-20002")
    assert call(app, "POST", "/config", {"Tenants": [TENANT]})[0] == 200
    assert call(app, "POST", "/config", {"Tenants": [other]})[0] == 200
    assert [t["name"] for t in call(app, "GET", "/tenants")[1]] == ["t1", "t2"]
    status, out, _ = call(app, "POST", "/config?mode=desired", {"Tenants": [other]})
    assert status == 200 and out["changed"]
    assert [t["name"] for t in call(app, "GET", "/tenants")[1]] == ["t2"]
    status, out, _ = call(app, "POST", "/config", {"Tenants": []})
    assert status == 200 and not out["changed"]  # add nothing: the old default wiped it all
    assert [t["name"] for t in call(app, "GET", "/tenants")[1]] == ["t2"]


# ---------------------------------------------------------------------- outages and bugs

class FailingStore(MemoryStore):
    """A store whose every operation fails with ``error``."""

    OPERATIONS = frozenset({"get", "put", "delete", "snapshot", "read", "key_names", "list",
                            "txn", "lease", "watch", "revision", "compact"})

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.error = error

    def __getattribute__(self, name: str):
        if name in FailingStore.OPERATIONS:
            raise object.__getattribute__(self, "error")
        return object.__getattribute__(self, name)


def test_store_outage_is_503_with_retry_after():
    app = RestApi(FailingStore(StoreUnavailable("etcd at http://127.0.0.1:1 is unreachable")))
    for method, path, body in (("GET", "/tenants", None), ("POST", "/tenants", TENANT),
                               ("GET", "/endpoints/a-b", None), ("POST", "/config", {})):
        status, out, headers = call(app, method, path, body)
        assert status == 503 and headers["Retry-After"] == "2"
        assert out == {"errors": ["intent store unavailable: etcd at http://127.0.0.1:1 is "
                                  "unreachable; try again later"]}


def test_internal_error_has_a_reference_and_no_traceback(caplog):
    app = RestApi(FailingStore(RuntimeError("secret detail")))
    with caplog.at_level(logging.ERROR, logger="ryu_apps.rest"):
        status, out, _ = call(app, "GET", "/tenants")
    assert status == 500
    (message,) = out["errors"]
    m = re.fullmatch(r"internal error \(reference ([0-9a-f]{12})\); the details are in the "
                     r"controller's log", message)
    assert m, message
    assert "secret detail" in caplog.text and m[1] in caplog.text
    assert "Traceback" in caplog.text  # the log has it, the answer does not


def test_method_not_allowed_lists_the_allowed_ones(app):
    status, out, headers = call(app, "PUT", "/tenants/t1")
    assert status == 405 and headers["Allow"] == "GET, DELETE"
    assert out == {"errors": ['PUT not allowed on "/api/v1/tenants/t1"; allowed: GET, DELETE']}


@pytest.mark.parametrize(("path", "body", "problem"), [
    ("/config", b'"/dev/zero"', "request body: expected an object (Config), got a string"),
    ("/config", b"[]", "request body: expected an object (Config), got an array"),
    ("/bindings", b'"/etc/passwd"', 'request body: expected an array of {"Container", "Host", '
                                    '"AttachUUID"}, got a string'),
    ("/bindings", b"null", 'request body: expected an array of {"Container", "Host", '
                           '"AttachUUID"}, got null'),
    ("/bindings", b"1.5", 'request body: expected an array of {"Container", "Host", '
                          '"AttachUUID"}, got a number'),
])
def test_a_body_of_the_wrong_type_is_400_and_never_a_file_name(app, path, body, problem):
    assert errors(app, "POST", path, body) == (400, [problem])
