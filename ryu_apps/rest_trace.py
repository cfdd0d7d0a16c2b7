"""``GET /api/v1/trace``: a packet walked through the controller's desired tables (a mixin of
:class:`ryu_apps.rest.RestApi`; ``netdcli -trace`` calls it).

The tables are the ones the controller computed for each host (what it keeps the switches
equal to), so the trace shows what the switches really do with the packet, and why.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from intent.errors import NotFoundError
from ofctl.model import OFPP_CONTROLLER
from ofctl.sim import AmbiguousMatch, SimError
from ofctl.simnet import NetworkSim
from ofctl.topology import HostPorts
from ofctl.trace import report, start_packet
from ryu_apps.rest_input import HttpError


class TraceRoutes:
    """Handler; needs the RestApi's ``controller``."""

    controller: Any

    def trace(self, call) -> dict:
        q = call.query
        ctl = self.controller
        if ctl is None:
            raise NotFoundError("trace: this REST API runs without a controller: no tables "
                                "to trace")
        engine = ctl.engine
        if q.get("host") is not None and q["host"] not in engine.hosts:
            raise NotFoundError(f'host: "{q["host"]}" is not a host of the intent')
        start = start_packet(engine.endpoints, engine.networks, engine.port, q["from"], q["to"],
                             q["proto"], q.get("dport"), q.get("sport"), q.get("host"))
        ports = host_ports(engine, ctl.cache.hosts)
        if start.host not in ports:
            raise NotFoundError(f'host: "{start.host}" is not registered (no switch yet)')
        states = {h: ctl.desired(h) for h in ports}
        sim = NetworkSim(states, ports, engine.hosts)
        try:
            net = sim.send(start.host, start.packet)
        except (SimError, AmbiguousMatch) as exc:
            raise HttpError(500, [f"trace: the simulator cannot follow the tables: {exc}"]) \
                from None
        names = _port_names(ports)
        rep = report(net, ctl.describe, names).as_json()
        delivered = [v["text"] for v in rep["verdicts"] if v["result"] == "delivered"]
        return {"from": start.source.id, "to": q["to"], "destination": start.destination,
                "host": start.host, "revision": ctl.cache.revision, **rep,
                "summary": "; ".join(delivered) if delivered else
                "; ".join(v["text"] for v in rep["verdicts"]) or "dropped"}


def host_ports(engine: Any, registered: Iterable[str]) -> dict[str, HostPorts]:
    """The port numbering of every ``registered`` host's br-int, endpoints included."""
    plugged: dict[str, list[tuple[str, int]]] = {}
    for e in engine.endpoints.values():
        port = engine.port(e.host, e.id) if e.host else None
        if port is not None:
            plugged.setdefault(e.host, []).append((e.id, port))
    out = {}
    for h in sorted(registered):
        hp = engine.ports(h)
        out[h] = HostPorts(h, tuple(sorted(plugged.get(h, []))), hp.vxlan_port, hp.uplink_port)
    return out


def _port_names(ports: dict[str, HostPorts]):
    by_port = {(h, p): f"endpoint {e}" for h, hp in ports.items() for e, p in hp.endpoint_ports}

    def name(host: str, port: int) -> str:
        hp = ports.get(host)
        if port == OFPP_CONTROLLER:
            return "controller"
        if hp is not None and port == hp.vxlan_port:
            return "vxlan"
        if hp is not None and port == hp.uplink_port:
            return "uplink"
        return by_port.get((host, port), f"port {port}")

    return name
