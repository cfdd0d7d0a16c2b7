"""Realized revisions in the store (intent.realized): a change writes the keys of the hosts it
affects, not one per host, and every reader still sees each host's true realized revision."""

from __future__ import annotations

import json

import pytest

from allocator.write import apply_config
from intent import keys
from intent.loader import load_document
from intent.realized import applied_value, realized_hosts, realized_of, realized_value
from intent.store_memory import MemoryStore
from netdcli.cli import wait_realized
from ryu_apps.core import Controller
from tests.unit.test_controller import connect, plug, populate, realized, wait_for


def test_a_current_host_realized_what_its_process_applied():
    applied = {"p1": 40}
    assert realized_of(realized_value(10, True, "p1"), applied) == 40
    assert realized_of(realized_value(50, True, "p1"), applied) == 50
    assert realized_of(realized_value(10, False, "p1"), applied) == 10  # behind at 10
    assert realized_of(realized_value(10, True, "gone"), applied) == 10  # its process retired
    assert realized_of(json.dumps({"revision": 7}), applied) == 7  # an older controller's
    assert realized_of(None, applied) == 0
    assert realized_of("not json", applied) == 0
    items = {keys.realized("h1"): realized_value(3, True, "p1"),
             keys.applied("p1"): applied_value(9, "ctl"), keys.oper_host("h1"): "{}"}
    assert realized_hosts(items) == {"h1": 9}


class Recording(MemoryStore):
    """Records the realized keys every transaction writes."""

    def __init__(self) -> None:
        super().__init__()
        self.realized_puts: list[str] = []

    def txn(self, compares, ops, *args, **kw):
        res = super().txn(compares, ops, *args, **kw)
        if res.succeeded:
            self.realized_puts += [keys.last_segment(o.key) for o in ops
                                   if getattr(o, "key", "").startswith(keys.OPER_REALIZED)]
        return res


@pytest.fixture
def bed():
    store = Recording()
    populate(store)
    ctls = []

    def start() -> Controller:
        ctl = Controller(store, audit_interval=0, timeout=2)
        ctl.start()
        ctls.append(ctl)
        return ctl

    yield store, start
    for ctl in ctls:
        ctl.stop()


def add_endpoint(store, network: str, container: str, host: str, ofport: int) -> int:
    apply_config(store, load_document({"Tenants": [{"Name": "t1", "Networks": [{
        "Name": network, "Endpoints": [{"Container": container, "Host": host}]}]}]}), "add")
    plug(store, f"{network}-{container}", host, ofport)
    return store.revision()


def test_a_change_writes_only_the_keys_of_the_hosts_it_affects(bed):
    store, start = bed
    ctl = start()
    for dpid in (1, 2, 3):
        connect(ctl, dpid)
    wait_for(lambda: all(realized(store, h) > 0 for h in ("host1", "host2", "host3")))
    store.realized_puts = []
    rev = add_endpoint(store, "blue", "c4", "host3", 8)  # blue is on host3 only
    wait_for(lambda: all(realized(store, h) >= rev for h in ("host1", "host2", "host3")))
    assert wait_realized(store, rev, 0) == []  # netdcli -wait reads the same
    assert set(store.realized_puts) <= {"host3"}


def test_a_switch_that_went_away_stops_realizing(bed):
    store, start = bed
    ctl = start()
    dps = {dpid: connect(ctl, dpid) for dpid in (1, 2, 3)}
    wait_for(lambda: all(realized(store, h) > 0 for h in ("host1", "host2", "host3")))
    before = realized(store, "host2")
    ctl.switch_disconnected(dps[2])
    rev = add_endpoint(store, "orange", "c5", "host2", 9)
    # host1 (in orange too) realized it: the applied revision moved past it
    wait_for(lambda: realized(store, "host1") >= rev)
    assert before <= realized(store, "host2") < rev
    assert wait_realized(store, rev, 0.2) == ["host2"]


def test_a_restarted_controller_retires_its_old_process_without_going_back(bed):
    store, start = bed
    first = start()
    connect(first, 1)
    wait_for(lambda: realized(store, "host1") > 0)
    rev0 = add_endpoint(store, "blue", "c6", "host3", 8)  # host1 is not in blue: stays current
    wait_for(lambda: first.realizer.applied_written >= rev0)
    seen = realized(store, "host1")
    first.stop()
    old = first.realizer.process
    second = start()  # same controller name, a new process; host1 not connected to it
    wait_for(lambda: store.get(keys.applied(old)) is None)
    assert realized(store, "host1") == seen  # what it held, no more and no less
    rev = add_endpoint(store, "orange", "c7", "host1", 9)
    wait_for(lambda: second.realizer.applied_written >= rev)
    assert realized(store, "host1") == seen < rev
