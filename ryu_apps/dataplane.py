"""The pure pipeline the controller drives, behind one small interface (``ofctl`` by default).

Unit tests substitute their own; production uses :class:`OfctlDataplane`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from intent.model import ResolvedIntent
from ryu_apps.intent_cache import Ports


class Dataplane(Protocol):
    def compute(self, intent: ResolvedIntent, host: str, ports: Ports) -> Any: ...

    def diff(self, installed: Any, desired: Any) -> list[Any]: ...

    def encode(self, changes: Sequence[Any]) -> list[Any]: ...

    def decode(self, flows: list, groups: list, meters: list) -> Any: ...

    def describe(self, cookie: int, intent: ResolvedIntent | None = None) -> str: ...


class OfctlDataplane:
    """``ofctl.compute`` / ``diff`` / ``encode`` / ``decode`` / ``cookies``."""

    def __init__(self) -> None:
        from ofctl import compute, cookies, decode, diff, encode, topology
        from ryu_apps.framework import ofproto_v1_3, ofproto_v1_3_parser

        self._compute = compute.compute_host
        self._diff = diff.diff
        self._encode = encode.encode_changes
        self._decode = decode.switch_state_from_stats
        self._describe = cookies.describe
        self._host_ports = topology.HostPorts
        self._parser = ofproto_v1_3_parser
        self._ofproto = ofproto_v1_3

    def compute(self, intent: ResolvedIntent, host: str, ports: Ports) -> Any:
        hp = self._host_ports(host=host, endpoint_ports=ports.endpoint_ports,
                              vxlan_port=ports.vxlan_port, uplink_port=ports.uplink_port)
        return self._compute(intent, hp)

    def diff(self, installed: Any, desired: Any) -> list[Any]:
        return self._diff(installed, desired)

    def encode(self, changes: Sequence[Any]) -> list[Any]:
        return self._encode(list(changes), self._parser, self._ofproto)

    def decode(self, flows: list, groups: list, meters: list) -> Any:
        return self._decode(flows, groups, meters)

    def describe(self, cookie: int, intent: ResolvedIntent | None = None) -> str:
        return self._describe(cookie, intent)
