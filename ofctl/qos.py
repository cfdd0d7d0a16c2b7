"""QoS fragment producer: the meter and DSCP entries of one endpoint on its host (pure).

An endpoint with a QoS profile (its own, else its endpoint group's, else its network's) sends
through table ``QOS``: its classify entries continue there instead of at the next stage, and
two entries (IPv4, ARP) pass the endpoint's meter (when the profile has a bandwidth) and, for
IPv4, rewrite the DSCP, then continue where classify would have gone.  A meter belongs to one
switch: its id is the endpoint's port number there, so it needs no allocation, and a changed
profile only modifies the meter (same id, same flows).
"""

from __future__ import annotations

from typing import Protocol

from intent.model import EndpointSpec, QosProfileConfig
from ofctl import cookies
from ofctl.model import (
    ETH_ARP,
    ETH_IPV4,
    ApplyActions,
    ApplyMeter,
    Flow,
    GotoTable,
    Meter,
    MeterBand,
    instructions,
    match,
    set_field,
)
from ofctl.pipeline import ARP, L3, QOS, SRC_GROUP

PRIO = 100
OFPM_MAX = 0xFFFF0000


class QosWorld(Protocol):
    networks: dict

    def port(self, host: str, endpoint_id: str) -> int | None: ...
    def policy_network(self, network: str) -> bool: ...
    def qos_of(self, ep: EndpointSpec) -> QosProfileConfig | None: ...


def effective_profile(ep: EndpointSpec, network_profile: str | None, group_profile: str | None,
                      profiles: dict[tuple[str, str], QosProfileConfig],
                      tenant: str) -> QosProfileConfig | None:
    """The most specific profile of ``ep`` (endpoint, then group, then network)."""
    name = ep.qos_profile or group_profile or network_profile
    return profiles.get((tenant, name)) if name else None


def meter_id(port: int) -> int:
    """The meter of the endpoint on ``port`` (ids are per switch)."""
    if not 0 < port < OFPM_MAX:
        raise ValueError(f"port {port} has no meter id")
    return port


def profile_meter(mid: int, p: QosProfileConfig, cookie: int = 0) -> Meter:
    """The meter of profile ``p`` (kbit/s, a burst in kbit when the profile gives one).
    Without one OVS uses, and reports back, a burst of one second's rate: so do we."""
    band = MeterBand(rate=p.bandwidth or 0, burst=p.burst or p.bandwidth or 0)
    return Meter(mid, (band,), ("kbps", "burst") if p.burst else ("kbps",), cookie)


def qos_fragment(w: QosWorld, ep: EndpointSpec, host: str):
    """The QoS entries endpoint ``ep`` owns on ``host`` (only where it is plugged)."""
    from ofctl.fragments import EMPTY, Fragment

    if ep.host != host:
        return EMPTY
    port = w.port(host, ep.id)
    profile = w.qos_of(ep)
    if port is None or profile is None or ep.network not in w.networks:
        return EMPTY
    c = cookies.cookie_for(cookies.QOS, ep.id)
    meter = (ApplyMeter(meter_id(port)),) if profile.bandwidth else ()
    dscp = (ApplyActions((set_field("ip_dscp", profile.dscp),)),) \
        if profile.dscp is not None else ()
    ip_next = SRC_GROUP if w.policy_network(ep.network) else L3
    flows = (Flow(QOS, PRIO, match(in_port=port, eth_type=ETH_IPV4),
                  instructions(*meter, *dscp, GotoTable(ip_next)), c),
             Flow(QOS, PRIO, match(in_port=port, eth_type=ETH_ARP),
                  instructions(*meter, GotoTable(ARP)), c))
    meters = (profile_meter(meter_id(port), profile, c),) if profile.bandwidth else ()
    return Fragment(flows, (), meters)
