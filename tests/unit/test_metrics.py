"""``GET /metrics``: Prometheus text from a controller with fake switches (memory store)."""

from __future__ import annotations

import pytest
from prometheus_client.parser import text_string_to_metric_families
from webob import Request

from allocator.write import apply_config
from intent.loader import load_document
from intent.logfmt import logline, parse
from ryu_apps.metrics import ControllerMetrics
from ryu_apps.rest import RestApi
from tests.unit.test_controller import connect, plug, wait_for, world  # noqa: F401 - fixture


def scrape(app: RestApi, token: str | None = None) -> dict[tuple, float]:
    req = Request.blank("/metrics")
    if token:
        req.headers["Authorization"] = f"Bearer {token}"
    resp = req.get_response(app)
    assert resp.status_code == 200, resp.text
    assert resp.content_type == "text/plain"
    out = {}
    for fam in text_string_to_metric_families(resp.text):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_metrics_move_when_intent_changes(world):  # noqa: F811
    store, ctl = world
    app = RestApi(store, ctl, metrics=ControllerMetrics(ctl))
    connect(ctl, 1)
    before = scrape(app)
    assert value(before, "netplugin_switches_connected") == 1
    assert value(before, "netplugin_switch_master", host="host1", dpid=f"{1:016x}") == 1
    flows = {k: v for k, v in before.items() if k[0] == "netplugin_flows"
             and ("host", "host1") in k[1]}
    assert sum(flows.values()) == len(ctl.desired("host1").flows)
    changes = value(before, "netplugin_changes_sent_total", host="host1")
    assert changes > 0
    synced = value(before, "netplugin_intent_realized_seconds_count", host="host1")

    # a second endpoint of orange plugged on host1: more flows, a sync, a latency sample
    res = apply_config(store, load_document({"Tenants": [{"Name": "t1", "Networks": [
        {"Name": "orange", "Endpoints": [{"Container": "c9", "Host": "host1"}]}]}]}), "add")
    plug(store, "orange-c9", "host1", 9)
    assert ctl.wait_realized(res.revision + 1, 5)
    wait_for(lambda: value(scrape(app), "netplugin_changes_sent_total", host="host1") > changes)
    after = scrape(app)
    assert value(after, "netplugin_syncs_total", host="host1") > \
        value(before, "netplugin_syncs_total", host="host1")
    assert value(after, "netplugin_intent_realized_seconds_count", host="host1") > synced
    assert sum(v for k, v in after.items() if k[0] == "netplugin_flows" and
               ("host", "host1") in k[1]) > sum(flows.values())
    wait_for(lambda: value(scrape(app), "netplugin_watch_lag_revisions") == 0)  # caught up
    assert value(after, "netplugin_rest_requests_total", route="/metrics", method="GET",
                 status="200") >= 2


def test_rest_requests_are_counted_by_route_template_and_status(world):  # noqa: F811
    store, ctl = world
    app = RestApi(store, ctl, metrics=ControllerMetrics(ctl), token="s3cret")
    assert Request.blank("/api/v1/endpoints/orange-c1").get_response(app).status_code == 401
    req = Request.blank("/api/v1/endpoints/nope-x", headers={"Authorization": "Bearer s3cret"})
    assert req.get_response(app).status_code == 404
    assert Request.blank("/metrics").get_response(app).status_code == 401
    got = scrape(app, "s3cret")
    assert value(got, "netplugin_rest_requests_total", route="/api/v1/endpoints/{id}",
                 method="GET", status="404") == 1
    assert value(got, "netplugin_rest_requests_total", route="/api/v1/endpoints/{id}",
                 method="GET", status="401") == 1
    assert value(got, "netplugin_rest_requests_total", route="/metrics", method="GET",
                 status="401") == 1


@pytest.mark.parametrize("fields", [{"host": "host1", "n": 3},
                                    {"why": 'a "quoted" = value', "none": None}])
def test_structured_lines_parse_back(fields):
    line = logline("sync", **fields)
    assert line.startswith("event=sync ")
    back = parse("2026-01-01 INFO x: " + line)
    assert back == {"event": "sync", **{k: "-" if v is None else str(v)
                                        for k, v in fields.items()}}
