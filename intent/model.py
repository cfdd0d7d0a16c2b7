"""The intent model: what users ask for, and the resolved view the data plane is computed from.

Two layers, both plain frozen dataclasses (hashable, comparable, no I/O):

* **Config** objects mirror the seed JSON schema (``Hosts``, ``Tenants``, ``Networks``,
  ``Endpoints``).  Values the user did not give are ``None`` (a partial document leaves them
  unset until it is merged with the stored objects); :func:`with_defaults` fills the defaults
  (``DefaultNetType`` vlan, a network's type from its tenant, empty ranges).
* **Resolved** objects (``NetworkSpec``, ``EndpointSpec``, ``HostSpec``) are what the allocator
  produces from a config: every network has its VLAN id or VNI, subnet and gateway; every endpoint
  its IP and MAC.  ``ofctl`` computes flow tables from these alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

VLAN = "vlan"
VXLAN = "vxlan"
NET_TYPES = (VLAN, VXLAN)
BUILTIN, CNI = "builtin", "cni"  # IPAM backends of a network


# --------------------------------------------------------------------------- config layer


@dataclass(frozen=True)
class HostConfig:
    """A host as the config file names it (``Hosts[]``)."""

    name: str
    intf: str | None = None  # uplink interface for VLAN hand-off
    vtep_ip: str | None = None  # underlay address for VXLAN
    net_id: str | None = None


@dataclass(frozen=True)
class EndpointConfig:
    """An endpoint: one container's attachment to one network."""

    network: str
    container: str
    host: str | None = None
    attach_uuid: str | None = None  # container whose netns is used (pod infra container)
    ip_address: str | None = None  # static IP; allocated when None
    endpoint_group: str | None = None  # None: not given; "": explicitly in no group
    qos_profile: str | None = None  # None: not given; "": explicitly none
    reserved: bool | None = None  # True: its static IpAddress may lie in the Reserved ranges

    @property
    def id(self) -> str:
        """Endpoint id, ``<network>-<container>`` as in the original."""
        return endpoint_id(self.network, self.container)


@dataclass(frozen=True)
class NetworkConfig:
    """A network of a tenant."""

    name: str
    tenant: str
    pkt_tag_type: str | None = None  # "vlan" | "vxlan"; None: the tenant's default
    pkt_tag: int | None = None
    subnet_cidr: str | None = None
    default_gw: str | None = None
    endpoints: tuple[EndpointConfig, ...] = ()
    qos_profile: str | None = None  # None: not given; "": explicitly none
    multicast: MulticastConfig | None = None  # None: not given
    ipam: IpamConfig | None = None  # None: not given (the built-in allocator)
    reserved: str | None = None  # "a.b.c.d-a.b.c.e,a.b.c.f": never handed out; "": none


@dataclass(frozen=True)
class IpamConfig:
    """A network's IPAM backend: ``builtin`` (the allocator) or ``cni`` (a CNI IPAM plugin
    binary called on the endpoint's host at plug time).  ``config`` is the canonical JSON of
    the plugin's ``ipam`` object (without ``type``); ``hosts`` the canonical JSON of per-host
    objects merged over it (``{"host1": {"dataDir": …}}``)."""

    type: str = BUILTIN
    plugin: str | None = None
    config: str = "{}"
    hosts: str = "{}"

    @property
    def delegated(self) -> bool:
        """Whether addresses come from a plugin at plug time (not from the write path)."""
        return self.type == CNI


IN, OUT = "in", "out"
ALLOW, DENY = "allow", "deny"
PEER_GROUP, PEER_NETWORK, PEER_IP = "group", "network", "ip"


@dataclass(frozen=True)
class RuleConfig:
    """One rule of a policy.  ``peer_kind`` is group | network | ip (or None: any peer);
    for ``in`` rules the peer is the source, for ``out`` rules the destination."""

    id: int
    priority: int
    direction: str  # in | out
    action: str  # allow | deny
    peer_kind: str | None = None
    peer: str | None = None
    protocol: str | None = None  # tcp | udp | icmp | an IP protocol number; None: any
    port_lo: int | None = None
    port_hi: int | None = None


