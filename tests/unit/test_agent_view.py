"""The agent's live view of the intent: which events concern its host, and unknown intent."""

from __future__ import annotations

from agent import plan as P
from agent.plan import Actual
from agent.reconcile import view_inputs
from agent.view import IntentView
from intent import codec, keys
from intent.model import EndpointSpec, NetworkSpec
from intent.store import Event, KeyValue

NET = NetworkSpec(name="blue", tenant="t", net_type="vxlan", tag=5001, subnet="10.1.0.0/24",
                  gateway="10.1.0.1")


def ep(name: str, host: str, ip: str = "10.1.0.2") -> EndpointSpec:
    return EndpointSpec(id=f"blue-{name}", network="blue", container=name, host=host, ip=ip,
                        mac="02:00:0a:01:00:02")


def kv(key: str, value: str, rev: int = 1) -> KeyValue:
    return KeyValue(key, value, rev, rev, 1)


def put(key: str, value: str, rev: int) -> Event:
    return Event("put", key, value, rev)


def view_with(*endpoints: EndpointSpec) -> IntentView:
    v = IntentView("h1")
    v.load([kv(keys.state_network("blue"), codec.dumps(NET))] +
           [kv(keys.state_endpoint(e.id), codec.dumps(e)) for e in endpoints], 10)
    return v


def test_only_events_of_this_hosts_endpoints_and_their_networks_start_a_pass() -> None:
    v = view_with(ep("a", "h1"))
    assert not v.apply(put(keys.state_endpoint("blue-b"), codec.dumps(ep("b", "h2")), 11))
    assert v.apply(put(keys.state_endpoint("blue-c"), codec.dumps(ep("c", "h1")), 12))
    assert v.apply(put(keys.state_network("blue"), codec.dumps(NET), 13))  # a has it
    other = NetworkSpec(name="red", tenant="t", net_type="vlan", tag=7, subnet="10.2.0.0/24")
    assert not v.apply(put(keys.state_network("red"), codec.dumps(other), 14))
    # an endpoint that moves away concerns the host it leaves
    assert v.apply(put(keys.state_endpoint("blue-a"), codec.dumps(ep("a", "h2")), 15))
    assert v.apply(put(keys.state_network("blue"), codec.dumps(NET), 16))  # c still is
    assert v.apply(Event("delete", keys.state_endpoint("blue-c"), None, 17))
    assert not v.apply(put(keys.state_network("blue"), codec.dumps(NET), 18))  # none here now
    assert v.revision == 18


def test_this_hosts_oper_keys_are_kept_without_starting_a_pass() -> None:
    v = view_with(ep("a", "h1"))
    assert not v.apply(put(keys.oper_endpoint("blue-a"), '{"host": "h1", "ofport": 3}', 11))
    assert not v.apply(put(keys.oper_endpoint("blue-b"), '{"host": "h2", "ofport": 3}', 12))
    assert v.oper == {"blue-a": {"host": "h1", "ofport": 3}}
    v.apply(Event("delete", keys.oper_endpoint("blue-a"), None, 13))
    assert v.oper == {}


def test_unreadable_intent_is_held_not_unplugged_and_heals() -> None:
    """A plugged endpoint whose state (or network) becomes unreadable stays plugged; its last
    readable value stays in force; a readable value heals it."""
    a = ep("a", "h1")
    v = view_with(a)
    actual = [Actual("npblue-a", "blue-a", ofport=3, ip=a.ip, netns="/run/netns/a",
                     container="a")]

    def actions():
        inp = view_inputs(v, {"a": P.RuntimeEntry("a", "/run/netns/a", "")})
        want, _problems = P.desired_set("h1", inp.endpoints, inp.networks, inp.runtime)
        return P.plan("h1", want, actual, {"blue-a": {"host": "h1"}}, frozenset(),
                      inp.unknown), inp.unknown

    assert v.apply(put(keys.state_endpoint("blue-a"), "{not json", 11))
    acts, unknown = actions()
    assert unknown == {"blue-a"} and not any(isinstance(x, P.Unplug) for x in acts)
    assert v.state.endpoints["blue-a"] == a  # the last readable value
    assert v.apply(put(keys.state_endpoint("blue-a"), codec.dumps(a), 12))
    assert v.apply(put(keys.state_network("blue"), "[1, 2", 13))
    acts, unknown = actions()
    assert unknown == {"blue-a"} and not any(isinstance(x, P.Unplug) for x in acts)
    assert v.apply(put(keys.state_network("blue"), codec.dumps(NET), 14))
    assert view_inputs(v, {}).unknown == frozenset()
    # deleted for real (readable): it goes
    v.apply(Event("delete", keys.state_endpoint("blue-a"), None, 15))
    acts, unknown = actions()
    assert unknown == frozenset() and any(isinstance(x, P.Unplug) for x in acts)


def test_the_agent_follows_one_watch_and_drops_what_a_replaced_one_still_delivers() -> None:
    """Agent._load_view reads the intent at one revision and watches from the next; after a
    reload (the watch's history was compacted), batches of the old watch are ignored."""
    import argparse

    from agent.main import RELOAD, Agent
    from intent.store_memory import MemoryStore

    store = MemoryStore()
    store.put(keys.state_network("blue"), codec.dumps(NET))
    agent = Agent(argparse.Namespace(host="h1"))
    agent.store = store
    agent._load_view()
    assert agent.view.state.networks == {"blue": NET}
    first = agent.generation
    rev = store.put(keys.state_endpoint("blue-a"), codec.dumps(ep("a", "h1")))
    gen, batch = agent.events.get(timeout=5)
    assert gen == first and agent._take((gen, batch)) and agent.view.revision == rev
    stale = (first, [put(keys.state_endpoint("blue-a"), "{not json", rev + 1)])
    assert agent._take((first, RELOAD)) and agent.view_stale
    agent._load_view()
    assert not agent._take(stale) and "blue-a" not in agent.view.state.bad_endpoints
    assert agent.view.state.endpoints["blue-a"] == ep("a", "h1")
    agent.stop.set()
    for w in agent.watchers:
        w.close()
