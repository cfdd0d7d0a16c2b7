"""The etcd key layout, in one place.  Every module builds keys through these helpers.

::

    /netplugin/config/rev                         bumped by every intent write (watch anchor)
    /netplugin/config/txn                         present while a large write is under way (see
                                                  ``intent.consistent``): readers read intent at
                                                  its create revision - 1
    /netplugin/config/hosts/<host>                HostConfig (from the config file)
    /netplugin/config/tenants/<tenant>            TenantConfig without networks
    /netplugin/config/networks/<network>          NetworkConfig without endpoints
    /netplugin/config/endpoints/<endpoint-id>     EndpointConfig
    /netplugin/config/groups/<tenant>/<group>     EndpointGroupConfig
    /netplugin/config/policies/<tenant>/<policy>  PolicyConfig (with its rules)
    /netplugin/config/routers/<tenant>/<router>   RouterConfig
    /netplugin/alloc/vlan/<vlan-id>               owner network (VLAN ids are global: one wire)
    /netplugin/alloc/vni/<vni>                    owner network
    /netplugin/alloc/subnet/<tenant>/<cidr>       owner network   ('/' in the CIDR is '_')
    /netplugin/alloc/ip/<network>/<ip>            owner endpoint id
    /netplugin/alloc/delegated/<network>/<ep-id>  an endpoint waiting for its address from the
                                                  network's IPAM plugin (no alloc/ip key yet)
    /netplugin/alloc/pool/<network>               IP pool index: lowest maybe-free address, count
    /netplugin/alloc/tenant/<tenant>              tenant index: its networks' tags and subnets
    /netplugin/alloc/ranges                       every tenant's Vlans/Vxlans ranges (disjoint)
    /netplugin/alloc/groupid/<id>                 owner endpoint group ("<tenant>/<group>")
    /netplugin/alloc/zone/<zone>                  owner network (conntrack zone)
    /netplugin/alloc/next/<pool>                  lowest maybe-free id of a global pool
    /netplugin/alloc/members/<tenant>/<group>     how many endpoints the group has
    /netplugin/config/qosprofiles/<tenant>/<name> QosProfileConfig
    /netplugin/alloc/qosusers/<tenant>/<name>     how many endpoints, networks and groups use it
    /netplugin/oper/mcast/<network>/<group>/<ep>  a membership learned by IGMP (under a lease)
    /netplugin/state/networks/<network>           NetworkSpec (resolved: tag, subnet, gateway)
    /netplugin/state/endpoints/<endpoint-id>      EndpointSpec (resolved: ip, mac, host)
    /netplugin/state/groups/<tenant>/<group>      EndpointGroupSpec (resolved: id)
    /netplugin/state/routers/<tenant>/<router>    RouterSpec (resolved: id = routing domain)
    /netplugin/oper/hosts/<host>                  agent registration (under a lease)
    /netplugin/oper/endpoints/<endpoint-id>       plugged port: host, ofport, port name
    /netplugin/oper/ipam/<host>/<network>/<handle>  an address a host obtained from an IPAM
                                                  plugin (what its DEL needs)
    /netplugin/oper/realized/<host>               intent revision the host's switch realized
                                                  (see intent.realized)
    /netplugin/oper/applied/<process>             revision a controller process has applied
    /netplugin/oper/gateways/<tenant>/<router>    MAC of an external router's physical gateway
                                                  (learnt by the controller's ARP)
    /netplugin/oper/controllers/<name>            a live controller (under its lease)
    /netplugin/oper/masters/<host>                the controller that is master of the host's
                                                  switch (under that controller's lease); its
                                                  mod revision is the OpenFlow generation id
    /netplugin/runtime/<host>/<container>         running container -> netns path
    /netplugin/locks/<write-id>                   a large writer is alive (under its lease)
    /netplugin/writes/<slot>                      id of a recent write (a retry recognises it)

Values are JSON objects.
"""

from __future__ import annotations

ROOT = "/netplugin/"
CONFIG = ROOT + "config/"
CONFIG_REV = CONFIG + "rev"
CONFIG_HOSTS = CONFIG + "hosts/"
CONFIG_TENANTS = CONFIG + "tenants/"
CONFIG_NETWORKS = CONFIG + "networks/"
CONFIG_ENDPOINTS = CONFIG + "endpoints/"
CONFIG_TXN = CONFIG + "txn"
CONFIG_GROUPS = CONFIG + "groups/"
CONFIG_POLICIES = CONFIG + "policies/"
CONFIG_QOS = CONFIG + "qosprofiles/"
CONFIG_ROUTERS = CONFIG + "routers/"
ALLOC = ROOT + "alloc/"
ALLOC_VLAN = ALLOC + "vlan/"
ALLOC_VNI = ALLOC + "vni/"
ALLOC_SUBNET = ALLOC + "subnet/"
ALLOC_IP = ALLOC + "ip/"
ALLOC_POOL = ALLOC + "pool/"
ALLOC_DELEGATED = ALLOC + "delegated/"
ALLOC_TENANT = ALLOC + "tenant/"
ALLOC_RANGES = ALLOC + "ranges"
ALLOC_GROUPID = ALLOC + "groupid/"
ALLOC_ZONE = ALLOC + "zone/"
ALLOC_NEXT = ALLOC + "next/"
ALLOC_MEMBERS = ALLOC + "members/"
ALLOC_QOS_USERS = ALLOC + "qosusers/"
STATE = ROOT + "state/"
STATE_NETWORKS = STATE + "networks/"
STATE_ENDPOINTS = STATE + "endpoints/"
STATE_GROUPS = STATE + "groups/"
STATE_ROUTERS = STATE + "routers/"
OPER = ROOT + "oper/"
OPER_HOSTS = OPER + "hosts/"
OPER_ENDPOINTS = OPER + "endpoints/"
OPER_REALIZED = OPER + "realized/"
OPER_APPLIED = OPER + "applied/"
OPER_MCAST = OPER + "mcast/"
OPER_GATEWAYS = OPER + "gateways/"
OPER_CONTROLLERS = OPER + "controllers/"
OPER_MASTERS = OPER + "masters/"
OPER_IPAM = OPER + "ipam/"
RUNTIME = ROOT + "runtime/"
LOCKS = ROOT + "locks/"
WRITES = ROOT + "writes/"
WRITE_SLOTS = 1024
# what a write changes (and what readers see all-or-nothing); everything else is operational
INTENT_PREFIXES = (CONFIG, ALLOC, STATE)


