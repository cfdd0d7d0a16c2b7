"""The input digest the engine keeps (running sums per network and host, memoised hashes)
equals the digest of an engine built from the same inputs in one go, after every event of the
random sequences of :mod:`tests.unit.test_engine`."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ofctl import digests
from ofctl.engine import Engine, engine_from
from tests.unit.test_engine import CONTAINERS, HOSTS, NETS, Model, apply, events


def from_scratch(model: Model) -> dict[str, int]:
    """Every host's digest, from a fresh engine fed the model's inputs, nothing memoised."""
    digests._MEMO.clear()
    fresh = engine_from(model.intent(), {h: model.host_ports(h) for h in HOSTS})
    for (tenant, router), mac in model.gateway_macs.items():
        fresh.set_gateway_mac(tenant, router, mac)
    return {h: fresh.digest(h) for h in HOSTS}


@settings(max_examples=100, deadline=None)
@given(st.lists(events, min_size=1, max_size=30), st.booleans())
def test_the_kept_digest_equals_one_computed_from_scratch(evs, routed) -> None:
    engine, model = Engine(), Model()
    for h in HOSTS:
        engine.table(h)
    for i, h in enumerate(HOSTS):
        apply(engine, model, ("host", h, f"192.168.0.{i + 1}"))
        apply(engine, model, ("ports", h, 100, 200))
    for n in NETS:
        apply(engine, model, ("net", n, 0))
    for i, c in enumerate(CONTAINERS):  # a and b on h0: a host's sums hold several plugs
        host = HOSTS[max(0, i - 1)]
        apply(engine, model, ("ep", "vx1", c, host, 0))
        apply(engine, model, ("plug", host, "vx1", c, 4 if i == 1 else 3))
    if routed:
        apply(engine, model, ("routers", (0, 1, 1), True, "h2"))
        apply(engine, model, ("gwmac", "52:54:00:00:00:01"))
    for i, ev in enumerate(evs):
        apply(engine, model, ev)
        kept = {h: engine.digest(h) for h in HOSTS}  # memo warm from the steps before
        digests._MEMO.clear()
        assert {h: engine.digest(h) for h in HOSTS} == kept  # memo cold
        assert from_scratch(model) == kept, (evs[:i + 1], routed)


def test_the_memo_gives_what_hashing_gives() -> None:
    digests._MEMO.clear()
    parts = [("remote", "n1", "h2", "192.168.0.2"), ("ports", "h1", 1, None), ("net", None)]
    assert [digests.h64_memo(*p) for p in parts] == [digests.h64(*p) for p in parts]
    assert [digests.h64_memo(*p) for p in parts] == [digests.h64(*p) for p in parts]
    assert len(digests._MEMO) == len(parts)
