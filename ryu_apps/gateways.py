"""Learning the MAC of each external router's physical gateway.

A router with an ``ExternalNetwork`` hands traffic to a real router on the trunk, so its
gateway host must know that router's MAC.  The controller asks, by ARP, from the gateway host's
switch: a packet-out of a request from ``ExternalIp`` (with the gateway host's router MAC),
tagged with the external VLAN, out of the uplink.  The gateway's reply is passed to the
controller by an entry of the router's fragment (:func:`ofctl.router.external_flows`), and the
MAC is stored under ``/netplugin/oper/gateways/<tenant>/<router>``: every controller (and a
restarted one) reads it from there like any other input, and the router's default route
appears once it is known.  Asked again every ``interval`` seconds (every ``retry`` seconds
while unknown), so a replaced gateway is noticed.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any

from intent import keys
from intent.model import RouterSpec
from intent.store import Store, StoreError
from ofctl.model import OFPVID_PRESENT
from ofctl.router import router_mac
from ryu_apps.framework import blocking, hub, pkt_arp, pkt_ethernet, pkt_packet

LOG = logging.getLogger(__name__)
ETH_ARP = 0x0806


def arp_request(src_mac: str, src_ip: str, target_ip: str) -> bytes:
    """An ARP request frame (untagged) from ``src_mac``/``src_ip`` for ``target_ip``."""
    p = pkt_packet.Packet()
    p.add_protocol(pkt_ethernet.ethernet(dst="ff:ff:ff:ff:ff:ff", src=src_mac,
                                         ethertype=ETH_ARP))
    p.add_protocol(pkt_arp.arp_ip(pkt_arp.ARP_REQUEST, src_mac, src_ip, "00:00:00:00:00:00",
                                  target_ip))
    p.serialize()
    return bytes(p.data)


def arp_reply_of(data: bytes) -> tuple[str, str, str] | None:
    """(sender MAC, sender IP, target IP) of an ARP reply frame; None for anything else."""
    try:
        a = pkt_packet.Packet(data).get_protocol(pkt_arp.arp)
    except Exception:  # noqa: BLE001 - a frame we cannot parse is no reply
        return None
    if a is None or a.opcode != pkt_arp.ARP_REPLY:
        return None
    return a.src_mac.lower(), a.src_ip, a.dst_ip


class GatewayLearner:
    """Sends the ARP requests and stores what the replies say (see the module docstring)."""

    def __init__(self, store: Store, engine_of: Callable[[], Any],
                 session_of: Callable[[str], Any], interval: float = 60.0,
                 retry: float = 3.0) -> None:
        self.store = store
        self.engine_of = engine_of  # the controller's current engine (it is replaced on reload)
        self.session_of = session_of  # host -> its switch session (None: not connected)
        self.interval = interval
        self.retry = retry
        self._asked: dict[tuple[str, str], float] = {}
        self.running = False

    def external_routers(self) -> list[RouterSpec]:
        return [r for r in self.engine_of().routers.values()
                if r.external_network and r.external_ip and r.gateway_host]

    def _gateway_ip(self, r: RouterSpec) -> tuple[str | None, int | None]:
        net = self.engine_of().networks.get(r.external_network)
        return (net.gateway, net.tag) if net is not None else (None, None)

    def run(self) -> None:
        self.running = True
        while self.running:
            try:
                self.ask_due()
            except Exception:  # noqa: BLE001 - keep learning, log loudly
                LOG.exception("gateway learning failed")
            hub.sleep(self.retry)

    def stop(self) -> None:
        self.running = False

    def ask_due(self, now: float | None = None) -> int:
        """Send the requests that are due; returns how many were sent."""
        now = time.monotonic() if now is None else now
        sent = 0
        engine = self.engine_of()
        for r in self.external_routers():
            key = (r.tenant, r.name)
            wait = self.interval if engine.gateway_mac(*key) else self.retry
            if now - self._asked.get(key, -1e9) < wait:
                continue
            s = self.session_of(r.gateway_host)
            gw_ip, tag = self._gateway_ip(r)
            uplink = engine.ports(r.gateway_host).uplink_port
            if s is None or gw_ip is None or uplink is None:
                continue
            self._asked[key] = now
            self.send_request(s.dp, r, gw_ip, tag, uplink)
            sent += 1
        return sent

    @staticmethod
    def send_request(dp: Any, r: RouterSpec, gateway_ip: str, tag: int, uplink: int) -> None:
        parser, ofp = dp.ofproto_parser, dp.ofproto
        data = arp_request(router_mac(r.gateway_host or ""), r.external_ip or "", gateway_ip)
        actions = [parser.OFPActionPushVlan(0x8100),
                   parser.OFPActionSetField(vlan_vid=OFPVID_PRESENT | tag),
                   parser.OFPActionOutput(uplink)]
        dp.send_msg(parser.OFPPacketOut(dp, buffer_id=ofp.OFP_NO_BUFFER,
                                        in_port=ofp.OFPP_CONTROLLER, actions=actions,
                                        data=data))

    def packet_in(self, host: str | None, data: bytes) -> bool:
        """A frame a switch passed up; returns whether it taught us a gateway's MAC."""
        reply = arp_reply_of(data)
        if reply is None or host is None:
            return False
        mac, spa, tpa = reply
        engine = self.engine_of()
        for r in self.external_routers():
            gw_ip, _tag = self._gateway_ip(r)
            if host != r.gateway_host or spa != gw_ip or tpa != r.external_ip:
                continue
            if engine.gateway_mac(r.tenant, r.name) == mac:
                return False
            value = json.dumps({"mac": mac, "ip": spa, "host": host,
                                "learnt": round(time.time(), 3)}, sort_keys=True)
            try:
                blocking(self.store.put, keys.oper_gateway(r.tenant, r.name), value)
            except StoreError as exc:
                LOG.warning("router %s/%s: gateway %s is at %s, but the store is unavailable "
                            "(%s); asking again later", r.tenant, r.name, spa, mac, exc)
                self._asked.pop((r.tenant, r.name), None)
                return False
            LOG.info("router %s/%s: gateway %s is at %s (from %s)", r.tenant, r.name, spa,
                     mac, host)
            return True
        return False