def host_config(name: str) -> str:
    return CONFIG_HOSTS + name


def tenant(name: str) -> str:
    return CONFIG_TENANTS + name


def network(name: str) -> str:
    return CONFIG_NETWORKS + name


def endpoint(ep_id: str) -> str:
    return CONFIG_ENDPOINTS + ep_id


def alloc_vlan(vlan: int) -> str:
    return f"{ALLOC_VLAN}{vlan}"


def alloc_vni(vni: int) -> str:
    return f"{ALLOC_VNI}{vni}"


def alloc_subnet(tenant_name: str, cidr: str) -> str:
    return f"{ALLOC_SUBNET}{tenant_name}/{cidr.replace('/', '_')}"


def alloc_ip_prefix(network_name: str) -> str:
    return f"{ALLOC_IP}{network_name}/"


def alloc_ip(network_name: str, ip: str) -> str:
    return alloc_ip_prefix(network_name) + ip


def alloc_delegated_prefix(network_name: str) -> str:
    return f"{ALLOC_DELEGATED}{network_name}/"


def alloc_delegated(network_name: str, ep_id: str) -> str:
    return alloc_delegated_prefix(network_name) + ep_id


def oper_ipam_prefix(host: str) -> str:
    return f"{OPER_IPAM}{host}/"


def oper_ipam(host: str, network_name: str, handle: str) -> str:
    return f"{OPER_IPAM}{host}/{network_name}/{handle}"


def group(tenant_name: str, name: str) -> str:
    return f"{CONFIG_GROUPS}{tenant_name}/{name}"


def policy(tenant_name: str, name: str) -> str:
    return f"{CONFIG_POLICIES}{tenant_name}/{name}"


def qos_profile(tenant_name: str, name: str) -> str:
    return f"{CONFIG_QOS}{tenant_name}/{name}"


def qos_users(tenant_name: str, name: str) -> str:
    return f"{ALLOC_QOS_USERS}{tenant_name}/{name}"


def mcast_member(network_name: str, address: str, ep_id: str) -> str:
    return f"{OPER_MCAST}{network_name}/{address}/{ep_id}"


def mcast_member_parts(key: str) -> tuple[str, str, str]:
    """(network, address, endpoint id) of a learned-membership key."""
    network_name, address, ep_id = key[len(OPER_MCAST):].split("/", 2)
    return network_name, address, ep_id
def router(tenant_name: str, name: str) -> str:
    return f"{CONFIG_ROUTERS}{tenant_name}/{name}"


def state_router(tenant_name: str, name: str) -> str:
    return f"{STATE_ROUTERS}{tenant_name}/{name}"


def alloc_router_id(rid: int) -> str:
    return f"{ALLOC}routerid/{rid}"


def state_group(tenant_name: str, name: str) -> str:
    return f"{STATE_GROUPS}{tenant_name}/{name}"


def alloc_group_id(gid: int) -> str:
    return f"{ALLOC_GROUPID}{gid}"


def alloc_zone(zone: int) -> str:
    return f"{ALLOC_ZONE}{zone}"


def pool_hint(pool: str) -> str:
    return ALLOC_NEXT + pool


def members(tenant_name: str, group_name: str) -> str:
    return f"{ALLOC_MEMBERS}{tenant_name}/{group_name}"


def tenant_and_name(key: str, prefix: str) -> tuple[str, str]:
    """(tenant, name) of a ``<prefix><tenant>/<name>`` key."""
    tenant_name, _, name = key[len(prefix):].partition("/")
    return tenant_name, name


def ip_pool(network_name: str) -> str:
    return ALLOC_POOL + network_name


def tenant_index(tenant_name: str) -> str:
    return ALLOC_TENANT + tenant_name


def lock(write_id: str) -> str:
    return LOCKS + write_id


def write_record(write_id: str) -> str:
    """The ring slot that records ``write_id`` (a retry finds its own success there)."""
    return f"{WRITES}{int(write_id[:8], 16) % WRITE_SLOTS}"


def state_network(name: str) -> str:
    return STATE_NETWORKS + name


def state_endpoint(ep_id: str) -> str:
    return STATE_ENDPOINTS + ep_id


def oper_host(name: str) -> str:
    return OPER_HOSTS + name


def oper_gateway(tenant_name: str, router_name: str) -> str:
    return f"{OPER_GATEWAYS}{tenant_name}/{router_name}"


def oper_endpoint(ep_id: str) -> str:
    return OPER_ENDPOINTS + ep_id


def realized(host: str) -> str:
    return OPER_REALIZED + host


def applied(process: str) -> str:
    return OPER_APPLIED + process


def controller(name: str) -> str:
    return OPER_CONTROLLERS + name


def master(host: str) -> str:
    return OPER_MASTERS + host


def runtime_prefix(host: str) -> str:
    return f"{RUNTIME}{host}/"


def runtime_container(host: str, container: str) -> str:
    return runtime_prefix(host) + container


def last_segment(key: str) -> str:
    """The object name at the end of a key."""
    return key.rsplit("/", 1)[-1]
