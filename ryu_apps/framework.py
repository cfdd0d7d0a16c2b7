"""The one module that imports the OpenFlow framework: os-ken (eventlet hub), else Ryu.

Everything else in ``ryu_apps`` imports framework names from here, so the app code stays plain
Ryu-API code: ``ryu-manager ryu_apps.netplugin`` runs it on os-ken (``ryu_apps.manager``), or on
Ryu when Ryu's own manager loads it.
"""

from __future__ import annotations

import os
import sys

# os-ken picks its hub from the environment at import time; the project runs on eventlet.
os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")



def ryu_manager_running(modules: dict = sys.modules) -> bool:
    """Whether Ryu's own app manager runs this process (then the apps must be Ryu apps).

    ``ryu_apps.manager``'s ``ryu.*`` alias on os-ken puts os-ken's module there: not Ryu's.
    """
    mod = modules.get("ryu.base.app_manager")
    return mod is not None and mod.__name__ == "ryu.base.app_manager"


UNDER_RYU = ryu_manager_running()

try:  # pragma: no branch - whichever is installed
    if UNDER_RYU:
        raise ImportError("Ryu's manager runs this process")
    from os_ken import cfg
    from os_ken.base import app_manager
    from os_ken.controller import ofp_event
    from os_ken.controller.handler import (
        CONFIG_DISPATCHER,
        DEAD_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from os_ken.lib import hub
    from os_ken.lib.packet import arp as pkt_arp
    from os_ken.lib.packet import ethernet as pkt_ethernet
    from os_ken.lib.packet import packet as pkt_packet
    from os_ken.ofproto import ofproto_common, ofproto_v1_3, ofproto_v1_3_parser

    RyuApp = app_manager.OSKenApp
    FRAMEWORK = "os_ken"
except ImportError:  # pragma: no cover - Ryu fallback
    from ryu import cfg  # type: ignore[no-redef]
    from ryu.base import app_manager  # type: ignore[no-redef]
    from ryu.controller import ofp_event  # type: ignore[no-redef]
    from ryu.controller.handler import (  # type: ignore[no-redef]
        CONFIG_DISPATCHER,
        DEAD_DISPATCHER,
        MAIN_DISPATCHER,
        set_ev_cls,
    )
    from ryu.lib import hub  # type: ignore[no-redef]
    from ryu.lib.packet import arp as pkt_arp  # type: ignore[no-redef]
    from ryu.lib.packet import ethernet as pkt_ethernet  # type: ignore[no-redef]
    from ryu.lib.packet import packet as pkt_packet  # type: ignore[no-redef]
    from ryu.ofproto import (  # type: ignore[no-redef]
        ofproto_common,
        ofproto_v1_3,
        ofproto_v1_3_parser,
    )

    RyuApp = app_manager.RyuApp
    FRAMEWORK = "ryu"

__all__ = [
    "CONFIG_DISPATCHER", "DEAD_DISPATCHER", "FRAMEWORK", "MAIN_DISPATCHER", "RyuApp",
    "app_manager", "cfg", "hub", "ofp_event", "ofproto_common", "ofproto_v1_3",
    "ofproto_v1_3_parser", "set_ev_cls", "blocking", "ryu_manager_running", "UNDER_RYU",
    "pkt_arp", "pkt_ethernet", "pkt_packet",
]


def blocking(fn, *args, **kwargs):
    """Run a blocking call without freezing the hub.

    Under eventlet with a monkey-patched socket module (the launcher patches) the call is already
    cooperative and runs inline; otherwise (e.g. unit tests) it runs in eventlet's thread pool.
    """
    if hub.HUB_TYPE != "eventlet":
        return fn(*args, **kwargs)
    import eventlet.patcher
    import eventlet.tpool

    if eventlet.patcher.is_monkey_patched("socket"):
        return fn(*args, **kwargs)
    return eventlet.tpool.execute(fn, *args, **kwargs)


class RawBody:
    """The body of a multipart reply kept as bytes (``raw``): the controller parses flow stats
    itself (:mod:`ofctl.wire`), several times faster than os-ken's object model."""

    def __init__(self, raw: bytes) -> None:
        self.raw = raw
        self.length = len(raw)

    @classmethod
    def parser(cls, buf, offset: int) -> RawBody:
        return cls(bytes(buf[offset:]))


def install_raw_stats() -> None:
    """Make os-ken hand flow-stats, group-desc and meter-config replies over unparsed (their
    ``body`` is ``[RawBody]``).  Idempotent."""
    for reply in (ofproto_v1_3_parser.OFPFlowStatsReply,
                  ofproto_v1_3_parser.OFPGroupDescStatsReply,
                  ofproto_v1_3_parser.OFPMeterConfigStatsReply):
        reply.cls_stats_body_cls = RawBody
