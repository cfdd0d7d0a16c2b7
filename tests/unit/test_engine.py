"""The incremental engine against the full recompute (the oracle), after every event."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from allocator.pools import mac_for
from intent.model import (
    EndpointGroupSpec,
    EndpointSpec,
    HostSpec,
    McastGroupConfig,
    Membership,
    MulticastConfig,
    NetworkSpec,
    PolicyConfig,
    QosProfileConfig,
    ResolvedIntent,
    RouterSpec,
    RuleConfig,
)
from ofctl.compute import compute_host
from ofctl.engine import Engine, EntryDelta, HostTable
from ofctl.model import SwitchState
from ofctl.topology import HostPorts

HOSTS = ["h0", "h1", "h2"]
NETS = {"vx1": ("vxlan", 5001, "10.1.0.0/24"), "vx2": ("vxlan", 5002, "10.1.0.0/24"),
        "vl1": ("vlan", 11, "10.2.0.0/24")}
CONTAINERS = ["a", "b", "c", "d"]
ADDRESSES = ["239.1.1.1", "239.2.2.2", "239.3.3.3"]


class Model:
    """The engine's inputs kept plainly, to build what the oracle takes."""

    def __init__(self) -> None:
        self.groups: dict[str, EndpointGroupSpec] = {}
        self.policies: dict[str, PolicyConfig] = {}
        self.networks: dict[str, NetworkSpec] = {}
        self.endpoints: dict[str, EndpointSpec] = {}
        self.hosts: dict[str, HostSpec] = {}
        self.ports: dict[str, tuple[int | None, int | None]] = {}
        self.plugged: dict[str, dict[str, int]] = {h: {} for h in HOSTS}
        self.qos: dict[str, QosProfileConfig] = {}
        self.learned: set[Membership] = set()
        self.routers: dict[str, RouterSpec] = {}
        self.gateway_macs: dict[tuple[str, str], str] = {}

    def intent(self) -> ResolvedIntent:
        return ResolvedIntent(networks=tuple(self.networks.values()),
                              endpoints=tuple(self.endpoints.values()),
                              hosts=tuple(self.hosts.values()),
                              groups=tuple(self.groups.values()),
                              policies=tuple(self.policies.values()),
                              routers=tuple(self.routers.values()),
                              qos_profiles=tuple(self.qos.values()),
                              learned=tuple(sorted(self.learned)))

    def host_ports(self, h: str) -> HostPorts:
        vx, up = self.ports.get(h, (None, None))
        return HostPorts(h, tuple(sorted(self.plugged[h].items())), vx, up)


def network(name: str, tag_shift: int = 0) -> NetworkSpec:
    kind, tag, subnet = NETS[name]
    return NetworkSpec(name, "t", kind, tag + tag_shift, subnet, subnet.replace("0/24", "1"),
                       zone=tag % 100 + 1)


RULES = [RuleConfig(1, 1, "in", "deny"),
         RuleConfig(2, 10, "in", "allow", "group", "g2", "tcp", 80, 80),
         RuleConfig(3, 5, "out", "deny", "network", "vx2", "udp", 5000, 5010),
         RuleConfig(4, 5, "out", "allow", "ip", "10.1.0.0/28", "icmp"),
         RuleConfig(5, 10, "in", "allow", "group", "g2", "tcp", 80, 80)]  # same entries as 2


def endpoint(net: str, c: str, host: str | None, variant: int) -> EndpointSpec:
    """Addresses unique per container (as the allocator makes them); ``variant`` renumbers."""
    last = 2 + CONTAINERS.index(c) + 10 * variant
    ip = NETS[net][2].replace("0/24", str(last))
    return EndpointSpec(f"{net}-{c}", net, c, host, ip, mac_for(ip))