@dataclass(frozen=True)
class PolicyConfig:
    """A named set of rules of a tenant."""

    name: str
    tenant: str
    rules: tuple[RuleConfig, ...] | None = None  # None: not given (partial documents)


@dataclass(frozen=True)
class EndpointGroupConfig:
    """An endpoint group of a tenant and the policies applied to its members."""

    name: str
    tenant: str
    policies: tuple[str, ...] | None = None  # None: not given
    qos_profile: str | None = None  # None: not given; "": explicitly none


# ---- QoS and multicast (issue 13)


@dataclass(frozen=True)
class QosProfileConfig:
    """A tenant's QoS profile: rate limit (kbit/s, burst kbit) and DSCP of what members send."""

    name: str
    tenant: str
    bandwidth: int | None = None  # kbit/s
    burst: int | None = None  # kbit
    dscp: int | None = None  # 0-63


@dataclass(frozen=True)
class McastGroupConfig:
    """A multicast group of a network and its declared receivers (container names)."""

    address: str
    receivers: tuple[str, ...] = ()


@dataclass(frozen=True)
class MulticastConfig:
    """A network's multicast: snooping on (replicate to receivers only) or off (flood)."""

    snooping: bool = False
    groups: tuple[McastGroupConfig, ...] = ()


@dataclass(frozen=True, order=True)
class Membership:
    """A receiver learned by IGMP snooping: endpoint ``endpoint`` joined ``address``."""

    network: str
    address: str
    endpoint: str


# ---- end QoS and multicast


@dataclass(frozen=True)
class RouterConfig:
    """A distributed router of a tenant: its networks route to each other on the sending host.
    With ``external_network`` (a VLAN network whose ``DefaultGw`` is a physical router) other
    destinations go to that gateway from ``gateway_host``, where ``external_ip`` is the router's
    own address on the external network."""

    name: str
    tenant: str
    networks: tuple[str, ...] | None = None
    external_network: str | None = None
    external_ip: str | None = None
    gateway_host: str | None = None


@dataclass(frozen=True)
class TenantConfig:
    """A tenant with its pools."""

    name: str
    default_net_type: str | None = None  # None: vlan
    subnet_pool: str | None = None
    alloc_subnet_len: int | None = None
    vlans: tuple[tuple[int, int], ...] | None = None  # inclusive ranges; None: not given
    vxlans: tuple[tuple[int, int], ...] | None = None  # inclusive ranges; None: not given
    networks: tuple[NetworkConfig, ...] = ()
    endpoint_groups: tuple[EndpointGroupConfig, ...] = ()
    policies: tuple[PolicyConfig, ...] = ()
    qos_profiles: tuple[QosProfileConfig, ...] = ()
    routers: tuple[RouterConfig, ...] = ()


@dataclass(frozen=True)
class Config:
    """A whole intent document."""

    hosts: tuple[HostConfig, ...] = ()
    tenants: tuple[TenantConfig, ...] = ()

    def networks(self) -> list[NetworkConfig]:
        """All networks of all tenants."""
        return [n for t in self.tenants for n in t.networks]

    def endpoints(self) -> list[EndpointConfig]:
        """All endpoints of all networks."""
        return [e for n in self.networks() for e in n.endpoints]

    def groups(self) -> list[EndpointGroupConfig]:
        return [g for t in self.tenants for g in t.endpoint_groups]

    def policies(self) -> list[PolicyConfig]:
        return [p for t in self.tenants for p in t.policies]

    def qos_profiles(self) -> list[QosProfileConfig]:
        return [p for t in self.tenants for p in t.qos_profiles]
    def routers(self) -> list[RouterConfig]:
        return [r for t in self.tenants for r in t.routers]


