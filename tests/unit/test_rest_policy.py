"""REST routes of endpoint groups, policies, rules and endpoint moves (in-memory store)."""

from __future__ import annotations

import pytest

from intent.store_memory import MemoryStore
from ryu_apps.rest import RestApi
from tests.unit.test_rest import TENANT, call


@pytest.fixture
def app():
    api = RestApi(MemoryStore())
    assert call(api, "POST", "/tenants", TENANT)[0] == 201
    assert call(api, "POST", "/tenants/t1/networks", {"Name": "orange"})[0] == 201
    assert call(api, "POST", "/tenants/t1/endpointgroups", {"Name": "app"})[0] == 201
    return api


WEB_IN = {"Name": "web-in", "Rules": [
    {"Id": 1, "Priority": 1, "Direction": "in", "Action": "deny"},
    {"Id": 2, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app", "Protocol": "tcp",
     "Port": 80, "Action": "allow"}]}


def test_policies_groups_rules_and_moves_round_trip(app):
    assert call(app, "POST", "/tenants/t1/policies", WEB_IN)[0] == 201
    assert call(app, "POST", "/tenants/t1/endpointgroups",
                {"Name": "web", "Policies": ["web-in"]})[0] == 201
    status, p = call(app, "GET", "/tenants/t1/policies/web-in")
    assert status == 200 and p["Rules"] == WEB_IN["Rules"]
    assert call(app, "POST", "/tenants/t1/policies/web-in/rules",
                {"Id": 3, "Priority": 20, "Direction": "in", "FromIpAddress": "11.1.0.0/24",
                 "Protocol": "icmp", "Action": "allow"})[0] == 201
    status, out = call(app, "POST", "/tenants/t1/policies/web-in/rules",
                       {"Id": 3, "Priority": 5, "Direction": "in", "Action": "deny"})
    assert status == 409 and "rule 3 exists already" in out["errors"][0]
    assert [r["Id"] for r in call(app, "GET", "/tenants/t1/policies/web-in")[1]["Rules"]] == \
        [1, 2, 3]
    assert call(app, "DELETE", "/tenants/t1/policies/web-in/rules/2")[0] == 200
    assert [r["Id"] for r in call(app, "GET", "/tenants/t1/policies/web-in")[1]["Rules"]] == \
        [1, 3]
    assert call(app, "POST", "/networks/orange/endpoints",
                {"Container": "c1", "EndpointGroup": "web"})[0] == 201
    assert call(app, "GET", "/endpoints/orange-c1")[1]["group"] == "web"
    assert call(app, "GET", "/tenants/t1/endpointgroups/web")[1]["Members"] == 1
    assert call(app, "PATCH", "/endpoints/orange-c1", {"EndpointGroup": "app"})[0] == 200
    assert call(app, "GET", "/endpoints/orange-c1")[1]["group"] == "app"
    assert call(app, "PATCH", "/endpoints/orange-c1", {"EndpointGroup": None})[0] == 200
    assert call(app, "GET", "/endpoints/orange-c1")[1]["group"] is None
    groups = {g["Name"]: g for g in call(app, "GET", "/tenants/t1/endpointgroups")[1]}
    assert groups["web"]["Policies"] == ["web-in"] and groups["app"]["Members"] == 0


def test_refusals_name_the_object(app):
    status, out = call(app, "DELETE", "/tenants/t1/policies/nope")
    assert status == 404 and 'policy "t1/nope" does not exist' in out["errors"][0]
    status, out = call(app, "POST", "/tenants/t1/endpointgroups",
                       {"Name": "web", "Policies": ["missing"]})
    assert status == 400 and 'no such policy in tenant "t1"' in out["errors"][0]
    assert call(app, "POST", "/tenants/t1/policies", WEB_IN)[0] == 201
    assert call(app, "POST", "/tenants/t1/endpointgroups",
                {"Name": "web", "Policies": ["web-in"]})[0] == 201
    status, out = call(app, "DELETE", "/tenants/t1/policies/web-in")
    assert status == 400 and 'still applied by endpoint group "web"' in out["errors"][0]
    call(app, "POST", "/networks/orange/endpoints", {"Container": "c1", "EndpointGroup": "web"})
    status, out = call(app, "DELETE", "/tenants/t1/endpointgroups/web")
    assert status == 400 and "still used by 1 endpoint" in out["errors"][0]
    status, out = call(app, "PATCH", "/endpoints/orange-c1", {"EndpointGroup": "ghost"})
    assert status == 400 and '"ghost": no such endpoint group' in out["errors"][0]
    assert call(app, "POST", "/tenants/t1/policies", WEB_IN)[0] == 409
    assert call(app, "DELETE", "/tenants/t1/policies/web-in/rules/abc")[0] == 400
    assert call(app, "GET", "/tenants/nope/policies")[0] == 404