events = st.one_of(
    st.tuples(st.just("group"), st.sampled_from(["g1", "g2"]), st.sampled_from([None, 1, 2]),
              st.sampled_from([(), ("p1",), ("p1", "p2")])),
    st.tuples(st.just("policy"), st.sampled_from(["p1", "p2"]),
              st.sets(st.sampled_from(range(len(RULES))))),
    st.tuples(st.just("member"), st.sampled_from(sorted(NETS)), st.sampled_from(CONTAINERS),
              st.sampled_from([None, "g1", "g2"])),
    st.tuples(st.just("net"), st.sampled_from(sorted(NETS)), st.sampled_from([0, 7, None])),
    st.tuples(st.just("ep"), st.sampled_from(sorted(NETS)), st.sampled_from(CONTAINERS),
              st.sampled_from(HOSTS + [None, "gone"]), st.integers(0, 2)),
    st.tuples(st.just("plug"), st.sampled_from(HOSTS), st.sampled_from(sorted(NETS)),
              st.sampled_from(CONTAINERS), st.sampled_from([None, 3, 4, 9])),
    st.tuples(st.just("host"), st.sampled_from(HOSTS),
              st.sampled_from([None, "192.168.0.1", "192.168.0.2"])),
    st.tuples(st.just("ports"), st.sampled_from(HOSTS), st.sampled_from([None, 100, 101]),
              st.sampled_from([None, 200])),
    # QoS and multicast (issue 13)
    st.tuples(st.just("qosprof"), st.sampled_from(["gold", "bronze"]),
              st.sampled_from([None, (10000, None, 46), (20000, 500, 46), (None, None, 10),
                               (5000, None, None)])),
    st.tuples(st.just("refqos"), st.sampled_from(["net", "group", "ep"]),
              st.sampled_from(sorted(NETS) + ["g1", "g2"]), st.sampled_from(CONTAINERS),
              st.sampled_from([None, "gold", "bronze"])),
    st.tuples(st.just("mcast"), st.sampled_from(sorted(NETS)), st.booleans(),
              st.dictionaries(st.sampled_from(ADDRESSES),
                              st.frozensets(st.sampled_from(CONTAINERS)), max_size=2)),
    st.tuples(st.just("learn"), st.sampled_from(sorted(NETS)), st.sampled_from(ADDRESSES),
              st.sampled_from(CONTAINERS), st.booleans()),
    # which router (0: none) each network of sorted(NETS) is on; r1 external via vl1 or not
    st.tuples(st.just("routers"), st.tuples(*[st.sampled_from([0, 1, 2]) for _ in NETS]),
              st.booleans(), st.sampled_from(HOSTS)),
    st.tuples(st.just("gwmac"), st.sampled_from([None, "52:54:00:00:00:01",
                                                 "52:54:00:00:00:02"])),
)


def apply(engine: Engine, model: Model, ev: tuple) -> None:
    kind = ev[0]
    if kind == "group":
        _, name, gid, pols = ev
        spec = None if gid is None else EndpointGroupSpec("t", name, gid, pols)
        model.groups.pop(name, None) if spec is None else model.groups.__setitem__(name, spec)
        engine.set_group("t", name, spec)
    elif kind == "policy":
        _, name, which = ev
        spec = PolicyConfig(name, "t", tuple(RULES[i] for i in sorted(which))) if which \
            else None
        model.policies.pop(name, None) if spec is None else model.policies.__setitem__(name,
                                                                                         spec)
        engine.set_policy("t", name, spec)
    elif kind == "member":
        _, net, c, group = ev
        eid = f"{net}-{c}"
        if eid in model.endpoints:
            spec = replace(model.endpoints[eid], group=group)
            model.endpoints[eid] = spec
            engine.set_endpoint(eid, spec)
    elif kind == "net":
        _, name, shift = ev
        spec = None if shift is None else network(name, shift)
        old = model.networks.get(name)
        if spec is not None and old is not None:
            spec = replace(spec, qos_profile=old.qos_profile, multicast=old.multicast)
        model.networks.pop(name, None) if spec is None else model.networks.__setitem__(name,
                                                                                         spec)
        engine.set_network(name, spec)
    elif kind == "ep":
        _, net, c, host, ip = ev
        eid = f"{net}-{c}"
        spec = None if host == "gone" else endpoint(net, c, host, ip)
        model.endpoints.pop(eid, None) if spec is None else model.endpoints.__setitem__(eid,
                                                                                          spec)
        engine.set_endpoint(eid, spec)
    elif kind == "plug":
        _, host, net, c, port = ev
        eid = f"{net}-{c}"
        if port is None:
            model.plugged[host].pop(eid, None)
        else:
            model.plugged[host][eid] = port
        engine.set_port(host, eid, port)
    elif kind == "host":
        _, name, vtep = ev
        spec = HostSpec(name, vtep_ip=vtep) if vtep else None
        model.hosts.pop(name, None) if spec is None else model.hosts.__setitem__(name, spec)
        engine.set_host(name, spec)
    elif kind == "routers":
        _, on, external, gw_host = ev
        for r in ("r1", "r2"):
            engine.set_router("t", r, None)
        model.routers.clear()
        for i, r in ((1, "r1"), (2, "r2")):
            nets = tuple(n for n, k in zip(sorted(NETS), on, strict=True) if k == i)
            ext = (("vl1", "10.2.0.100", gw_host) if i == 1 and external and "vl1" not in nets
                   else (None, None, None))
            if nets or ext[0]:
                model.routers[r] = RouterSpec("t", r, i, nets, *ext)
                engine.set_router("t", r, model.routers[r])
    elif kind == "gwmac":
        mac = ev[1]
        model.gateway_macs.pop(("t", "r1"), None) if mac is None else \
            model.gateway_macs.__setitem__(("t", "r1"), mac)
        engine.set_gateway_mac("t", "r1", mac)
    elif kind == "ports":
        _, name, vx, up = ev
        model.ports[name] = (vx, up)
        engine.set_host_ports(name, vx, up)
    else:
        apply_feature(engine, model, ev)


