"""Plug and unplug one endpoint: veth + container config + OVS port, all or nothing.

Order of a plug: veth (peer created inside the container) -> container side configured -> OVS port
with ``external_ids`` added last.  An OVS port that carries ``endpoint-id`` therefore always means a
finished plug; a host-side ``np…`` veth without an OVS port is a crashed plug and is deleted.
Agent and CNI plugin serialise plugs on one host with :func:`host_lock`.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from agent.netlink import ContainerSide, HostSide, PlumbingError
from agent.ovsdb import Ovsdb, OvsdbError
from agent.plan import PORT_RE, Actual, Desired

LOG = logging.getLogger(__name__)
BRIDGE = "br-int"


@dataclass(frozen=True)
class Plugged:
    endpoint_id: str
    port_name: str
    ofport: int
    ifname: str  # name inside the container
    mac: str
    netns: str


def lock_path(ovsdb_remote: str, host: str) -> str:
    """The lock file shared by the agent and the CNI plugin of one host."""
    if ovsdb_remote.startswith("unix:"):
        return os.path.join(os.path.dirname(ovsdb_remote[5:]), "netplugin.lock")
    return f"/run/netplugin-{host}.lock"


@contextlib.contextmanager
def host_lock(path: str) -> Iterator[None]:
    """An exclusive flock: one plug/unplug sequence at a time on this host."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def external_ids(want: Desired, ifname: str) -> dict[str, str]:
    return {"endpoint-id": want.endpoint_id, "attached-mac": want.mac.lower(),
            "np-sig": want.sig, "np-ip": want.ip, "np-netns": want.netns,
            "np-container": want.owner, "np-container-id": want.container_id,
            "np-ifname": ifname}


Announce = Callable[[str, str, str, str], None]  # (netns, ifname, mac, ip) after a plug


class Plumber:
    """Plugs endpoints into ``bridge`` of one OVS, with netlink in the current namespace;
    ``announce`` (e.g. :class:`agent.garp.Announcer`) is told of every finished plug."""

    def __init__(self, ovs: Ovsdb, links: HostSide | None = None, bridge: str = BRIDGE,
                 announce: Announce | None = None) -> None:
        self.ovs = ovs
        self.links = links or HostSide()
        self.bridge = bridge
        self.announce = announce

    def actual(self) -> list[Actual]:
        return self.ovs.actual(self.bridge, self.links.link_exists)

    def leftover_links(self) -> frozenset[str]:
        return frozenset(n for n in self.links.links() if PORT_RE.match(n))

    def ifname_of(self, port_name: str) -> str:
        return self.ovs.interface_external_ids(port_name).get("np-ifname", "")

    def plug(self, want: Desired, preferred_ifname: str | None = None) -> Plugged:
        """Plug ``want``; on any failure remove what this call made and raise."""
        self.links.delete_link(want.port_name)  # leftover of a crashed plug
        with ContainerSide(want) as ctr:
            user = ctr.ip_user(want.ip)
            if user is not None:
                raise PlumbingError(f"endpoint {want.endpoint_id}: IP {want.ip} already in use "
                                    f"in netns {want.netns} (interface {user})")
            ifname = ctr.free_ifname(preferred_ifname)
            self.links.create_veth(want, ifname)
            try:
                ctr.configure(ifname)
                ofport = self.ovs.ensure_port(self.bridge, want.port_name,
                                              external_ids=external_ids(want, ifname))
            except Exception as e:
                self._undo(want.port_name)
                if isinstance(e, (PlumbingError, OvsdbError)):
                    raise
                raise PlumbingError(f"endpoint {want.endpoint_id}: plug failed: {e}") from e
        LOG.info("plugged %s: port %s ofport %d, %s in %s", want.endpoint_id, want.port_name,
                 ofport, ifname, want.netns)
        if self.announce is not None:
            self.announce(want.netns, ifname, want.mac, want.ip)
        return Plugged(want.endpoint_id, want.port_name, ofport, ifname, want.mac, want.netns)

    def _undo(self, port_name: str) -> None:
        with contextlib.suppress(OvsdbError):
            self.ovs.delete_port(port_name)
        self.links.delete_link(port_name)

    def unplug(self, port_name: str) -> None:
        """Remove the OVS port and the veth (both ends); idempotent."""
        self.ovs.delete_port(port_name)
        self.links.delete_link(port_name)
        LOG.info("unplugged port %s", port_name)
