"""Gratuitous ARP from a freshly plugged container: physical switches learn where its MAC now is
and machines on its VLAN refresh a cached entry for its address (a container that moved hosts,
or came back with another MAC).

Sent as an ARP *reply* to broadcast (``arping -A`` style: sender and target are the container's
own address): the switch answers ARP *requests* for endpoints itself, so a request would never
leave the host, while an ARP reply of a VLAN network goes to the uplink (the hand-off).  The
container's flows appear only once the controller has seen its port, so the announcement is
repeated a few times after the plug (``DELAYS``), from a daemon timer: the plug never waits.
"""

from __future__ import annotations

import logging
import socket
import struct
import threading

from netaddr import EUI, IPAddress

from agent.netlink import socket_in_netns

LOG = logging.getLogger(__name__)
ETH_P_ARP = 0x0806
DELAYS = (0.3, 1.0, 3.0)  # seconds after the plug


def garp_frame(mac: str, ip: str) -> bytes:
    """A gratuitous ARP reply from ``mac``/``ip`` to broadcast (42 bytes, untagged)."""
    m, a = EUI(mac).packed, IPAddress(ip).packed
    bcast = b"\xff" * 6
    eth = bcast + m + struct.pack("!H", ETH_P_ARP)
    arp = struct.pack("!HHBBH", 1, 0x0800, 6, 4, 2) + m + a + bcast + a
    return eth + arp


def send_garp(netns: str, ifname: str, mac: str, ip: str) -> None:
    """Send one gratuitous ARP out of ``ifname`` inside the namespace at path ``netns``."""
    sock = socket_in_netns(netns, socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ARP))
    try:
        sock.bind((ifname, ETH_P_ARP))
        sock.send(garp_frame(mac, ip))
    finally:
        sock.close()


class Announcer:
    """Schedules the gratuitous ARPs of each plug (``DELAYS`` after it)."""

    def __init__(self, delays: tuple[float, ...] = DELAYS) -> None:
        self.delays = delays

    def __call__(self, netns: str, ifname: str, mac: str, ip: str) -> None:
        for delay in self.delays:
            t = threading.Timer(delay, self._send, (netns, ifname, mac, ip))
            t.daemon = True
            t.start()

    @staticmethod
    def _send(netns: str, ifname: str, mac: str, ip: str) -> None:
        try:
            send_garp(netns, ifname, mac, ip)
        except OSError as e:  # the container went away meanwhile: nothing to announce
            LOG.debug("gratuitous ARP for %s on %s in %s: %s", ip, ifname, netns, e)
