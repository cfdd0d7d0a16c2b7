"""The agent's gratuitous ARP after a plug: the frame, and where the switches carry it (an ARP
reply of a VLAN network reaches the physical segment once, on the network's VLAN only)."""

from __future__ import annotations

import logging
import struct
import time

from agent.garp import Announcer, garp_frame
from ofctl.sim import Packet
from tests.unit.ofctl_fixtures import endpoint_ports
from tests.unit.test_router_sim import endpoint, sim_of, world


def test_frame_is_a_broadcast_arp_reply_from_and_for_the_container() -> None:
    f = garp_frame("02:00:0a:02:00:03", "10.2.0.3")
    assert len(f) == 42
    assert f[:6] == b"\xff" * 6 and f[6:12] == bytes.fromhex("02000a020003")
    assert struct.unpack("!H", f[12:14]) == (0x0806,)
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", f[14:22])
    assert (htype, ptype, hlen, plen, op) == (1, 0x0800, 6, 4, 2)
    assert f[22:28] == bytes.fromhex("02000a020003") and f[28:32] == bytes([10, 2, 0, 3])
    assert f[32:38] == b"\xff" * 6 and f[38:42] == bytes([10, 2, 0, 3])  # target = sender


def garp(e, port: int) -> Packet:
    return Packet(in_port=port, eth_src=e.mac, eth_dst="ff:ff:ff:ff:ff:ff", eth_type=0x0806,
                  arp_op=2, arp_spa=e.ip, arp_sha=e.mac, arp_tpa=e.ip,
                  arp_tha="ff:ff:ff:ff:ff:ff")


def test_a_vlan_containers_garp_reaches_its_vlan_once_and_a_vxlan_ones_not_the_trunk() -> None:
    intent = world(routed=True)
    sim, ports = sim_of(intent, physical={"phys": 100, "other": 101})
    at = endpoint_ports(ports)
    d = endpoint(intent, "purplet1-d")  # VLAN 100, on h2
    t = sim.send(at[d.id][0], garp(d, at[d.id][1]))
    got = t.at("phys")
    assert len(got) == 1 and (got[0].arp_op, got[0].arp_sha, got[0].arp_spa) == (2, d.mac, d.ip)
    assert t.at("other") == []  # t2's purple is VLAN 101: nothing crosses
    a = endpoint(intent, "oranget1-a")  # VXLAN
    t = sim.send(at[a.id][0], garp(a, at[a.id][1]))
    assert t.at("phys") == [] and t.at("other") == []


def test_announcer_sends_later_and_never_raises(monkeypatch) -> None:
    sent: list[tuple] = []
    monkeypatch.setattr("agent.garp.send_garp", lambda *a: sent.append(a))
    Announcer(delays=(0.0, 0.01))("/run/netns/x", "eth0", "02:00:00:00:00:01", "10.0.0.1")
    deadline = time.monotonic() + 2
    while len(sent) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sent == [("/run/netns/x", "eth0", "02:00:00:00:00:01", "10.0.0.1")] * 2


def test_a_namespace_that_is_gone_is_logged_not_raised(caplog) -> None:
    with caplog.at_level(logging.DEBUG, logger="agent.garp"):
        Announcer._send("/nonexistent/netns", "eth0", "02:00:00:00:00:01", "10.0.0.1")
    assert "gratuitous ARP for 10.0.0.1" in caplog.text
