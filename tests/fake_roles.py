"""One fake switch with several controller connections and OpenFlow 1.3 roles, as OVS does them.

Every :class:`RoleConnection` is one controller's connection to the same tables.  A connection
starts EQUAL; ROLE_REQUEST MASTER/SLAVE with a generation id older than the newest one seen is
refused (ROLE_REQUEST_FAILED/STALE); a new MASTER turns the previous master into a SLAVE; a
SLAVE's table changes (flow/group/meter mods, bundles) are refused with BAD_REQUEST/IS_SLAVE.
"""

from __future__ import annotations

import struct

from ryu_apps.framework import ofproto_v1_3 as OFP
from tests.fake_switch import FakeDatapath

TABLE_CHANGING = (OFP.OFPT_FLOW_MOD, OFP.OFPT_GROUP_MOD, OFP.OFPT_METER_MOD,
                  OFP.OFPT_EXPERIMENTER)


class RoleSwitch:
    """The tables and the election state one switch shares among its connections."""

    def __init__(self, dpid: int) -> None:
        self.dpid = dpid
        self.flows: dict = {}
        self.groups: dict = {}
        self.meters: dict = {}
        self.generation: int | None = None
        self.connections: list[RoleConnection] = []

    def connect(self) -> RoleConnection:
        c = RoleConnection(self)
        self.connections.append(c)
        return c


class RoleConnection(FakeDatapath):
    """One controller's connection to a :class:`RoleSwitch`."""

    def __init__(self, switch: RoleSwitch) -> None:
        super().__init__(switch.dpid)
        self.switch = switch
        self.flows, self.groups, self.meters = switch.flows, switch.groups, switch.meters
        self.role = OFP.OFPCR_ROLE_EQUAL
        self.roles_asked: list[tuple[int, int]] = []  # (role, generation)
        self.refused_slave: list[bytes] = []  # table changes refused: this was a slave

    def table_changes(self) -> list[bytes]:
        """Every table-changing message this connection sent (applied or refused)."""
        return self.changes() + self.refused_slave

    def _handle(self, m: bytes) -> None:
        msg_type, xid = m[1], struct.unpack_from("!I", m, 4)[0]
        if msg_type == OFP.OFPT_ROLE_REQUEST:
            role, generation = struct.unpack_from("!I4xQ", m, 8)
            self.roles_asked.append((role, generation))
            self.sent.append(("role_request", m))
            sw = self.switch
            if role in (OFP.OFPCR_ROLE_MASTER, OFP.OFPCR_ROLE_SLAVE):
                if sw.generation is not None and (generation - sw.generation) & (1 << 63):
                    self._reply(OFP.OFPT_ERROR, xid, struct.pack(
                        "!HH", OFP.OFPET_ROLE_REQUEST_FAILED, OFP.OFPRRFC_STALE))
                    return
                sw.generation = generation
            if role == OFP.OFPCR_ROLE_MASTER:
                for other in sw.connections:
                    if other is not self and other.role == OFP.OFPCR_ROLE_MASTER:
                        other.role = OFP.OFPCR_ROLE_SLAVE
            if role != OFP.OFPCR_ROLE_NOCHANGE:
                self.role = role
            self._reply(OFP.OFPT_ROLE_REPLY, xid, struct.pack("!I4xQ", self.role, generation))
            return
        if self.role == OFP.OFPCR_ROLE_SLAVE and msg_type in TABLE_CHANGING:
            self.refused_slave.append(m)
            self._reply(OFP.OFPT_ERROR, xid, struct.pack("!HH", OFP.OFPET_BAD_REQUEST,
                                                         OFP.OFPBRC_IS_SLAVE))
            return
        super()._handle(m)
