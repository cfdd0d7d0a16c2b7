"""Host set-up (br-int, the vxlan port, br-phy with the underlay address, the uplink) and the
host's registration value.  Every step is idempotent: the agent re-runs it on each resync, which
also repairs a bridge someone deleted or an OVSDB that came back empty.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from agent import __version__
from agent.netlink import HostSide
from agent.ovsdb import BridgeSpec, Ovsdb

LOG = logging.getLogger(__name__)
BR_INT = "br-int"
BR_PHY = "br-phy"
VXLAN_PORT = "vxlan0"


@dataclass(frozen=True)
class HostOptions:
    name: str
    datapath_type: str = "netdev"
    controller: str | None = None
    vtep_ip: str | None = None
    underlay_if: str | None = None
    uplink: str | None = None


def setup_host(ovs: Ovsdb, links: HostSide, opt: HostOptions) -> dict:
    """Create or repair the bridges and ports; returns the registration JSON (contract shape)."""
    ovs.ensure_bridge(BridgeSpec(BR_INT, opt.datapath_type, controller=opt.controller,
                                 other_config=(("disable-in-band", "true"),)))
    vxlan_ofport = ovs.ensure_port(BR_INT, VXLAN_PORT, "vxlan",
                                   options={"remote_ip": "flow", "key": "flow"})
    vtep_ip = opt.vtep_ip
    if opt.underlay_if:
        ovs.ensure_bridge(BridgeSpec(BR_PHY, opt.datapath_type, protocols=(), fail_mode=None))
        ovs.wait_ofport(BR_PHY)
        ovs.ensure_port(BR_PHY, opt.underlay_if)
        moved = links.move_addrs(opt.underlay_if, BR_PHY)
        if moved:
            LOG.info("moved %s from %s to %s", ", ".join(moved), opt.underlay_if, BR_PHY)
        links.set_up(BR_PHY)
        vtep_ip = vtep_ip or links.ipv4_of(BR_PHY)
    uplink_ofport = None
    if opt.uplink:
        links.set_up(opt.uplink)
        uplink_ofport = ovs.ensure_port(BR_INT, opt.uplink)
    if vtep_ip is None:
        dev = links.default_route_dev()
        vtep_ip = links.ipv4_of(dev) if dev else None
    return {"name": opt.name, "dpid": ovs.dpid(BR_INT), "vtep_ip": vtep_ip,
            "uplink": opt.uplink, "uplink_ofport": uplink_ofport,
            "vxlan_ofport": vxlan_ofport, "version": __version__}