def apply_feature(engine: Engine, model: Model, ev: tuple) -> None:
    """QoS and multicast events."""
    kind = ev[0]
    if kind == "qosprof":
        _, name, values = ev
        spec = None if values is None else QosProfileConfig(name, "t", *values)
        model.qos.pop(name, None) if spec is None else model.qos.__setitem__(name, spec)
        engine.set_qos_profile("t", name, spec)
    elif kind == "refqos":
        _, level, name, c, profile = ev
        if level == "net" and name in model.networks:
            spec = replace(model.networks[name], qos_profile=profile)
            model.networks[name] = spec
            engine.set_network(name, spec)
        elif level == "group" and name in model.groups:
            spec = replace(model.groups[name], qos_profile=profile)
            model.groups[name] = spec
            engine.set_group("t", name, spec)
        elif level == "ep" and f"{name}-{c}" in model.endpoints:
            spec = replace(model.endpoints[f"{name}-{c}"], qos_profile=profile)
            model.endpoints[spec.id] = spec
            engine.set_endpoint(spec.id, spec)
    elif kind == "mcast":
        _, name, snoop, groups = ev
        if name in model.networks:
            mc = MulticastConfig(snoop, tuple(McastGroupConfig(a, tuple(sorted(r)))
                                              for a, r in sorted(groups.items())))
            spec = replace(model.networks[name], multicast=mc)
            model.networks[name] = spec
            engine.set_network(name, spec)
    else:
        _, net, address, c, joined = ev
        m = Membership(net, address, f"{net}-{c}")
        (model.learned.add if joined else model.learned.discard)(m)
        engine.set_learned(net, address, m.endpoint, joined)


def replay(installed: dict, delta: EntryDelta) -> None:
    for part, table in ((delta.flows, "flows"), (delta.groups, "groups"),
                        (delta.meters, "meters")):
        for k, (_before, after) in part.items():
            if after is None:
                installed[table].pop(k, None)
            else:
                installed[table][k] = after


def as_state(installed: dict) -> SwitchState:
    return SwitchState(frozenset(installed["flows"].values()),
                       frozenset(installed["groups"].values()),
                       frozenset(installed["meters"].values()))


