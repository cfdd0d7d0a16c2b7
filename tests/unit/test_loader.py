"""The JSON loader and validation: every rule rejects the whole document with a precise message."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from intent.errors import ValidationError
from intent.loader import load_bindings, load_config, load_document
from tests.examples import is_bindings, is_partial

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

BASE = {
    "Hosts": [{"Name": "host1", "Intf": "eth2", "VtepIp": "192.168.2.10"}],
    "Tenants": [{
        "Name": "t1", "DefaultNetType": "vlan", "SubnetPool": "11.1.0.0/16",
        "AllocSubnetLen": 24, "Vlans": "11-28", "Vxlans": "10001-10100",
        "Networks": [{
            "Name": "orange", "SubnetCIDR": "10.1.1.0/24",
            "Endpoints": [{"Container": "c1", "Host": "host1"},
                          {"Container": "c2", "Host": "host1"}],
        }],
    }],
}


def doc(**changes) -> dict:
    """BASE with dotted-path edits, e.g. ``doc(**{"Tenants.0.Vlans": "900-500"})``."""
    d = copy.deepcopy(BASE)
    for path, value in changes.items():
        node = d
        parts = path.split(".")
        for p in parts[:-1]:
            node = node[int(p)] if p.isdigit() else node[p]
        node[parts[-1]] = value
    return d


def problems(d) -> list[str]:
    with pytest.raises(ValidationError) as info:
        load_config(d)
    return info.value.problems


def only_problem(d) -> str:
    found = problems(d)
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("path", sorted(EXAMPLES.glob("*.json")), ids=lambda p: p.name)
def test_every_example_loads(path: Path) -> None:
    if is_bindings(path):
        assert load_bindings(path)
    elif is_partial(path):
        assert load_document(path).endpoints()
    else:
        config = load_config(path)
        assert config.networks()


def test_keys_are_case_insensitive_and_single_ids_accepted() -> None:
    d = json.loads(json.dumps(BASE).replace('"Vlans"', '"VLANS"').replace('"Name"', '"name"'))
    d["Tenants"][0]["VLANS"] = "5"
    config = load_config(d)
    assert config.tenants[0].vlans == ((5, 5),)
    assert config.tenants[0].networks[0].name == "orange"


def test_defaults_come_from_the_tenant() -> None:
    config = load_config(BASE)
    net = config.networks()[0]
    assert net.pkt_tag_type == "vlan" and net.tenant == "t1"
    assert [e.id for e in net.endpoints] == ["orange-c1", "orange-c2"]


def test_reversed_range() -> None:
    assert only_problem(doc(**{"Tenants.0.Vlans": "900-500"})) == \
        'Tenants[0].Vlans "900-500": range start is above its end'


def test_vlan_out_of_range() -> None:
    assert "VLAN ids must be within 1-4094" in only_problem(doc(**{"Tenants.0.Vlans": "4000-4095"}))


def test_vni_out_of_range() -> None:
    msg = only_problem(doc(**{"Tenants.0.Vxlans": "1-16777216"}))
    assert msg.startswith('Tenants[0].Vxlans "1-16777216"') and "1-16777215" in msg


def test_unknown_net_type() -> None:
    assert only_problem(doc(**{"Tenants.0.DefaultNetType": "gre"})) == \
        'Tenants[0].DefaultNetType "gre": unknown network type (expected vlan or vxlan)'


def test_malformed_cidr_and_ip() -> None:
    found = problems(doc(**{"Tenants.0.SubnetPool": "11.1.0.0/33",
                            "Tenants.0.Networks.0.DefaultGw": "10.1.1.300",
                            "Hosts.0.VtepIp": "nope"}))
    assert 'Tenants[0].SubnetPool "11.1.0.0/33": not an IPv4 CIDR like "10.1.0.0/16"' in found
    assert 'Tenants[0].Networks[0].DefaultGw "10.1.1.300": not an IPv4 address' in found
    assert 'Hosts[0].VtepIp "nope": not an IPv4 address' in found


def test_alloc_subnet_len_bounds() -> None:
    assert only_problem(doc(**{"Tenants.0.AllocSubnetLen": 8})) == \
        "Tenants[0].AllocSubnetLen 8: shorter than the SubnetPool's /16"
    assert "longer than /30" in only_problem(doc(**{"Tenants.0.AllocSubnetLen": 31}))


def test_vlan_ranges_overlap_between_tenants() -> None:
    d = doc()
    d["Tenants"].append({"Name": "t2", "Vlans": "20-40", "SubnetPool": "12.0.0.0/16",
                         "AllocSubnetLen": 24})
    assert only_problem(d) == 'Tenants[1].Vlans "20-40": range 20-40 overlaps 11-28 of tenant "t1"'


def test_duplicate_network_names_are_global() -> None:
    d = doc()
    d["Tenants"].append({"Name": "t2", "Vlans": "100-110", "SubnetPool": "12.0.0.0/16",
                         "AllocSubnetLen": 24, "Networks": [{"Name": "orange"}]})
    assert only_problem(d).startswith('Tenants[1].Networks[0].Name "orange": duplicate network '
                                      "name (also Tenants[0].Networks[0]")


def test_duplicate_endpoint_id() -> None:
    d = doc()
    d["Tenants"][0]["Networks"][0]["Endpoints"].append({"Container": "c1", "Host": "host1"})
    assert only_problem(d) == ('Tenants[0].Networks[0].Endpoints[2]: duplicate endpoint '
                               '"orange-c1" (also Tenants[0].Networks[0].Endpoints[0])')


@pytest.mark.parametrize("ip,reason", [
    ("10.1.2.5", "outside the network's subnet 10.1.1.0/24"),
    ("10.1.1.0", "is the network address of 10.1.1.0/24"),
    ("10.1.1.255", "is the broadcast address of 10.1.1.0/24"),
    ("10.1.1.1", "is the network's gateway address"),
])
def test_bad_static_ip(ip: str, reason: str) -> None:
    assert only_problem(doc(**{"Tenants.0.Networks.0.Endpoints.0.IpAddress": ip})) == \
        f'Tenants[0].Networks[0].Endpoints[0].IpAddress "{ip}": {reason}'


def test_static_ip_used_twice() -> None:
    d = doc(**{"Tenants.0.Networks.0.Endpoints.0.IpAddress": "10.1.1.9",
               "Tenants.0.Networks.0.Endpoints.1.IpAddress": "10.1.1.9"})
    assert only_problem(d) == (
        'Tenants[0].Networks[0].Endpoints[1].IpAddress "10.1.1.9": used twice in network '
        '"orange" (also Tenants[0].Networks[0].Endpoints[0])')


def test_explicit_gateway_is_respected_for_static_ips() -> None:
    d = doc(**{"Tenants.0.Networks.0.DefaultGw": "10.1.1.254",
               "Tenants.0.Networks.0.Endpoints.0.IpAddress": "10.1.1.1"})
    assert load_config(d).networks()[0].endpoints[0].ip_address == "10.1.1.1"
    d = doc(**{"Tenants.0.Networks.0.DefaultGw": "10.1.1.254",
               "Tenants.0.Networks.0.Endpoints.0.IpAddress": "10.1.1.254"})
    assert "gateway address" in only_problem(d)


def test_pkt_tag_outside_range_and_twice() -> None:
    assert only_problem(doc(**{"Tenants.0.Networks.0.PktTag": 99})) == \
        "Tenants[0].Networks[0].PktTag 99: outside the tenant's Vlans range (11-28)"
    d = doc(**{"Tenants.0.Networks.0.PktTag": 12})
    d["Tenants"][0]["Networks"].append({"Name": "blue", "PktTag": 12})
    assert only_problem(d).startswith("Tenants[0].Networks[1].PktTag 12: vlan tag used twice")


def test_unknown_key_suggests_the_right_one() -> None:
    d = doc()
    d["Tenants"][0]["Networks"][0]["SubnetCDIR"] = d["Tenants"][0]["Networks"][0].pop("SubnetCIDR")
    msg = only_problem(d)
    assert msg.startswith("Tenants[0].Networks[0].SubnetCDIR: unknown key (did you mean "
                          "'SubnetCIDR'?)")


def test_every_problem_is_listed_at_once() -> None:
    found = problems(doc(**{"Tenants.0.Vlans": "900-500", "Tenants.0.DefaultNetType": "gre",
                            "Tenants.0.Networks.0.Endpoints.0.IpAddress": "10.9.9.9"}))
    assert len(found) >= 3


def test_network_without_subnet_source() -> None:
    d = doc()
    del d["Tenants"][0]["SubnetPool"]
    del d["Tenants"][0]["Networks"][0]["SubnetCIDR"]
    assert "has no SubnetCIDR and its tenant \"t1\" has no SubnetPool" in only_problem(d)


def test_invalid_json_and_missing_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Tenants": [}')
    assert "invalid JSON at line 1" in only_problem(bad)
    assert "cannot read" in only_problem(tmp_path / "missing.json")


def test_bindings_need_container_and_host() -> None:
    with pytest.raises(ValidationError) as info:
        load_bindings([{"Container": "c1"}, {"Host": "h", "Contianer": "x"}])
    msgs = info.value.problems
    assert "[0].Host: required" in msgs
    assert any(m.startswith("[1].Contianer: unknown key (did you mean 'Container'?)") for m in msgs)