def tenant_with_defaults(t: TenantConfig) -> TenantConfig:
    """``t`` with its unset fields defaulted (its networks are left as they are)."""
    return replace(t, default_net_type=t.default_net_type or VLAN, vlans=t.vlans or (),
                   vxlans=t.vxlans or ())


def network_with_defaults(n: NetworkConfig, tenant: TenantConfig) -> NetworkConfig:
    """``n`` with its type taken from ``tenant`` when unset."""
    if n.pkt_tag_type:
        return n
    return replace(n, pkt_tag_type=tenant.default_net_type or VLAN)


def with_defaults(config: Config) -> Config:
    """A whole document with every unset default filled (the document is complete)."""
    tenants = []
    for t in config.tenants:
        t = tenant_with_defaults(t)
        tenants.append(replace(t, networks=tuple(network_with_defaults(n, t)
                                                 for n in t.networks)))
    return Config(hosts=config.hosts, tenants=tuple(tenants))


def endpoint_id(network: str, container: str) -> str:
    """The endpoint id the original used: ``<network>-<container>``."""
    return f"{network}-{container}"


# --------------------------------------------------------------------------- resolved layer


@dataclass(frozen=True)
class NetworkSpec:
    """A network with everything allocated: the input of ``ofctl``."""

    name: str
    tenant: str
    net_type: str  # "vlan" | "vxlan"
    tag: int  # VLAN id or VNI
    subnet: str  # CIDR, e.g. "10.1.0.0/24"
    gateway: str | None = None
    zone: int = 0  # conntrack zone (allocated; 0: none yet)
    qos_profile: str | None = None
    multicast: MulticastConfig | None = None
    ipam: IpamConfig | None = None  # a delegating backend (None: the built-in allocator)


@dataclass(frozen=True)
class EndpointSpec:
    """An endpoint with its address: the input of ``ofctl`` and of the agent."""

    id: str
    network: str
    container: str
    host: str | None  # None until bound
    ip: str  # "": not known yet (its network's IPAM plugin gives it at plug time)
    mac: str
    attach_uuid: str | None = None
    group: str | None = None  # endpoint group (of the network's tenant)
    qos_profile: str | None = None

    @property
    def netns_owner(self) -> str:
        """The container whose network namespace this endpoint lives in."""
        return self.attach_uuid or self.container


@dataclass(frozen=True)
class EndpointGroupSpec:
    """An endpoint group with its allocated id (what member entries load into a register)."""

    tenant: str
    name: str
    id: int
    policies: tuple[str, ...] = ()
    qos_profile: str | None = None


@dataclass(frozen=True)
class RouterSpec:
    """A router with its allocated id (the routing domain of its networks)."""

    tenant: str
    name: str
    id: int
    networks: tuple[str, ...] = ()
    external_network: str | None = None
    external_ip: str | None = None
    gateway_host: str | None = None


@dataclass(frozen=True)
class HostSpec:
    """A host as the agent registered it (oper state), merged with its config."""

    name: str
    vtep_ip: str | None = None
    uplink: str | None = None  # uplink interface name on br-int (VLAN hand-off)
    dpid: int | None = None


@dataclass(frozen=True)
class ResolvedIntent:
    """Everything the data plane needs, independent of any switch's port numbering."""

    networks: tuple[NetworkSpec, ...] = ()
    endpoints: tuple[EndpointSpec, ...] = ()
    hosts: tuple[HostSpec, ...] = ()
    revision: int = 0
    tenants: tuple[str, ...] = field(default=())
    groups: tuple[EndpointGroupSpec, ...] = ()
    policies: tuple[PolicyConfig, ...] = ()
    qos_profiles: tuple[QosProfileConfig, ...] = ()
    learned: tuple[Membership, ...] = ()
    routers: tuple[RouterSpec, ...] = ()