@settings(max_examples=200, deadline=None)
@given(st.lists(events, min_size=1, max_size=40), st.sampled_from(HOSTS), st.booleans())
def test_incremental_tables_equal_a_full_recompute_after_every_event(evs, watched,
                                                                      routed) -> None:
    """Random adds, deletes, moves, binds, plugs, host joins/leaves and port changes: the
    engine's table of every host, and what its deltas would have installed, equal the oracle."""
    engine, model = Engine(), Model()
    installed = {h: {"flows": {}, "groups": {}, "meters": {}} for h in HOSTS}
    by_digest: dict[tuple[str, int], SwitchState] = {}
    for h in HOSTS:
        engine.table(h)
        replay(installed[h], engine.table(h).take())
    for i, h in enumerate(HOSTS):  # a populated world first, so that most events matter
        apply(engine, model, ("host", h, f"192.168.0.{i + 1}"))
        apply(engine, model, ("ports", h, 100, 200))
    for n in NETS:
        apply(engine, model, ("net", n, 0))
    for i, c in enumerate(CONTAINERS[:3]):
        apply(engine, model, ("ep", "vx1", c, HOSTS[i], 0))
        apply(engine, model, ("plug", HOSTS[i], "vx1", c, 3))
    apply(engine, model, ("group", "g1", 1, ("p1",)))
    apply(engine, model, ("group", "g2", 2, ()))
    apply(engine, model, ("member", "vx1", "a", "g1"))
    apply(engine, model, ("member", "vx1", "b", "g2"))
    if routed:  # vx1 and vx2 on r1, external through vl1 from h2
        apply(engine, model, ("routers", (0, 1, 1), True, "h2"))
        apply(engine, model, ("gwmac", "52:54:00:00:00:01"))
    for i, ev in enumerate(evs):
        apply(engine, model, ev)
        hosts = HOSTS if i % 3 == 0 else [watched]  # others catch up later, in one delta
        for h in hosts:
            table = engine.refresh(h)
            replay(installed[h], table.take())
            want = compute_host(model.intent(), model.host_ports(h),
                                gateway_macs=model.gateway_macs)
            assert table.state() == want, (h, evs[:i + 1])
            assert as_state(installed[h]) == want, (h, ev)
            # one digest, one table: a restarted controller may trust the marker
            seen = by_digest.setdefault((h, engine.digest(h)), want)
            assert seen == want, (h, evs[:i + 1], routed, seen.flows ^ want.flows)


def test_a_change_and_its_revert_before_a_take_send_nothing() -> None:
    engine = Engine()
    engine.set_host_ports("h0", 100, None)
    engine.set_network("vx1", network("vx1"))
    engine.set_endpoint("vx1-a", endpoint("vx1", "a", "h0", 0))
    engine.set_port("h0", "vx1-a", 3)
    table = engine.refresh("h0")
    table.take()
    engine.set_endpoint("vx1-b", endpoint("vx1", "b", "h1", 0))
    engine.refresh("h0")
    engine.set_endpoint("vx1-b", None)
    assert len(engine.refresh("h0").take()) == 0


def test_one_endpoint_add_touches_only_its_own_entries() -> None:
    engine = Engine()
    engine.set_host_ports("h0", 100, None)
    engine.set_host("h1", HostSpec("h1", vtep_ip="192.168.0.2"))
    engine.set_network("vx1", network("vx1"))
    for i in range(50):
        eid = f"vx1-c{i}"
        engine.set_endpoint(eid, EndpointSpec(eid, "vx1", f"c{i}", "h0" if i % 2 else "h1",
                                              f"10.1.0.{i + 2}", f"02:00:00:00:00:{i:02x}"))
        engine.set_port("h0", eid, 10 + i)
    engine.refresh("h0").take()
    engine.set_endpoint("vx1-new", EndpointSpec("vx1-new", "vx1", "new", "h1", "10.1.0.99",
                                                "02:00:00:00:01:00"))
    table: HostTable = engine.refresh("h0")
    delta = table.take()
    # its ARP answer and its remote L2 entry; the group does not change (h1 had endpoints)
    assert len(delta.flows) == 2 and not delta.groups
    assert all(after is not None and before is None for before, after in delta.flows.values())


def test_the_input_digest_follows_the_inputs_and_only_them() -> None:
    def build(order: list[str]) -> Engine:
        e = Engine()
        e.set_host_ports("h0", 100, None)
        e.set_network("vx1", network("vx1"))
        for c in order:
            e.set_endpoint(f"vx1-{c}", endpoint("vx1", c, "h0", 0))
            e.set_port("h0", f"vx1-{c}", 3 + CONTAINERS.index(c))
        return e

    a, b = build(["a", "b", "c"]), build(["c", "a", "b"])
    assert a.digest("h0") == b.digest("h0")
    b.set_endpoint("vx1-d", endpoint("vx1", "d", "h1", 1))
    assert a.digest("h0") != b.digest("h0")
    b.set_endpoint("vx1-d", None)
    assert a.digest("h0") == b.digest("h0")
    b.set_port("h0", "vx1-a", 42)
    assert a.digest("h0") != b.digest("h0")


