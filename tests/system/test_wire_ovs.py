"""The direct OpenFlow packer and parser against a real Open vSwitch.

OVS re-encodes what it is given (field order, Nicira vs OXM headers); the parser must read back
exactly the entries the packer installed, and must recognise entries it cannot model (a
``learn`` flow added by hand) as foreign, with the raw match that deletes exactly them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from ofctl import wire
from ofctl.model import Flow, Group
from tests.ofclient import OfClient
from tests.system.test_controller import BRIDGE, Ovs
from tests.unit.ofctl_fixtures import ports_for, sample_intent, states_for


def test_what_the_packer_installs_parses_back_identically(tmp_path: Path) -> None:
    work = Path("/tmp/np-wire") / tmp_path.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ovs = Ovs(work).start()
    try:
        c = OfClient(f"{work}/{BRIDGE}.mgmt")
        intent = sample_intent()
        flows: dict = {}
        groups: dict = {}
        for state in states_for(intent, ports_for(intent)).values():
            flows.update((f.key, f) for f in state.flows)
            groups.update((g.group_id, g) for g in state.groups)
        for g in groups.values():
            c.send(wire.group_mod(g, wire.OFPGC_ADD, c.xid()))
        for f in flows.values():
            c.send(wire.flow_add(f, c.xid()))
        assert c.barrier() == []
        got = wire.parse_flow_stats(c.multipart(wire.flow_stats_request(c.xid())))
        assert all(isinstance(f, Flow) for f in got)
        assert set(got) == set(flows.values())
        assert set(wire.parse_group_desc(c.multipart(wire.group_desc_request(c.xid())))) == \
            set(groups.values())
        # a slice by cookie bits returns exactly the flows of that slice
        part = wire.parse_flow_stats(c.multipart(wire.flow_stats_request(
            c.xid(), cookie=3, cookie_mask=0xF)))
        assert set(part) == {f for f in flows.values() if f.cookie & 0xF == 3}
        # a foreign learn flow is recognised and deleted exactly by its raw match
        ovs.ofctl("add-flow", "table=10,priority=7,cookie=0x99,arp,"
                  "actions=learn(table=11,NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[])")
        got = wire.parse_flow_stats(c.multipart(wire.flow_stats_request(c.xid())))
        (foreign,) = [f for f in got if isinstance(f, wire.Foreign)]
        assert foreign.cookie == 0x99 and "experimenter action" in foreign.why
        c.send(wire.flow_delete_raw(foreign.table, foreign.priority, foreign.raw_match,
                                    xid=c.xid()))
        assert c.barrier() == []
        after = wire.parse_flow_stats(c.multipart(wire.flow_stats_request(c.xid())))
        assert set(after) == set(flows.values())
        assert isinstance(next(iter(groups.values())), Group)
        c.close()
    finally:
        ovs.stop()


def test_qos_and_multicast_entries_install_and_parse_back(tmp_path: Path) -> None:
    """Meters (kbps with and without burst, pktps), the meter instruction, set_field ip_dscp,
    output to the controller and the multicast groups: what OVS reports back is what we sent."""
    from tests.unit.qos_mcast_fixtures import qos_mcast_states

    work = Path("/tmp/np-wire") / tmp_path.name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ovs = Ovs(work).start()
    try:
        c = OfClient(f"{work}/{BRIDGE}.mgmt")
        state = qos_mcast_states()["host0"]
        assert state.meters and any(m.flags == ("kbps",) for m in state.meters)
        for m in state.meters:
            c.send(wire.meter_mod(m, wire.OFPMC_ADD, c.xid()))
        for g in state.groups:
            c.send(wire.group_mod(g, wire.OFPGC_ADD, c.xid()))
        for f in state.flows:
            c.send(wire.flow_add(f, c.xid()))
        assert c.barrier() == []
        got = wire.parse_flow_stats(c.multipart(wire.flow_stats_request(c.xid())))
        assert set(got) == set(state.flows)
        assert set(wire.parse_group_desc(c.multipart(wire.group_desc_request(c.xid())))) == \
            set(state.groups)
        meters = wire.parse_meter_config(c.multipart(wire.meter_config_request(c.xid())))
        assert set(meters) == set(state.meters)
        c.close()
    finally:
        ovs.stop()
