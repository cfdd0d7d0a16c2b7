"""The agent's planning: desired plugs from intent + runtime registry, and actions vs OVS."""

from __future__ import annotations

import io
import json

import pytest

from agent import cni
from agent import plan as P
from intent.model import EndpointSpec, NetworkSpec

H = "h1"
NETS = {"blue": NetworkSpec("blue", "t", "vxlan", 100, "10.1.0.0/24", "10.1.0.1"),
        "red": NetworkSpec("red", "t", "vlan", 10, "10.2.0.0/16", None)}


def ep(eid, net="blue", container="c1", host=H, ip="10.1.0.2", attach=None):
    return EndpointSpec(eid, net, container, host, ip, "02:00:00:00:00:02", attach)


def rt(name, netns=None, cid="id1"):
    return P.RuntimeEntry(name, netns or f"/run/netns/{name}", cid)


def want_of(eps, runtime, exists=lambda p: True):
    return P.desired_set(H, {e.id: e for e in eps}, NETS, {r.container: r for r in runtime},
                         exists)


def actual_for(w: P.Desired, **kw) -> P.Actual:
    base = dict(port_name=w.port_name, endpoint_id=w.endpoint_id, sig=w.sig, ofport=5,
                ip=w.ip, netns=w.netns, container=w.owner, container_id=w.container_id)
    base.update(kw)
    return P.Actual(**base)


def test_desired_needs_host_and_running_owner():
    eps = [ep("blue-c1"), ep("blue-c2", container="c2"), ep("blue-c3", container="c3", host="h2"),
           ep("blue-c4", container="c4", host=None)]
    want, problems = want_of(eps, [rt("c1"), rt("c3"), rt("c4")])
    assert set(want) == {"blue-c1"} and not problems


def test_attach_uuid_uses_the_other_containers_netns():
    want, _ = want_of([ep("blue-app", container="app", attach="pause")], [rt("pause")])
    w = want["blue-app"]
    assert (w.owner, w.netns, w.container) == ("pause", "/run/netns/pause", "app")


CID_A = "3f4c2b1a9e8d" + "7" * 52  # 64 hex digits, as Docker and podman make them
CID_B = "3f4c2b1a9e8d" + "0" * 52  # same 12-digit short id as A


def test_attach_uuid_may_be_the_infra_containers_full_or_short_id():
    runtime = [rt("pod-infra", cid=CID_A), rt("other", cid="9" * 64)]
    for ref in (CID_A, CID_A[:12], CID_A[:20]):
        want, problems = want_of([ep("blue-app", container="app", attach=ref)], runtime)
        w = want["blue-app"]
        assert not problems and (w.owner, w.netns, w.container_id) == (
            "pod-infra", "/run/netns/pod-infra", CID_A), ref


def test_id_prefix_needs_12_hex_digits_and_never_matches_a_name():
    runtime = [rt("pod-infra", cid=CID_A), rt("myContainer10", cid="myContainer10")]
    assert want_of([ep("blue-app", container="app", attach=CID_A[:11])], runtime)[0] == {}
    # the test bed's ids may be names: "myContainer1" is no prefix of "myContainer10"
    assert want_of([ep("blue-myContainer1", container="myContainer1")], runtime)[0] == {}


def test_full_id_wins_over_a_name_then_name_over_prefix():
    runtime = [rt("abcdef0123456789", cid=CID_B), rt("x", cid="abcdef0123456789")]
    want, _ = want_of([ep("blue-a", container="a", attach="abcdef0123456789")], runtime)
    assert want["blue-a"].owner == "x"
    runtime = [rt(CID_A[:12], cid="1" * 64), rt("pod-infra", cid=CID_A)]
    want, _ = want_of([ep("blue-a", container="a", attach=CID_A[:12])], runtime)
    assert want["blue-a"].owner == CID_A[:12]


def test_ambiguous_id_prefix_is_a_problem_naming_the_candidates_and_holds_the_port():
    one, _ = want_of([ep("blue-app", container="app", attach=CID_A[:12])], [rt("a", cid=CID_A)])
    plugged = actual_for(one["blue-app"])
    want, problems = want_of([ep("blue-app", container="app", attach=CID_A[:12])],
                             [rt("a", cid=CID_A), rt("b", cid=CID_B)])
    assert want == {} and len(problems) == 1
    p = problems[0]
    assert (p.endpoint_id, p.containers, p.hold) == ("blue-app", ("a", "b"), True)
    assert "ambiguous" in p.message and CID_A in p.message and CID_B in p.message
    assert "blue-app" in p.message
    oper = {"blue-app": P.oper_value(H, one["blue-app"], 5)}
    # the port plugged before the second container came is neither unplugged nor re-plugged
    assert P.plan(H, want, [plugged], oper, hold=frozenset({"blue-app"})) == []
    assert P.plan(H, want, [plugged], oper) != []  # without the hold it would go


