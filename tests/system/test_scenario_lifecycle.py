"""Intent changes on a running test bed: desired-state updates, endpoints and networks coming and
going, late host bindings.  Every change is written with ``netdcli … -wait`` (no sleeps)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

from ofctl.cookies import NETWORK, cookie_for
from tests.system.scenario_bed import ScenarioBed, bed_fixtures, example, needs_bed

pytestmark = needs_bed


bed, fresh = bed_fixtures(Path("/tmp/np-scen2"), 27792, 27801, 27811)


def vxlan_orange() -> dict[str, Any]:
    """two_hosts_vxlan.json: orange = myContainer1 (host1) + myContainer2 (host2)."""
    return example("two_hosts_vxlan.json")


def tenant_one(*networks: dict[str, Any]) -> dict[str, Any]:
    """A file holding tenant-one (as in the example, same pools) with just ``networks``."""
    cfg = vxlan_orange()
    cfg["Tenants"][0]["Networks"] = list(networks)
    return cfg


def purple(*eps: tuple[str, str]) -> dict[str, Any]:
    return {"Name": "purple", "Endpoints": [{"Container": c, "Host": h} for c, h in eps]}


def test_desired_state_update_adds_container_to_second_network(bed: ScenarioBed) -> None:
    cfg = vxlan_orange()
    cfg["Tenants"][0]["Networks"].append(purple(("myContainer3", "host2")))
    bed.apply(cfg)
    for c, h in (("myContainer1", "host1"), ("myContainer2", "host2"), ("myContainer3", "host2")):
        bed.run(h, c)
    bed.assert_isolated("myContainer1", "myContainer3")
    changed = copy.deepcopy(cfg)
    changed["Tenants"][0]["Networks"][1]["Endpoints"].append(
        {"Container": "myContainer1", "Host": "host1"})
    bed.apply(changed)  # -cfg with the changed file
    ip3 = bed.ip("myContainer3")
    assert len(bed.addrs("myContainer1")) == 2, \
        f"myContainer1 did not get a purple interface: {bed.addrs('myContainer1')}"
    bed.assert_reach("myContainer1", "myContainer3", ip3)
    bed.assert_reach("myContainer1", "myContainer2")  # still in orange


def test_add_and_delete_endpoint_of_a_running_container(bed: ScenarioBed) -> None:
    bed.apply(vxlan_orange())
    bed.run("host1", "myContainer1")
    bed.run("host2", "myContainer2")
    bed.run("host2", "late", wait=0)  # running, but no endpoint yet: no address
    assert bed.addrs("late") == {}, "a container without an endpoint got an address"
    ep = tenant_one({"Name": "orange", "Endpoints": [{"Container": "late", "Host": "host2"}]})
    bed.apply(ep, "-add-cfg")
    ip = bed.endpoint("orange-late")["IpAddress"]
    bed.assert_reach("myContainer1", "late", ip)  # attached to the already running container
    bed.assert_reach("late", "myContainer1")
    bed.apply(ep, "-del-cfg")
    assert bed.endpoint("orange-late") is None, "endpoint orange-late still in etcd"
    bed.assert_unreachable("myContainer1", "late", ip)
    assert bed.addrs("late") == {}, f"late kept its interface: {bed.addrs('late')}"
    bed.assert_reach("myContainer1", "myContainer2")  # the rest is untouched
    bed.apply(ep, "-add-cfg")  # and back on again
    bed.assert_reach("myContainer1", "late", bed.endpoint("orange-late")["IpAddress"])


def test_add_and_delete_network(bed: ScenarioBed) -> None:
    bed.apply(vxlan_orange())
    bed.run("host1", "myContainer1")
    bed.run("host2", "myContainer2")
    net = tenant_one(purple(("p1", "host1"), ("p2", "host2")))
    bed.apply(net, "-add-cfg")
    bed.run("host1", "p1")
    bed.run("host2", "p2")
    ip2 = bed.ip("p2")
    bed.assert_reach("p1", "p2")
    cookie = cookie_for(NETWORK, "purple")
    assert all(cookie in bed.switch_cookies(h) for h in ("host1", "host2")), \
        "no flow of network purple on the switches while it exists"
    bed.apply(tenant_one({"Name": "purple"}), "-del-cfg")
    bed.assert_unreachable("p1", "p2", ip2)
    assert bed.addrs("p1") == bed.addrs("p2") == {}, "purple's interfaces survived its deletion"
    left = {k: v for k, v in bed.etcd_keys().items()
            if "purple" in k or ("purple" in v and "/runtime/" not in k)}
    assert left == {}, f"network purple left state in etcd: {sorted(left)}"
    for h in ("host1", "host2"):
        assert cookie not in bed.switch_cookies(h), f"{h} still has flows of network purple"
    bed.assert_reach("myContainer1", "myContainer2")  # orange untouched


@pytest.mark.parametrize("when", ["before", "after"])
def test_late_host_bindings(bed: ScenarioBed, when: str) -> None:
    bed.apply("late_host_bindings.json")
    assert bed.endpoint("orange-myContainer1")["Host"] in (None, ""), "bound before bindings"
    if when == "before":
        bed.apply("late_host_bindings.bindings.json", "-host-bindings-cfg")
    bed.run("host1", "myContainer1", wait=0 if when == "after" else 20)
    bed.run("host2", "myContainer2", wait=0 if when == "after" else 20)
    if when == "after":
        assert bed.addrs("myContainer1") == {}, "plugged before its host binding"
        bed.apply("late_host_bindings.bindings.json", "-host-bindings-cfg")
    bed.assert_reach("myContainer1", "myContainer2",
                     bed.endpoint("orange-myContainer2")["IpAddress"])
    bed.assert_reach("myContainer2", "myContainer1",
                     bed.endpoint("orange-myContainer1")["IpAddress"])
