"""``GET /api/v1/trace`` over a controller with fake switches: verdicts, owners, errors."""

from __future__ import annotations

import json

import pytest
from webob import Request

from ryu_apps.rest import RestApi
from tests.unit.test_controller import connect, world  # noqa: F401 - fixture


def get(app: RestApi, query: str) -> tuple[int, dict]:
    resp = Request.blank("/api/v1/trace?" + query).get_response(app)
    return resp.status_code, json.loads(resp.text)


@pytest.fixture
def api(world):  # noqa: F811
    store, ctl = world
    for dpid in (1, 2, 3):
        connect(ctl, dpid)
    return RestApi(store, ctl), ctl


def test_same_network_across_the_tunnel_is_delivered(api):
    app, ctl = api
    dst = ctl.engine.endpoints["orange-c2"]
    status, got = get(app, f"from=orange-c1&to={dst.ip}&proto=tcp&dport=80")
    assert status == 200, got
    assert [h["host"] for h in got["hops"]] == ["host1", "host2"]
    assert got["hops"][0]["in_port_is"] == "endpoint orange-c1"
    assert got["hops"][1]["in_port_is"] == "vxlan"
    owners = {s["owner"] for h in got["hops"] for s in h["steps"]}
    assert "endpoint orange-c1" in owners and "endpoint orange-c2" in owners
    delivered = [v for v in got["verdicts"] if v["result"] == "delivered"]
    assert [(v["endpoint"], v["host"], v["port"]) for v in delivered] == \
        [("orange-c2", "host2", 5)]
    assert got["summary"] == "delivered to endpoint orange-c2 on host2 (port 5)"
    assert got["hops"][0]["packet"]["tcp_dst"] == 80


def test_other_network_is_isolated_even_to_its_own_mac(api):
    app, ctl = api
    status, got = get(app, "from=orange-c1&to=blue-c3")
    assert status == 200, got
    assert not [v for v in got["verdicts"] if v["result"] == "delivered"]
    drops = [v for v in got["verdicts"] if v["result"] == "dropped"]
    assert drops and all(v["host"] == "host1" for v in drops), got["verdicts"]
    assert got["summary"].startswith("dropped"), got["summary"]
    assert got["destination"].startswith("endpoint blue-c3")


@pytest.mark.parametrize("query, status, message", [
    ("from=orange-nope&to={o}.2", 404, 'from: endpoint "orange-nope" does not exist'),
    ("from=orange-c1&to={o}.300", 400, "is not an IPv4 address"),
    ("from=orange-c1&to=no/such", 400, "neither an IPv4 address nor an endpoint id"),
    ("from=orange-c1&to=orange-zz", 404, 'to: endpoint "orange-zz" does not exist'),
    ("from=orange-c1&to={o}.99", 404, "no endpoint of network orange has address {o}.99"),
    ("from=orange-c1&to={o}.2&proto=icmp&dport=80", 400, "only with proto tcp or udp"),
    ("from=orange-c1&to={o}.2&proto=sctp", 400, "query parameter proto"),
    ("from=orange-c1&to={o}.2&dport=70000", 400, "expected a port 1-65535"),
    ("to={o}.2", 400, "from"),
    ("from=orange-c1&to={o}.2&host=host9", 404, 'host: "host9"'),
])
def test_bad_questions_get_clear_errors(api, query, status, message):
    app, ctl = api
    prefix = ctl.engine.networks["orange"].subnet.rsplit(".", 1)[0]
    got_status, got = get(app, query.format(o=prefix))
    assert got_status == status, got
    assert any(message.format(o=prefix) in e for e in got["errors"]), got["errors"]


def test_netdcli_prints_every_switch_entry_and_the_verdict(api):
    from netdcli.trace import text

    app, ctl = api
    dst = ctl.engine.endpoints["orange-c2"]
    status, got = get(app, f"from=orange-c1&to={dst.ip}")
    lines = text(got)
    assert lines[0].startswith(f"trace orange-c1 ({ctl.engine.endpoints['orange-c1'].ip} ")
    assert "host1: in_port 5 (endpoint orange-c1)" in lines
    assert "host2: in_port 100 (vxlan)" in lines
    assert any(ln.startswith("  table 0 (classify) priority") and
               ln.endswith(": endpoint orange-c1") for ln in lines), lines
    assert lines[-1] == "verdict: delivered to endpoint orange-c2 on host2 (port 5)"