def test_refers_to_matches_cni_names_and_ids():
    assert P.refers_to("web", "web", CID_A)
    assert P.refers_to(CID_A, "web", CID_A) and P.refers_to(CID_A[:12], "web", CID_A)
    assert not P.refers_to(CID_A[:11], "web", CID_A)
    assert not P.refers_to(CID_B[:13], "web", CID_A)
    assert not P.refers_to("", "web", "")


def test_vanished_netns_is_not_desired():
    want, _ = want_of([ep("blue-c1")], [rt("c1")], exists=lambda p: False)
    assert want == {}


def test_mtu_prefix_gateway_from_network():
    want, _ = want_of([ep("blue-c1"), ep("red-c1", net="red", ip="10.2.0.9")], [rt("c1")])
    assert (want["blue-c1"].mtu, want["blue-c1"].prefixlen, want["blue-c1"].gateway) == \
        (1450, 24, "10.1.0.1")
    assert (want["red-c1"].mtu, want["red-c1"].prefixlen, want["red-c1"].gateway) == \
        (1500, 16, None)


def test_unresolved_network_is_a_problem_naming_the_endpoint():
    want, problems = want_of([ep("green-c1", net="green")], [rt("c1")])
    assert want == {} and "green-c1" in problems[0].message


def test_port_name_fits_ifnamsiz_and_is_stable():
    name = P.port_name("a-very-long-network-name-and-container")
    assert len(name) <= 15 and P.PORT_RE.match(name)
    assert name == P.port_name("a-very-long-network-name-and-container")


def test_plan_plugs_new_and_writes_nothing_else():
    want, _ = want_of([ep("blue-c1")], [rt("c1")])
    assert P.plan(H, want, [], {}) == [P.Plug(want["blue-c1"])]


def test_plan_is_idempotent_when_plugged_and_reported():
    want, _ = want_of([ep("blue-c1")], [rt("c1")])
    w = want["blue-c1"]
    oper = {"blue-c1": P.oper_value(H, w, 5)}
    assert P.plan(H, want, [actual_for(w)], oper) == []


def test_plan_rewrites_missing_oper_key_of_a_finished_plug():
    """Crash after the OVS port was added, before the oper key was written."""
    want, _ = want_of([ep("blue-c1")], [rt("c1")])
    w = want["blue-c1"]
    assert P.plan(H, want, [actual_for(w)], {}) == [
        P.WriteOper("blue-c1", P.oper_value(H, w, 5))]


def test_plan_unplugs_removed_intent_and_stale_oper():
    want, _ = want_of([ep("blue-c1")], [rt("c1")])
    w = want["blue-c1"]
    acts = P.plan(H, {}, [actual_for(w)], {"blue-c1": {}, "blue-gone": {}})
    assert acts == [P.Unplug(w.port_name, "blue-c1", "not desired on this host"),
                    P.DeleteOper("blue-c1"), P.DeleteOper("blue-gone")]


def test_plan_replugs_when_container_restarted_with_new_netns():
    old, _ = want_of([ep("blue-c1")], [rt("c1", cid="old")])
    new, _ = want_of([ep("blue-c1")], [rt("c1", netns="/run/netns/c1-new", cid="new")])
    acts = P.plan(H, new, [actual_for(old["blue-c1"])], {})
    assert [type(a) for a in acts] == [P.Unplug, P.Plug]
    assert acts[1].want.netns == "/run/netns/c1-new"


def test_plan_replugs_broken_and_removes_extra_ports_and_leftover_veths():
    want, _ = want_of([ep("blue-c1")], [rt("c1")])
    w = want["blue-c1"]
    dup = actual_for(w, port_name="np000000000000", sig="x")
    acts = P.plan(H, want, [actual_for(w, healthy=False), dup], {},
                  frozenset({"np111111111111", "eth0", w.port_name}))
    assert P.Unplug(w.port_name, "blue-c1", "port broken") in acts
    assert P.Unplug("np000000000000", "blue-c1", "plug changed") in acts
    assert P.DeleteLink("np111111111111") in acts
    assert P.Plug(w) in acts and not any(isinstance(a, P.DeleteLink) and a.name == "eth0"
                                         for a in acts)


