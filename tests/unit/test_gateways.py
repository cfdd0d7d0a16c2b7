"""Learning a physical gateway's MAC: the request sent from the gateway host, the reply
stored under oper/gateways, the intake handing it to the engine (and refusing junk)."""

from __future__ import annotations

import json

from intent import keys
from intent.model import NetworkSpec, RouterSpec
from intent.store import Event
from intent.store_memory import MemoryStore
from ofctl.engine import Engine
from ofctl.router import router_mac
from ryu_apps.framework import ofproto_v1_3, ofproto_v1_3_parser, pkt_arp, pkt_ethernet, pkt_packet
from ryu_apps.gateways import GatewayLearner, arp_reply_of, arp_request
from ryu_apps.intake import Intake

GW_MAC = "52:54:00:aa:bb:01"


class FakeDp:
    id = 7
    ofproto = ofproto_v1_3
    ofproto_parser = ofproto_v1_3_parser

    def __init__(self) -> None:
        self.sent: list = []

    def send_msg(self, msg) -> None:
        self.sent.append(msg)


class FakeSession:
    def __init__(self) -> None:
        self.dp = FakeDp()


def world() -> Engine:
    e = Engine()
    e.set_network("ext", NetworkSpec("ext", "t", "vlan", 300, "10.9.0.0/24", "10.9.0.1"))
    e.set_router("t", "r1", RouterSpec("t", "r1", 1, ("orange",), "ext", "10.9.0.2", "h3"))
    e.set_host_ports("h3", 1, 2)
    return e


def reply(src_mac: str, src_ip: str, dst_ip: str) -> bytes:
    p = pkt_packet.Packet()
    p.add_protocol(pkt_ethernet.ethernet(dst=router_mac("h3"), src=src_mac, ethertype=0x0806))
    p.add_protocol(pkt_arp.arp_ip(pkt_arp.ARP_REPLY, src_mac, src_ip, router_mac("h3"), dst_ip))
    p.serialize()
    return bytes(p.data)


def test_request_is_an_arp_from_external_ip_tagged_out_of_the_uplink():
    engine, session = world(), FakeSession()
    learner = GatewayLearner(MemoryStore(), lambda: engine,
                             lambda h: session if h == "h3" else None, interval=60, retry=3)
    assert learner.ask_due(now=100.0) == 1
    assert learner.ask_due(now=101.0) == 0  # not due again before ``retry``
    assert learner.ask_due(now=104.0) == 1  # still unknown: asked again
    (msg, _again) = session.dp.sent
    a = pkt_packet.Packet(msg.data).get_protocol(pkt_arp.arp)
    assert (a.opcode, a.src_mac, a.src_ip, a.dst_ip) == (1, router_mac("h3"), "10.9.0.2",
                                                         "10.9.0.1")
    acts = [type(x).__name__ for x in msg.actions]
    assert acts == ["OFPActionPushVlan", "OFPActionSetField", "OFPActionOutput"]
    assert msg.actions[1].value == 0x1000 | 300 and msg.actions[2].port == 2
    engine.set_gateway_mac("t", "r1", GW_MAC)
    assert learner.ask_due(now=110.0) == 0  # known: asked every ``interval`` only
    assert learner.ask_due(now=165.0) == 1


def test_no_request_without_the_gateway_hosts_switch():
    engine = world()
    learner = GatewayLearner(MemoryStore(), lambda: engine, lambda h: None)
    assert learner.ask_due(now=1.0) == 0


def test_a_reply_is_stored_and_reaches_the_engine_through_the_intake():
    engine, store = world(), MemoryStore()
    learner = GatewayLearner(store, lambda: engine, lambda h: None)
    # replies that are not from the gateway, not for ExternalIp or not on h3 teach nothing
    assert not learner.packet_in("h3", reply(GW_MAC, "10.9.0.77", "10.9.0.2"))
    assert not learner.packet_in("h3", reply(GW_MAC, "10.9.0.1", "10.9.0.3"))
    assert not learner.packet_in("h1", reply(GW_MAC, "10.9.0.1", "10.9.0.2"))
    assert not learner.packet_in("h3", b"\x00" * 20)
    assert store.get(keys.oper_gateway("t", "r1")) is None
    assert learner.packet_in("h3", reply(GW_MAC, "10.9.0.1", "10.9.0.2"))
    kv = store.get(keys.oper_gateway("t", "r1"))
    assert json.loads(kv.value)["mac"] == GW_MAC
    intake = Intake(engine)
    intake.apply(Event("put", kv.key, kv.value, kv.mod_revision))
    assert engine.gateway_mac("t", "r1") == GW_MAC
    assert not learner.packet_in("h3", reply(GW_MAC, "10.9.0.1", "10.9.0.2"))  # no news


def test_a_junk_gateway_value_is_quarantined():
    engine = world()
    intake = Intake(engine)
    key = keys.oper_gateway("t", "r1")
    intake.apply(Event("put", key, json.dumps({"mac": GW_MAC}), 5))
    intake.apply(Event("put", key, json.dumps({"mac": "not-a-mac"}), 6))
    assert engine.gateway_mac("t", "r1") == GW_MAC and key in intake.problems


def test_frames_round_trip():
    data = arp_request("0a:00:00:00:00:09", "10.9.0.2", "10.9.0.1")
    assert arp_reply_of(data) is None  # a request is no reply
    assert arp_reply_of(reply(GW_MAC, "10.9.0.1", "10.9.0.2")) == (GW_MAC, "10.9.0.1",
                                                                    "10.9.0.2")
