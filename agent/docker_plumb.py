"""The Docker driver's ports: a veth pair in the host namespace (the container end for Docker to
move into the sandbox) and an OVS port on br-int, with the agent's OVSDB and netlink edges.

Ports carry ``external_ids:np-driver=docker``: the host's agent leaves them alone (it neither
unplugs them nor plugs their endpoints), and this driver never touches the agent's.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from agent.docker_driver import DRIVER_MARK, DockerPort, PortRequest
from agent.netlink import HostSide, PlumbingError
from agent.ovsdb import Ovsdb, OvsdbError, OvsdbUnreachable
from agent.plumb import BRIDGE

LOG = logging.getLogger(__name__)
LINK_RE = re.compile(r"^d[kc][0-9a-f]{12}$")


def external_ids(req: PortRequest) -> dict[str, str]:
    return {"endpoint-id": req.endpoint_id, "attached-mac": req.mac.lower(), "np-ip": req.ip,
            "np-driver": DRIVER_MARK, "np-docker-endpoint": req.docker_endpoint,
            "np-docker-container": req.container}


class OvsPlumbing:
    """Plumbing on the OVS at ``ovsdb`` (reconnected when it went away)."""

    def __init__(self, ovsdb: str, bridge: str = BRIDGE, timeout: float = 5.0) -> None:
        self.remote = ovsdb
        self.bridge = bridge
        self.timeout = timeout
        self.links = HostSide()
        self._ovs: Ovsdb | None = None
        self._lock = threading.Lock()

    def _db(self) -> Ovsdb:
        if self._ovs is None:
            self._ovs = Ovsdb(self.remote, timeout=self.timeout)
        return self._ovs

    @contextmanager
    def _session(self) -> Iterator[Ovsdb]:
        """The OVSDB connection; dropped (and made again next time) when it went away."""
        try:
            yield self._db()
        except OvsdbUnreachable:
            if self._ovs is not None:
                self._ovs.close()
            self._ovs = None
            raise

    def close(self) -> None:
        if self._ovs is not None:
            self._ovs.close()
        self.links.close()

    def plug(self, req: PortRequest) -> int:
        """veth ``port_name``/``peer_name`` + OVS port; all or nothing.  Returns the ofport."""
        with self._lock, self._session() as db:
            self.links.delete_link(req.port_name)  # leftover of an earlier try
            self.links.delete_link(req.peer_name)
            self.links.create_veth_pair(req.port_name, req.peer_name, req.mtu, req.mac)
            try:
                return db.ensure_port(self.bridge, req.port_name,
                                      external_ids=external_ids(req))
            except BaseException:
                with contextlib.suppress(OvsdbError):
                    db.delete_port(req.port_name)
                self.links.delete_link(req.port_name)
                raise

    def unplug(self, port_name: str) -> None:
        """Remove the OVS port and the veth (both ends, wherever the container end is)."""
        with self._lock, self._session() as db:
            db.delete_port(port_name)
            self.links.delete_link(port_name)

    def relabel(self, req: PortRequest) -> None:
        """New endpoint id / container name on an existing port."""
        with self._lock, self._session() as db:
            db.ensure_port(self.bridge, req.port_name, external_ids=external_ids(req))

    def docker_ports(self) -> list[DockerPort]:
        with self._lock, self._session() as db:
            out = []
            for name, ids, ofport, error in db.endpoint_ports(self.bridge):
                if ids.get("np-driver") != DRIVER_MARK:
                    continue
                out.append(DockerPort(name, ids.get("endpoint-id", ""),
                                      ids.get("np-docker-endpoint", ""), ofport,
                                      ofport > 0 and not error and self.links.link_exists(name)))
            return out

    def leftover_links(self) -> set[str]:
        """Host-side ``dk…``/``dc…`` links with no OVS port (a crashed plug)."""
        with self._lock, self._session() as db:
            ports = {p for p, _ids, _o, _e in db.endpoint_ports(self.bridge)}
            return {n for n in self.links.links() if LINK_RE.match(n) and n not in ports and
                    not (n.startswith("dc") and "dk" + n[2:] in ports)}

    def delete_link(self, name: str) -> None:
        with self._lock:
            try:
                self.links.delete_link(name)
            except OSError as e:
                raise PlumbingError(f"cannot delete {name}: {e}") from e