def test_plan_refuses_an_ip_held_by_another_port_on_the_host():
    want, _ = want_of([ep("blue-c1"), ep("blue-c2", container="c2")], [rt("c1"), rt("c2")])
    acts = P.plan(H, want, [actual_for(want["blue-c1"])], {})
    problems = [a for a in acts if isinstance(a, P.Problem)]
    assert len(problems) == 1 and "10.1.0.2" in problems[0].message
    assert "blue-c1" in problems[0].message and problems[0].endpoint_id == "blue-c2"


def test_sig_changes_with_every_plumbed_value():
    want, _ = want_of([ep("blue-c1")], [rt("c1")])
    w = want["blue-c1"]
    changed = {P.Desired(**{**w.__dict__, f: v}).sig for f, v in
               [("ip", "10.1.0.3"), ("mac", "02:00:00:00:00:03"), ("mtu", 1500),
                ("gateway", None), ("netns", "/x"), ("container_id", "z")]}
    assert w.sig not in changed and len(changed) == 6


# ---------------------------------------------------------------- CNI pure parts

def run_cni(env, conf) -> tuple[int, dict]:
    out = io.StringIO()
    code = cni.run(env, io.StringIO(json.dumps(conf) if isinstance(conf, dict) else conf), out)
    return code, json.loads(out.getvalue()) if out.getvalue() else {}


CONF = {"cniVersion": "1.0.0", "name": "np", "type": "netplugin-cni", "etcd": "memory://",
        "host": H}


def test_cni_version():
    code, out = run_cni({"CNI_COMMAND": "VERSION"}, "")
    assert code == 0 and "1.0.0" in out["supportedVersions"]


def test_cni_args_and_container_candidates():
    env = {"CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=web;IP=1.2.3.4",
           "CNI_CONTAINERID": "0123456789abcdef"}
    assert cni.parse_cni_args(env["CNI_ARGS"])["K8S_POD_NAME"] == "web"
    assert cni.candidates(CONF, env) == ["web", "0123456789abcdef", "0123456789ab"]
    assert cni.candidates({**CONF, "args": {"container": "fixed"}},
                          {"CNI_CONTAINERID": "abc"}) == ["fixed", "abc"]


def test_cni_errors_are_spec_json():
    assert run_cni({"CNI_COMMAND": "ADD"}, "{not json")[1]["code"] == cni.DECODE_FAILURE
    code, out = run_cni({"CNI_COMMAND": "ADD"}, {**CONF, "cniVersion": "9.9.9"})
    assert (code, out["code"]) == (1, cni.INCOMPATIBLE_VERSION)
    code, out = run_cni({"CNI_COMMAND": "ADD"}, {k: v for k, v in CONF.items() if k != "host"})
    assert out["code"] == cni.INVALID_CONFIG and "host" in out["msg"]
    code, out = run_cni({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x"}, CONF)
    assert out["code"] == cni.INVALID_ENV and "CNI_NETNS" in out["msg"]
    code, out = run_cni({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "x", "CNI_IFNAME": "eth0",
                         "CNI_NETNS": "/run/netns/does-not-exist-npa"}, CONF)
    assert out["code"] == cni.UNKNOWN_CONTAINER and "/run/netns/does-not-exist-npa" in out["msg"]
    assert out["cniVersion"] == "1.0.0"


def test_cni_add_unknown_container_names_it(tmp_path):
    netns = tmp_path / "ns"
    netns.touch()
    code, out = run_cni({"CNI_COMMAND": "ADD", "CNI_CONTAINERID": "deadbeef", "CNI_IFNAME": "eth0",
                         "CNI_NETNS": str(netns), "CNI_ARGS": "K8S_POD_NAME=ghost"}, CONF)
    assert (code, out["code"]) == (1, cni.NO_ENDPOINT) and "ghost" in out["msg"]


def test_cni_owner_of_an_endpoint_attached_by_container_id():
    from intent import codec, keys
    from intent.store_memory import MemoryStore

    store = MemoryStore()
    spec = EndpointSpec("blue-app", "blue", "app", H, "10.1.0.2", "02:00:00:00:00:02",
                        CID_A[:12])
    store.put(keys.state_endpoint(spec.id), codec.dumps(spec))
    env = {"CNI_CONTAINERID": CID_A, "CNI_ARGS": "IgnoreUnknown=1;K8S_POD_NAME=pod-infra"}
    assert cni._owner(store, CONF, env) == "pod-infra"
    with pytest.raises(cni.CniError, match="no endpoint"):
        cni._owner(store, CONF, {**env, "CNI_CONTAINERID": "9" * 64})
