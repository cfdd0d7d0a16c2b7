"""What ofctl needs to know about one switch's port numbering."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class HostPorts:
    """The OpenFlow port numbers of one host's br-int.

    ``endpoint_ports`` pairs endpoint ids with the ofport of their plugged interface.
    """

    host: str
    endpoint_ports: tuple[tuple[str, int], ...] = ()
    vxlan_port: int | None = None
    uplink_port: int | None = None

    def port_map(self) -> dict[str, int]:
        """Endpoint id -> ofport."""
        return dict(self.endpoint_ports)

    def with_endpoint(self, endpoint_id: str, ofport: int | None) -> HostPorts:
        """A copy with one endpoint plugged (``ofport``) or unplugged (``None``)."""
        rest = tuple(p for p in self.endpoint_ports if p[0] != endpoint_id)
        if ofport is not None:
            rest = tuple(sorted(rest + ((endpoint_id, ofport),)))
        return HostPorts(self.host, rest, self.vxlan_port, self.uplink_port)
