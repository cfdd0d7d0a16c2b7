"""A small world with QoS profiles and snooping networks (VXLAN and VLAN), for the wire,
simulator and engine tests."""

from __future__ import annotations

from dataclasses import replace

from intent.model import (
    HostSpec,
    McastGroupConfig,
    Membership,
    MulticastConfig,
    QosProfileConfig,
    ResolvedIntent,
)
from ofctl.model import SwitchState
from ofctl.topology import HostPorts
from tests.unit.ofctl_fixtures import ep, net, states_for

GROUP = "239.1.1.1"


def qos_mcast_intent(receivers: dict[str, tuple[str, ...]] | None = None,
                     learned: tuple[Membership, ...] = ()) -> ResolvedIntent:
    """Three hosts; orange (VXLAN) and blue (VLAN) with snooping, endpoints c0..c5 (c<i> on
    host i % 3), receivers of 239.1.1.1 per network (declared) and ``learned`` ones."""
    receivers = receivers if receivers is not None else {"orange": ("c1", "c2"),
                                                         "blue": ("c4",)}
    nets = []
    for i, (name, kind, tag, subnet) in enumerate((("orange", "vxlan", 7001, "10.5.1.0/24"),
                                                    ("blue", "vlan", 51, "10.5.2.0/24"))):
        mc = MulticastConfig(True, (McastGroupConfig(GROUP, receivers.get(name, ())),))
        nets.append(replace(net(name, "t", kind, tag, subnet), zone=i + 1, multicast=mc,
                            qos_profile="bronze" if name == "blue" else None))
    eps = [replace(ep(n.name, f"c{i}", f"host{i % 3}", n.subnet.replace("0/24", str(10 + i))),
                   qos_profile="gold" if i == 0 else None)
           for n in nets for i in range(6)]
    hosts = tuple(HostSpec(f"host{i}", vtep_ip=f"192.168.9.{i + 1}", uplink="eth2")
                  for i in range(3))
    return ResolvedIntent(networks=tuple(nets), endpoints=tuple(eps), hosts=hosts,
                          qos_profiles=(QosProfileConfig("gold", "t", 10000, 1000, 46),
                                        QosProfileConfig("bronze", "t", 500, None, 10)),
                          learned=learned)


def qos_mcast_ports(intent: ResolvedIntent) -> dict[str, HostPorts]:
    out = {}
    for h in intent.hosts:
        local = sorted(e.id for e in intent.endpoints if e.host == h.name)
        out[h.name] = HostPorts(h.name, tuple((eid, 3 + i) for i, eid in enumerate(local)),
                                vxlan_port=1, uplink_port=2)
    return out


def qos_mcast_states() -> dict[str, SwitchState]:
    intent = qos_mcast_intent()
    return states_for(intent, qos_mcast_ports(intent))
