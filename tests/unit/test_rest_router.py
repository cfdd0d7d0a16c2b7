"""REST routes of routers and netdcli -construct router (in-memory store); validation that
names the field."""

from __future__ import annotations

import json

import pytest

from intent import keys
from intent.model import RouterConfig
from intent.router_doc import check_router
from intent.store_memory import MemoryStore
from ryu_apps.rest import RestApi
from tests.unit.test_netdcli import netdcli
from tests.unit.test_rest import call

TENANT = {"Name": "t1", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
          "AllocSubnetLen": 24, "Vxlans": "10001-10009", "Vlans": "100-109"}


@pytest.fixture
def app():
    api = RestApi(MemoryStore())
    assert call(api, "POST", "/tenants", TENANT)[0] == 201
    for name, kind in (("orange", "vxlan"), ("purple", "vlan"), ("green", "vxlan")):
        assert call(api, "POST", "/tenants/t1/networks",
                    {"Name": name, "PktTagType": kind})[0] == 201
    assert call(api, "POST", "/tenants/t1/networks",
                {"Name": "ext", "PktTagType": "vlan", "SubnetCIDR": "192.0.2.0/24",
                 "DefaultGw": "192.0.2.1"})[0] == 201
    assert call(api, "POST", "/tenants", {**TENANT, "Name": "t2", "Vxlans": "10011-10019",
                                         "Vlans": "110-119"})[0] == 201
    assert call(api, "POST", "/tenants/t2/networks", {"Name": "blue"})[0] == 201
    return api


R1 = {"Name": "r1", "Networks": ["orange", "purple"], "ExternalNetwork": "ext",
      "ExternalIp": "192.0.2.2", "GatewayHost": "host1"}


def test_routers_round_trip_with_their_id(app):
    assert call(app, "POST", "/tenants/t1/routers", R1)[0] == 201
    status, r = call(app, "GET", "/tenants/t1/routers/r1")
    assert status == 200
    assert {k: r[k] for k in R1} == R1 and isinstance(r["Id"], int) and r["GatewayMac"] is None
    assert [x["Name"] for x in call(app, "GET", "/tenants/t1/routers")[1]] == ["r1"]
    status, out = call(app, "POST", "/tenants/t1/routers", R1)
    assert status == 409 and 'router "t1/r1"' in out["errors"][0]
    assert call(app, "DELETE", "/tenants/t1/routers/r1")[0] == 200
    assert call(app, "GET", "/tenants/t1/routers/r1")[0] == 404
    assert app.store.get(keys.state_router("t1", "r1")) is None


@pytest.mark.parametrize("body, expect", [
    ({"Name": "r2", "Networks": ["nope"]}, 'Networks[0] "nope": no such network in tenant'),
    ({"Name": "r2", "Networks": ["blue"]}, 'Networks[0] "blue": no such network in tenant'),
    ({"Name": "r2", "Networks": ["orange", "orange"]}, "listed twice"),
    ({"Name": "r2", "Networks": ["orange"], "ExternalNetwork": "ext"},
     "ExternalNetwork, ExternalIp and GatewayHost go together"),
    ({"Name": "r2", "Networks": ["orange"], "ExternalNetwork": "green", "ExternalIp": "1.2.3.4",
      "GatewayHost": "h"}, 'ExternalNetwork "green": must be a VLAN network'),
    ({"Name": "r2", "Networks": ["orange"], "ExternalNetwork": "ext",
      "ExternalIp": "192.0.2.1", "GatewayHost": "h"}, 'ExternalIp "192.0.2.1": not a free'),
    ({"Name": "bad name!", "Networks": []}, 'Name "bad name!"'),
])
def test_router_refusals_name_the_field(app, body, expect):
    status, out = call(app, "POST", "/tenants/t1/routers", body)
    assert status == 400, out
    assert any(expect in e for e in out["errors"]), out
    assert call(app, "GET", "/tenants/t1/routers/r2")[0] == 404


def test_one_network_on_one_router_and_no_overlapping_subnets(app):
    assert call(app, "POST", "/tenants/t1/routers", {"Name": "r1", "Networks": ["orange"]})[0] \
        == 201
    status, out = call(app, "POST", "/tenants/t1/routers",
                       {"Name": "r2", "Networks": ["green", "orange"]})
    assert status == 400 and 'already on router "r1"' in out["errors"][0]
    assert call(app, "POST", "/tenants/t1/networks",
                {"Name": "twin", "SubnetCIDR": "11.1.0.0/16"})[0] == 201
    status, out = call(app, "POST", "/tenants/t1/routers",
                       {"Name": "r3", "Networks": ["green", "twin"]})
    assert status == 400 and "overlap" in out["errors"][0]
    problems: list[str] = []
    check_router(RouterConfig("r3", "t1", ("a", "b")), "router r3", problems.append,
                 {"a": {"subnet": "10.0.0.0/16"}, "b": {"subnet": "10.0.1.0/24"}}, {})
    assert problems == ['router r3.Networks: "a" (10.0.0.0/16) and "b" (10.0.1.0/24) overlap; '
                        'a router cannot route between overlapping subnets']


def test_a_network_on_a_router_is_not_deleted_from_under_it(app):
    assert call(app, "POST", "/tenants/t1/routers", R1)[0] == 201
    status, out = call(app, "DELETE", "/networks/purple")
    assert status == 409 or status == 400
    assert 'is on router "r1"' in out["errors"][0]
    status, out = call(app, "DELETE", "/networks/ext")
    assert 'external network of router "r1"' in out["errors"][0]


def test_netdcli_construct_router(app):
    assert call(app, "POST", "/tenants/t1/routers", R1)[0] == 201
    app.store.put(keys.oper_gateway("t1", "r1"), json.dumps({"mac": "52:54:00:00:00:01"}))
    code, out, _ = netdcli(app.store, "-oper", "get", "-construct", "router", "t1/r1")
    view = json.loads(out)
    assert code == 0 and view["Networks"] == ["orange", "purple"]
    assert view["GatewayMac"] == "52:54:00:00:00:01"
    assert netdcli(app.store, "-oper", "delete", "-construct", "router", "t1/r1")[0] == 0
    code, _, err = netdcli(app.store, "-oper", "get", "-construct", "router", "t1/r1")
    assert code == 3 and 'router "r1" does not exist in tenant "t1"' in err
    code, _, err = netdcli(app.store, "-oper", "get", "-construct", "router", "r1")
    assert code == 2 and "TENANT/NAME" in err
