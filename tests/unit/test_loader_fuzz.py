"""Fuzzing the intent JSON (hypothesis): documents built from the loader's own schema
(``intent.reader.SCHEMA``: every key, in any case, with plausible, wrong and random values).

* the loader and validation raise nothing but ``ValidationError``;
* a write the write path refuses leaves the whole store unchanged (every key, value and
  revision), and a write it accepts leaves a consistent store (``netdcli -audit``'s checks).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from allocator.write import apply_config
from intent import keys
from intent.errors import IntentError, ValidationError
from intent.loader import load_bindings, load_config, load_document
from intent.reader import SCHEMA
from intent.store_memory import MemoryStore
from netdcli.audit import audit_store

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two_tenants_overlapping_subnets.json"
SCALE = int(os.environ.get("NETPLUGIN_FUZZ_SCALE", "1"))  # more examples for a deeper search
LOADER_EXAMPLES = 400 * SCALE
WRITE_EXAMPLES = 300 * SCALE
AIMED_EXAMPLES = 200 * SCALE

# which schema kind the items of a list-valued key have
CHILDREN = {("top", "Hosts"): "host", ("top", "Tenants"): "tenant",
            ("tenant", "Networks"): "network", ("network", "Endpoints"): "endpoint",
            ("tenant", "EndpointGroups"): "group", ("tenant", "Policies"): "policy",
            ("policy", "Rules"): "rule"}

NAMES = st.sampled_from(["t1", "t2", "tenant-one", "orange", "purple", "n1", "n2", "c1", "c2",
                         "myContainer1", "host1", "host2", "web", "app", "a-b", "a", "b-c"])
BAD_NAMES = st.sampled_from(["", " ", "a/b", "..", "../x", "-x", "é", "a" * 70, "x y", "\x00",
                             "\ud800", "a\nb", "tenant-one/.."])
CIDRS = st.sampled_from(["10.1.0.0/16", "10.1.1.0/24", "10.1.2.0/24", "11.1.0.0/16",
                         "10.1.1.5/24", "10.1.0.0/33", "300.1.1.1/8", "fe80::/64", "10.1.1.0",
                         "0.0.0.0/0", "10.1.1.0/30", "10.1.1.0/31"])
IPS = st.sampled_from(["10.1.1.5", "10.1.1.0", "10.1.1.1", "10.1.1.255", "10.1.2.7", "1.2.3",
                       "::1", "11.1.0.9", "10.1.1.05", " 10.1.1.6 "])
INTS = st.one_of(st.integers(-3, 5000), st.integers(), st.sampled_from(["5", "12", "٣", "²",
                                                                          "1e3", " 7 ", "-1"]))
RANGES = st.one_of(st.sampled_from(["1-100", "5", "100-1", "a-b", "1-4095", "1-4094",
                                    "100-200,150-300", "10001-14000", "1-16777216", ",", "-",
                                    "1-100,200-300", "0-5"]),
                   st.integers(-2, 20000000))
NET_TYPES = st.sampled_from(["vlan", "vxlan", "VXLAN", "VLan", "foo", "", " vlan "])
JUNK = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) |
                    st.text(max_size=12),
                    lambda inner: st.lists(inner, max_size=3) |
                    st.dictionaries(st.text(max_size=6), inner, max_size=3), max_leaves=8)

PLAUSIBLE: dict[str, st.SearchStrategy] = {
    "Name": NAMES, "Container": NAMES, "Host": NAMES, "AttachUUID": NAMES,
    "EndpointGroup": NAMES, "FromEndpointGroup": NAMES, "ToEndpointGroup": NAMES,
    "FromNetwork": NAMES, "ToNetwork": NAMES, "Intf": st.sampled_from(["eth2", "eth3", ""]),
    "VtepIp": IPS, "NetId": NAMES, "SubnetPool": CIDRS, "SubnetCIDR": CIDRS,
    "FromIpAddress": CIDRS, "ToIpAddress": CIDRS, "DefaultGw": IPS, "IpAddress": IPS,
    "AllocSubnetLen": INTS, "PktTag": INTS, "Id": INTS, "Priority": INTS, "Port": RANGES,
    "Vlans": RANGES, "Vxlans": RANGES, "DefaultNetType": NET_TYPES, "PktTagType": NET_TYPES,
    "Direction": st.sampled_from(["in", "out", "both", "IN"]),
    "Action": st.sampled_from(["allow", "deny", "drop"]),
    "Protocol": st.sampled_from(["tcp", "udp", "icmp", "6", 17, "gre"]),
}


def _case(key: str) -> st.SearchStrategy[str]:
    return st.sampled_from([key, key.lower(), key.upper(), key.swapcase()])


@st.composite
def obj(draw, kind: str, depth: int = 0) -> Any:
    """A JSON object of schema ``kind``: some of its keys (any case), plausible or bad values,
    now and then an unknown key, or something that is not an object at all."""
    if depth and draw(st.integers(0, 30)) == 0:
        return draw(JUNK)
    out: dict[str, Any] = {}
    for key in draw(st.lists(st.sampled_from(SCHEMA[kind]), unique=True, max_size=len(
            SCHEMA[kind]))):
        child = CHILDREN.get((kind, key))
        if child is not None and depth < 3:
            value: Any = draw(st.lists(obj(child, depth + 1), max_size=3) |
                              st.just(None) | JUNK)
        elif key == "Policies":  # a group's policies: names
            value = draw(st.lists(NAMES, max_size=2) | JUNK)
        else:
            value = draw(PLAUSIBLE.get(key, JUNK) | BAD_NAMES | JUNK
                         if draw(st.integers(0, 12)) == 0 else PLAUSIBLE.get(key, JUNK))
        out[draw(_case(key))] = value
    if draw(st.integers(0, 15)) == 0:
        out[draw(st.sampled_from(["Nmae", "Tenant", "extra", "Networkz", ""]))] = draw(JUNK)
    return out


@st.composite
def aimed(draw) -> dict:
    """A well-formed document about the baseline's own objects (tenants tenant-one/-two,
    networks orange/blue, containers c1..c4): mostly legal, often in conflict with what is
    stored (address taken, tag owned by another network, overlapping subnet, range too small,
    unknown network or host), so that the write path, not the loader, decides."""
    nets = []
    for _ in range(draw(st.integers(0, 2))):
        eps = [{k: v for k, v in {
            "Container": draw(st.sampled_from(["c1", "c2", "c3", "c5", "c6"])),
            "Host": draw(st.sampled_from([None, "host1", "host2", "host9"])),
            "IpAddress": draw(st.sampled_from([None, "10.1.1.10", "10.1.1.11", "10.1.1.12",
                                               "10.1.2.5", "10.1.1.255"])),
        }.items() if v is not None} for _ in range(draw(st.integers(0, 3)))]
        net = {"Name": draw(st.sampled_from(["orange", "blue", "green"])), "Endpoints": eps}
        for key, values in (("SubnetCIDR", ["10.1.1.0/24", "10.1.2.0/24", "10.1.1.0/30"]),
                            ("PktTag", [10001, 10002, 10101, 10150, 20000]),
                            ("PktTagType", ["vxlan", "vlan"])):
            if draw(st.booleans()):
                net[key] = draw(st.sampled_from(values))
        nets.append(net)
    tenant: dict[str, Any] = {"Name": draw(st.sampled_from(["tenant-one", "tenant-two", "t3"])),
                              "Networks": nets}
    if draw(st.booleans()):
        tenant["Vxlans"] = draw(st.sampled_from(["10001-10100", "10050-10150", "20000-20001",
                                                 "10001-10001"]))
    if draw(st.booleans()):
        tenant["DefaultNetType"] = draw(st.sampled_from(["vxlan", "vlan"]))
    doc: dict[str, Any] = {"Tenants": [tenant]}
    if draw(st.booleans()):
        doc["Hosts"] = [{"Name": draw(st.sampled_from(["host1", "host2", "host3"])),
                         "VtepIp": draw(st.sampled_from(["192.168.2.10", "192.168.2.12"]))}]
    return doc


DOCUMENTS = obj("top")


@settings(max_examples=LOADER_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=DOCUMENTS | JUNK)
def test_loader_raises_only_validation_errors(doc: Any) -> None:
    for load in (load_config, load_document):
        try:
            load(doc if isinstance(doc, (dict, list)) else {"Tenants": doc})
        except ValidationError as exc:
            assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
    text = json.dumps(doc)
    try:
        load_document(text if text.lstrip().startswith(("{", "[")) else "{" + text)
    except ValidationError:
        pass
    try:
        load_bindings(doc if isinstance(doc, list) else [doc])
    except ValidationError:
        pass


def _baseline() -> MemoryStore:
    store = MemoryStore()
    apply_config(store, load_config(EXAMPLE))
    return store


def _dump(store: MemoryStore) -> tuple[int, list[tuple]]:
    return store.revision(), [(kv.key, kv.value, kv.create_revision, kv.mod_revision,
                               kv.version) for kv in store.list("/")]


@settings(max_examples=WRITE_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=DOCUMENTS, mode=st.sampled_from(["add", "delete", "desired"]))
def test_refused_write_changes_nothing_and_accepted_write_stays_consistent(
        doc: dict, mode: str) -> None:
    _write(doc, mode)


@settings(max_examples=AIMED_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(doc=aimed(), mode=st.sampled_from(["add", "delete", "desired"]))
def test_conflicting_writes_change_nothing(doc: dict, mode: str) -> None:
    _write(doc, mode)


def _write(doc: dict, mode: str) -> None:
    store = _baseline()
    before = _dump(store)
    try:
        config = load_config(doc) if mode == "desired" else load_document(doc)
    except ValidationError:
        event(f"{mode}: refused by the loader")
        return
    try:
        result = apply_config(store, config, mode)
    except IntentError as exc:
        event(f"{mode}: refused by the write path ({type(exc).__name__})")
        assert _dump(store) == before, "a refused write changed the store"
        return
    event(f"{mode}: {'written' if result.changed else 'no change'}")
    snap = store.read(prefixes=[keys.ROOT])
    assert audit_store(snap) == [], "an accepted write left the store inconsistent"


def test_a_subnet_another_network_of_the_tenant_has_is_refused() -> None:
    """Found by the fuzzing above: the write took the subnet's allocation key from
    ``orange`` (the key names one owner)."""
    store = _baseline()
    before = _dump(store)
    doc = {"Tenants": [{"Name": "tenant-one", "Networks": [
        {"Name": "green", "SubnetCIDR": "10.1.1.0/24"}]}]}
    try:
        apply_config(store, load_document(doc), "add")
    except ValidationError as exc:
        assert exc.problems == ['Tenants[0].Networks[0].SubnetCIDR 10.1.1.0/24: network '
                                '"orange" of tenant "tenant-one" has this subnet already']
    else:
        raise AssertionError("accepted a subnet that network orange has")
    assert _dump(store) == before
    doc["Tenants"][0]["Networks"][0]["SubnetCIDR"] = "10.1.0.0/16"  # overlapping is allowed
    assert apply_config(store, load_document(doc), "add").changed
    twins = {"Tenants": [{"Name": "tenant-two", "Networks": [
        {"Name": "n1", "SubnetCIDR": "10.9.0.0/24"}, {"Name": "n2", "SubnetCIDR": "10.9.0.0/24"}]}]}
    before = _dump(store)
    try:
        apply_config(store, load_document(twins), "add")
    except ValidationError as exc:
        assert "another network of this write" in exc.problems[0]
    else:
        raise AssertionError("accepted two networks with one subnet")
    assert _dump(store) == before
