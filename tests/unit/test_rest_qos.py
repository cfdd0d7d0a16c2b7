"""REST routes of QoS profiles and a network's multicast (in-memory store), and netdcli's
``-construct qosprofile``."""

from __future__ import annotations

import io
import json

import pytest

from intent import keys
from intent.store_memory import MemoryStore
from ryu_apps.rest import RestApi
from tests.unit.test_rest import TENANT, call


@pytest.fixture
def app():
    api = RestApi(MemoryStore())
    assert call(api, "POST", "/tenants", TENANT)[0] == 201
    return api


def test_profiles_round_trip_and_a_used_profile_cannot_go(app):
    gold = {"Name": "gold", "Bandwidth": 10000, "Burst": 1000, "Dscp": 46}
    assert call(app, "POST", "/tenants/t1/qosprofiles", {**gold, "Bandwidth": "10mbps"})[0] == 201
    assert call(app, "GET", "/tenants/t1/qosprofiles/gold") == (200, gold)
    status, out = call(app, "POST", "/tenants/t1/qosprofiles", gold)
    assert status == 409 and 'QoS profile "t1/gold" exists already' in out["errors"][0]
    assert call(app, "PUT", "/tenants/t1/qosprofiles/gold", {"Bandwidth": 20000})[0] == 200
    assert call(app, "GET", "/tenants/t1/qosprofiles") == (200, [{"Name": "gold",
                                                                  "Bandwidth": 20000}])
    status, out = call(app, "PUT", "/tenants/t1/qosprofiles/gold", {"Dscp": 64})
    assert status == 400 and "Dscp 64: must be 0-63" in out["errors"][0]
    assert call(app, "POST", "/tenants/t1/networks",
                {"Name": "orange", "QosProfile": "gold"})[0] == 201
    status, out = call(app, "DELETE", "/tenants/t1/qosprofiles/gold")
    assert status == 400 and "still used by 1 network" in out["errors"][0]
    assert call(app, "GET", "/tenants/t1/qosprofiles/silver")[0] == 404


def test_multicast_shows_declared_and_learned_receivers_per_host(app):
    net = {"Name": "orange", "Multicast": {"Snooping": True, "Groups": [
        {"Address": "239.1.1.1", "Receivers": ["c1"]}]},
        "Endpoints": [{"Container": "c1", "Host": "h1"}, {"Container": "c2", "Host": "h2"}]}
    assert call(app, "POST", "/tenants/t1/networks", net)[0] == 201
    app.store.put(keys.mcast_member("orange", "239.1.1.1", "orange-c2"), "{}")
    app.store.put(keys.mcast_member("orange", "239.2.2.2", "orange-c2"), "{}")
    status, out = call(app, "GET", "/networks/orange/multicast")
    assert status == 200 and out == {"Network": "orange", "Snooping": True, "Groups": [
        {"Address": "239.1.1.1", "Declared": ["c1"], "Learned": {"h2": ["orange-c2"]}},
        {"Address": "239.2.2.2", "Declared": [], "Learned": {"h2": ["orange-c2"]}}]}


def test_netdcli_gets_and_deletes_a_qos_profile(app):
    from netdcli import cli

    def run(*argv: str) -> tuple[int, str]:
        out = io.StringIO()
        return cli.run(cli.build_parser().parse_args(list(argv)), app.store, out=out), \
            out.getvalue()

    assert call(app, "POST", "/tenants/t1/qosprofiles", {"Name": "gold", "Dscp": 46})[0] == 201
    code, out = run("-oper", "get", "-construct", "qosprofile", "t1/gold")
    assert code == 0 and json.loads(out) == {"Name": "gold", "Dscp": 46}
    assert run("-oper", "delete", "-construct", "qosprofile", "t1/gold")[0] == 0
    assert app.store.get(keys.qos_profile("t1", "gold")) is None