def policy_world() -> Engine:
    engine = Engine()
    for h in HOSTS:
        engine.set_host(h, HostSpec(h, vtep_ip=f"192.168.0.{HOSTS.index(h) + 1}"))
        engine.set_host_ports(h, 100, None)
    engine.set_network("vx1", network("vx1"))
    engine.set_network("vx2", network("vx2"))
    for i, c in enumerate(CONTAINERS):
        spec = replace(endpoint("vx1", c, HOSTS[i % 3], 0), group="g1" if i % 2 else "g2")
        engine.set_endpoint(spec.id, spec)
        engine.set_port(HOSTS[i % 3], spec.id, 3 + i)
    engine.set_group("t", "g1", EndpointGroupSpec("t", "g1", 1, ("p1",)))
    engine.set_group("t", "g2", EndpointGroupSpec("t", "g2", 2, ()))
    engine.set_policy("t", "p1", PolicyConfig("p1", "t", tuple(RULES[:4])))
    for h in HOSTS:
        engine.table(h).take()
    return engine


def owners_of(table: HostTable, delta: EntryDelta) -> set:
    return {f.cookie for pair in delta.flows.values() for f in pair if f is not None}


def test_adding_a_rule_changes_exactly_its_own_entries() -> None:
    from ofctl import cookies

    engine = policy_world()
    extra = RuleConfig(9, 30, "in", "allow", "ip", "10.1.0.0/24", "udp", 53, 53)
    engine.set_policy("t", "p1", PolicyConfig("p1", "t", tuple(RULES[:4]) + (extra,)))
    rule_cookie = cookies.cookie_for(cookies.RULE, "t/p1/9")
    for h in HOSTS:
        delta = engine.refresh(h).take()
        assert delta.flows and owners_of(engine.tables[h], delta) == {rule_cookie}
        assert all(b is None for b, _a in delta.flows.values()) and not delta.groups
    engine.set_policy("t", "p1", PolicyConfig("p1", "t", tuple(RULES[:4])))
    for h in HOSTS:
        delta = engine.refresh(h).take()
        assert owners_of(engine.tables[h], delta) == {rule_cookie}
        assert all(a is None for _b, a in delta.flows.values())


def test_moving_an_endpoint_between_groups_changes_only_its_entries() -> None:
    from ofctl import cookies

    engine = policy_world()
    moved = replace(engine.endpoints["vx1-a"], group="g1")
    engine.set_endpoint(moved.id, moved)
    cookie = cookies.cookie_for(cookies.ENDPOINT, moved.id)
    for h in HOSTS:
        delta = engine.refresh(h).take()
        assert delta.flows and owners_of(engine.tables[h], delta) == {cookie}


def test_a_rule_with_the_same_entries_as_another_takes_over_when_that_one_goes() -> None:
    engine = policy_world()
    engine.set_policy("t", "p1", PolicyConfig("p1", "t", tuple(RULES)))  # rule 5 == rule 2
    table = engine.refresh("h0")
    table.take()
    engine.set_policy("t", "p1", PolicyConfig("p1", "t", tuple(RULES[:1] + RULES[2:])))
    delta = engine.refresh("h0").take()
    assert delta.flows and all(b is not None and a is not None and b.cookie != a.cookie
                               for b, a in delta.flows.values())  # same entry, new owner


def test_routed_entries_follow_endpoints_and_hosts_across_the_domain() -> None:
    """Scripted: the entries an endpoint has on hosts where only its router's domain is (not
    its network) follow its binding and its host's VTEP address."""
    engine, model = Engine(), Model()
    for h in HOSTS:
        engine.table(h)
    script = [("host", h, f"192.168.0.{i + 1}") for i, h in enumerate(HOSTS)]
    script += [("ports", h, 100, 200) for h in HOSTS] + [("net", n, 0) for n in NETS]
    script += [("ep", "vx1", "a", "h1", 0), ("plug", "h1", "vx1", "a", 3),
               ("routers", (0, 1, 1), True, "h2"), ("gwmac", "52:54:00:00:00:01"),
               ("ep", "vx2", "b", "h0", 0), ("plug", "h0", "vx2", "b", 4),
               ("host", "h0", "192.168.0.9"), ("ep", "vx2", "b", "h0", 1),
               ("plug", "h0", "vx2", "b", None), ("ep", "vx2", "b", "gone", 0)]
    for ev in script:
        apply(engine, model, ev)
        for h in HOSTS:
            want = compute_host(model.intent(), model.host_ports(h),
                                gateway_macs=model.gateway_macs)
            assert engine.refresh(h).state() == want, (h, ev)
