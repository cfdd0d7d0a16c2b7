"""Docker's remote network driver and IPAM driver (libnetwork plugin protocol) over netplugin.

Each protocol call is a method taking the request's JSON object and returning the response's;
every failure becomes ``{"Err": "…"}`` with a message naming the object.  State lives in the
store: the intent (through :mod:`agent.docker_intent`), the driver's records
(:mod:`agent.docker_state`) and the oper keys the controller programs flows from.  Ports go
through a :class:`Plumbing` (OVS + netlink in production, a fake in unit tests).

The flow Docker drives, per host:

* ``docker network create``: ``RequestPool`` (``--ipam-opt``: the netplugin network, created in
  its tenant when new), ``RequestAddress`` (the gateway), ``CreateNetwork`` (``-o``: checked
  against the network, recorded).
* ``docker run``: ``RequestAddress`` (an endpoint ``NET-docker-ipam-<token>`` takes the address),
  ``CreateEndpoint`` (renamed ``NET-docker-<endpoint id>``, the address made static; the MAC
  returned), ``Join`` (veth + OVS port, oper key; Docker moves the veth into the container), then
  Docker's API names the container and the endpoint becomes ``NET-<container>``.
* ``docker stop``: ``Leave`` (port removed), ``DeleteEndpoint``, ``ReleaseAddress`` (endpoint
  deleted: the address is free again).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from netaddr import AddrFormatError, IPAddress, IPNetwork

from agent import docker_intent as I
from agent import ipam as A
from agent.docker_state import AddressRecord, DockerState, EndpointRecord, NetworkRecord
from agent.netlink import PlumbingError
from agent.ovsdb import OvsdbError
from agent.plan import network_mtu
from intent import keys
from intent.errors import ConflictError, IntentError
from intent.model import NET_TYPES, NetworkConfig, NetworkSpec, endpoint_id
from intent.store import Store, StoreError

LOG = logging.getLogger(__name__)

PENDING = "docker-ipam-"  # container name of an address handed out, before CreateEndpoint
BY_DOCKER_ID = "docker-"  # container name of an endpoint keyed by Docker's endpoint id
OPT_TENANT, OPT_NETWORK = "netplugin.tenant", "netplugin.network"
OPT_TYPE, OPT_TAG = "netplugin.type", "netplugin.tag"
GENERIC = "com.docker.network.generic"
GATEWAY_REQUEST = "com.docker.network.gateway"
ADDRESS_SPACE = "netplugin"
DRIVER_MARK = "docker"
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")  # DESIGN.md: names of objects


class DriverError(Exception):
    """A request cannot be carried out; the message is what Docker shows the user."""


@dataclass(frozen=True)
class PortRequest:
    """One endpoint's OVS port and veth."""

    docker_endpoint: str
    endpoint_id: str
    port_name: str  # host end, on br-int
    peer_name: str  # container end, moved by Docker
    mac: str
    ip: str
    mtu: int
    container: str


@dataclass(frozen=True)
class DockerPort:
    """A port on br-int marked ``np-driver=docker``."""

    port_name: str
    endpoint_id: str
    docker_endpoint: str
    ofport: int
    healthy: bool


class Plumbing(Protocol):
    def plug(self, req: PortRequest) -> int: ...

    def unplug(self, port_name: str) -> None: ...

    def relabel(self, req: PortRequest) -> None: ...

    def docker_ports(self) -> list[DockerPort]: ...

    def leftover_links(self) -> set[str]: ...

    def delete_link(self, name: str) -> None: ...


def port_names(docker_endpoint: str) -> tuple[str, str]:
    """(host end, container end) of a Docker endpoint: ``dk…``/``dc…`` (not the agent's
    ``np…``, so the agent never takes them for its own leftovers)."""
    digest = hashlib.sha1(docker_endpoint.encode()).hexdigest()[:12]
    return f"dk{digest}", f"dc{digest}"


def short(docker_id: str) -> str:
    return docker_id[:12]


class Driver:
    """The protocol handlers of one host's driver."""

    def __init__(self, store: Store, host: str, plumbing: Plumbing,
                 ipam: A.Backend | None = None) -> None:
        self.store = store
        self.host = host
        self.plumbing = plumbing
        self.ipam = ipam or A.CniIpam()
        self.state = DockerState(store, host)
        self.lock = threading.RLock()
        self.routes: dict[str, Callable[[dict], dict]] = {
            "/Plugin.Activate": self.activate,
            "/NetworkDriver.GetCapabilities": self.capabilities,
            "/NetworkDriver.CreateNetwork": self.create_network,
            "/NetworkDriver.DeleteNetwork": self.delete_network,
            "/NetworkDriver.CreateEndpoint": self.create_endpoint,
            "/NetworkDriver.DeleteEndpoint": self.delete_endpoint,
            "/NetworkDriver.EndpointOperInfo": self.endpoint_oper_info,
            "/NetworkDriver.Join": self.join,
            "/NetworkDriver.Leave": self.leave,
            "/NetworkDriver.DiscoverNew": self.nothing,
            "/NetworkDriver.DiscoverDelete": self.nothing,
            "/NetworkDriver.ProgramExternalConnectivity": self.nothing,
            "/NetworkDriver.RevokeExternalConnectivity": self.nothing,
            "/IpamDriver.GetCapabilities": self.ipam_capabilities,
            "/IpamDriver.GetDefaultAddressSpaces": self.address_spaces,
            "/IpamDriver.RequestPool": self.request_pool,
            "/IpamDriver.ReleasePool": self.release_pool,
            "/IpamDriver.RequestAddress": self.request_address,
            "/IpamDriver.ReleaseAddress": self.release_address,
        }

    def handle(self, path: str, request: Any) -> dict | None:
        """The response to one call; None for an unknown path (HTTP 404 for Docker)."""
        fn = self.routes.get(path)
        if fn is None:
            return None
        if not isinstance(request, dict):
            request = {}
        with self.lock:
            try:
                return fn(request)
            except DriverError as e:
                msg = str(e)
            except IntentError as e:
                msg = "; ".join(e.problems)
            except StoreError as e:
                msg = f"etcd: {e}"
            except (OvsdbError, PlumbingError, A.IpamError) as e:
                msg = str(e)
            except (KeyError, TypeError, ValueError) as e:
                msg = f"bad request to {path}: {e!r}"
        LOG.warning("%s: %s", path, msg)
        # libnetwork reads "Err" from network drivers and "Error" from IPAM drivers
        key = "Error" if path.startswith("/IpamDriver.") else "Err"
        return {"Err": f"netplugin: {msg}"} | {key: f"netplugin: {msg}"}

    # ------------------------------------------------------------------ handshake
    def activate(self, _req: dict) -> dict:
        return {"Implements": ["NetworkDriver", "IpamDriver"]}

    def capabilities(self, _req: dict) -> dict:
        # local: each host's dockerd keeps its own copy; netplugin makes it one network
        return {"Scope": "local", "ConnectivityScope": "global"}

    def ipam_capabilities(self, _req: dict) -> dict:
        return {"RequiresMACAddress": False, "RequiresRequestReplay": False}

    def address_spaces(self, _req: dict) -> dict:
        return {"LocalDefaultAddressSpace": ADDRESS_SPACE,
                "GlobalDefaultAddressSpace": ADDRESS_SPACE}

    def nothing(self, _req: dict) -> dict:
        return {}

    # ------------------------------------------------------------------ networks
    def _spec(self, name: str) -> NetworkSpec:
        spec = I.network_spec(self.store, name)
        if spec is None:
            raise DriverError(f'network "{name}" does not exist')
        return spec

    def _ensure_network(self, name: str, tenant: str | None, subnet: str | None,
                        opts: dict) -> tuple[NetworkSpec, bool]:
        """The netplugin network ``name`` (created in ``tenant`` when new); True if created."""
        if not NAME_RE.match(name or ""):
            raise DriverError(f"{OPT_NETWORK} {name!r}: not a valid network name")
        if subnet:
            try:
                net = IPNetwork(subnet)
            except (AddrFormatError, ValueError) as e:
                raise DriverError(f"subnet {subnet!r}: {e}") from e
            subnet = str(net.cidr)
        created = False
        spec = I.network_spec(self.store, name)
        if spec is None:
            if not tenant:
                raise DriverError(f'network "{name}" does not exist: give {OPT_TENANT}=TENANT to '
                                  f"create it in a tenant")
            t = I.tenant_config(self.store, tenant)
            if t is None:
                raise DriverError(f'tenant "{tenant}" does not exist (create it with netdcli)')
            net_type, tag = _type_tag(opts, None)  # None: the tenant's default
            try:
                spec = I.create_network(self.store, NetworkConfig(
                    name=name, tenant=tenant, pkt_tag_type=net_type, pkt_tag=tag,
                    subnet_cidr=subnet))
                self.state.mark_created(name)
                created = True
                LOG.info("created network %s in tenant %s: %s %s, %s", name, tenant,
                         spec.net_type, spec.tag, spec.subnet)
            except ConflictError:  # another host created it meanwhile
                spec = self._spec(name)
        if tenant and spec.tenant != tenant:
            raise DriverError(f'network "{name}" belongs to tenant "{spec.tenant}", not '
                              f'"{tenant}"')
        if subnet and subnet != spec.subnet:
            raise DriverError(f'subnet {subnet} disagrees with network "{name}" (subnet '
                              f"{spec.subnet})")
        return I.pin_subnet(self.store, name), created

    def _docker_owned_empty(self, name: str) -> bool:
        """Created by a Docker host and without endpoints: free to change or delete."""
        return self.state.created_by(name) is not None and not I.has_endpoints(self.store, name)

    def _check_type_tag(self, name: str, spec: NetworkSpec, opts: dict) -> NetworkSpec:
        if OPT_TYPE not in opts and OPT_TAG not in opts:
            return spec
        net_type, tag = _type_tag(opts, spec.net_type)
        if net_type == spec.net_type and tag in (None, spec.tag):
            return spec
        if not self._docker_owned_empty(name):
            raise DriverError(f'network "{name}" is {spec.net_type} {spec.tag}: '
                              f"-o {OPT_TYPE}/{OPT_TAG} disagree ({net_type} {tag or 'any'})")
        if tag is not None:
            return I.update_network(self.store, name, pkt_tag_type=net_type, pkt_tag=tag)
        # a new type without a tag: made again (it is empty and Docker's), so one is allocated
        cfg = I.network_config(self.store, name)
        I.delete_network(self.store, name)
        try:
            return I.create_network(self.store, NetworkConfig(
                name=name, tenant=spec.tenant, pkt_tag_type=net_type, subnet_cidr=spec.subnet,
                default_gw=cfg.default_gw if cfg else None))
        except IntentError:
            self.state.unmark_created(name)
            raise

    def maybe_delete_network(self, name: str) -> None:
        """Delete ``name`` if a Docker host created it and no host's Docker still has it."""
        if self.state.created_by(name) is None or self.state.hosts_using(name):
            return
        if I.has_endpoints(self.store, name):
            LOG.info("network %s still has endpoints: kept", name)
            return
        I.delete_network(self.store, name)
        self.state.unmark_created(name)
        LOG.info("deleted network %s (created by Docker, no Docker host uses it)", name)

    def request_pool(self, req: dict) -> dict:
        if req.get("V6"):
            raise DriverError("IPv6 pools are not supported")
        if req.get("SubPool"):
            raise DriverError("--ip-range is not supported (the whole subnet is the pool)")
        opts = req.get("Options") or {}
        name = opts.get(OPT_NETWORK)
        if not name:
            raise DriverError(f"--ipam-opt {OPT_NETWORK}=NETWORK is needed (Docker does not "
                              f"tell an IPAM driver the network's name)")
        spec, _ = self._ensure_network(name, opts.get(OPT_TENANT), req.get("Pool") or None,
                                       opts)
        return {"PoolID": name, "Pool": spec.subnet,
                "Data": {OPT_NETWORK: name, OPT_TENANT: spec.tenant}}

    def release_pool(self, req: dict) -> dict:
        self.maybe_delete_network(req["PoolID"])
        return {}

    def create_network(self, req: dict) -> dict:
        nid = req["NetworkID"]
        opts = (req.get("Options") or {}).get(GENERIC) or {}
        if req.get("IPv6Data"):
            raise DriverError("IPv6 is not supported")
        ipv4 = (req.get("IPv4Data") or [{}])[0]
        name = opts.get(OPT_NETWORK) or self._network_of_pool(ipv4.get("Pool") or "",
                                                              opts.get(OPT_TENANT))
        spec, created = self._ensure_network(name, opts.get(OPT_TENANT), ipv4.get("Pool"), opts)
        try:
            spec = self._check_type_tag(name, spec, opts)
            gateway = (ipv4.get("Gateway") or "").split("/")[0]
            if gateway and gateway != spec.gateway:
                raise DriverError(f'gateway {gateway} disagrees with network "{name}" (gateway '
                                  f"{spec.gateway})")
            self.state.put_network(NetworkRecord(nid, name, spec.tenant))
        except (DriverError, IntentError):
            if created:
                self.maybe_delete_network(name)
            raise
        LOG.info("Docker network %s is netplugin network %s", short(nid), name)
        return {}

    def _network_of_pool(self, pool: str, tenant: str | None) -> str:
        """Without ``-o netplugin.network``: the network the IPAM driver gave this pool."""
        found = [n for n in I.networks_with_subnet(self.store, pool)
                 if tenant in (None, n.tenant)]
        if len(found) != 1:
            where = f"{len(found)} netplugin networks have subnet {pool}" if pool else \
                "no subnet given"
            raise DriverError(f"-o {OPT_NETWORK}=NETWORK is needed ({where}; Docker does not "
                              f"tell a network driver the network's name)")
        return found[0].name

    def delete_network(self, req: dict) -> dict:
        nid = req["NetworkID"]
        rec = self.state.network(nid)
        if rec is not None:
            self.state.delete_network(nid)
            self.maybe_delete_network(rec.network)
        return {}

    # ------------------------------------------------------------------ addresses
    def request_address(self, req: dict) -> dict:
        name = req["PoolID"]
        spec = self._spec(name)
        subnet = IPNetwork(spec.subnet)
        want = req.get("Address") or None
        if (req.get("Options") or {}).get("RequestAddressType") == GATEWAY_REQUEST:
            if want and want != spec.gateway:
                if not self._docker_owned_empty(name):
                    raise DriverError(f'gateway {want} disagrees with network "{name}" '
                                      f"(gateway {spec.gateway})")
                _check_host_address(want, spec, gateway_ok=True)
                spec = I.update_network(self.store, name, default_gw=want)
            if not spec.gateway:
                raise DriverError(f'network "{name}" has no gateway (Docker needs one)')
            return {"Address": f"{spec.gateway}/{subnet.prefixlen}", "Data": {}}
        if want:
            _check_host_address(want, spec)
        ep = I.add_endpoint(self.store, name, PENDING + secrets.token_hex(6), self.host, want)
        handle = ""
        if not ep.ip:  # the network's IPAM plugin gives it (the same backend as the agent's)
            try:
                ip = A.obtain(self.store, self.ipam, self.host, spec, ep.id, A.NO_NETNS,
                              driver=DRIVER_MARK)
            except (A.IpamError, IntentError):
                I.delete_endpoint(self.store, ep.id)
                raise
            ep, handle = replace(ep, ip=ip), ep.id
        self.state.put_address(AddressRecord(name, ep.ip, ep.id, handle=handle))
        LOG.info("address %s of network %s held by %s", ep.ip, name, ep.id)
        return {"Address": f"{ep.ip}/{subnet.prefixlen}", "Data": {}}

    def release_address(self, req: dict) -> dict:
        name, ip = req["PoolID"], req["Address"]
        rec = self.state.address(name, ip)
        if rec is not None:
            self.release(rec)
        return {}

    def release(self, rec: AddressRecord) -> None:
        if I.address_owner(self.store, rec.network, rec.ip) == rec.endpoint:
            I.delete_endpoint(self.store, rec.endpoint)
        if rec.handle:
            lease = next((x for x in A.read_leases(self.store, self.host)
                          if (x.network, x.handle) == (rec.network, rec.handle)), None)
            if lease is not None:
                A.release(self.store, self.ipam, lease, clear=False)
        self.state.delete_address(rec.network, rec.ip)
        LOG.info("address %s of network %s released (%s)", rec.ip, rec.network, rec.endpoint)

    # ------------------------------------------------------------------ endpoints
    def _network_record(self, nid: str) -> NetworkRecord:
        rec = self.state.network(nid)
        if rec is None:
            raise DriverError(f"Docker network {short(nid)} is not known to netplugin on host "
                              f"{self.host}")
        return rec

    def _endpoint_record(self, eid: str) -> EndpointRecord:
        rec = self.state.endpoint(eid)
        if rec is None:
            raise DriverError(f"Docker endpoint {short(eid)} is not known to netplugin on host "
                              f"{self.host}")
        return rec

    def np_endpoint(self, rec: EndpointRecord) -> str:
        """The netplugin endpoint id of a Docker endpoint now."""
        addr = self.state.address(rec.network, rec.ip)
        return addr.endpoint if addr is not None else endpoint_id(
            rec.network, BY_DOCKER_ID + short(rec.docker_id))

    def create_endpoint(self, req: dict) -> dict:
        nid, eid = req["NetworkID"], req["EndpointID"]
        iface = req.get("Interface") or {}
        net = self._network_record(nid)
        if iface.get("AddressIPv6"):
            raise DriverError("IPv6 addresses are not supported")
        if not iface.get("Address"):
            raise DriverError(f"endpoint {short(eid)}: no IPv4 address (create the network "
                              f"with --ipam-driver netplugin)")
        ip_net = IPNetwork(iface["Address"])
        ip = str(ip_net.ip)
        container = BY_DOCKER_ID + short(eid)
        addr = self.state.address(net.network, ip)
        if addr is None:  # another IPAM driver handed the address out
            ep = I.add_endpoint(self.store, net.network, container, self.host, ip)
            addr = AddressRecord(net.network, ip, ep.id, eid, ipam=False)
        else:
            ep = I.rename_endpoint(self.store, addr.endpoint, container, self.host)
            addr = replace(addr, endpoint=ep.id, docker_endpoint=eid)
        self.state.put_address(addr)
        given = (iface.get("MacAddress") or "").lower()
        if given and given != ep.mac:
            raise DriverError(f"--mac-address is not supported: netplugin gives endpoint "
                              f"{ep.id} the MAC {ep.mac}")
        self.state.put_endpoint(EndpointRecord(eid, nid, net.network, ip, ip_net.prefixlen,
                                               ep.mac))
        LOG.info("endpoint %s (Docker %s): %s %s", ep.id, short(eid), ip, ep.mac)
        return {} if given else {"Interface": {"MacAddress": ep.mac}}

    def delete_endpoint(self, req: dict) -> dict:
        eid = req["EndpointID"]
        rec = self.state.endpoint(eid)
        if rec is None:
            return {}
        if rec.port:
            self.unplug_port(rec)
        addr = self.state.address(rec.network, rec.ip)
        if addr is not None and addr.docker_endpoint == eid and not addr.ipam:
            self.release(addr)
        self.state.delete_endpoint(eid)
        return {}

    def endpoint_oper_info(self, req: dict) -> dict:
        rec = self.state.endpoint(req["EndpointID"])
        if rec is None:
            return {"Value": {}}
        return {"Value": {"netplugin.endpoint": self.np_endpoint(rec),
                          "netplugin.network": rec.network, "port": rec.port}}

    def oper_value(self, rec: EndpointRecord, ofport: int, container: str) -> dict:
        return {"host": self.host, "ofport": ofport, "port_name": rec.port,
                "container": container, "netns": rec.sandbox, "driver": DRIVER_MARK,
                "docker_endpoint": rec.docker_id}

    def _port_request(self, rec: EndpointRecord, ep_id: str) -> PortRequest:
        spec = self._spec(rec.network)
        port, peer = port_names(rec.docker_id)
        return PortRequest(rec.docker_id, ep_id, port, peer, rec.mac, rec.ip,
                           network_mtu(spec), rec.container or ep_id)

    def join(self, req: dict) -> dict:
        rec = self._endpoint_record(req["EndpointID"])
        spec = self._spec(rec.network)
        ep_id = self.np_endpoint(rec)
        preq = self._port_request(rec, ep_id)
        ofport = self.plumbing.plug(preq)
        rec = replace(rec, port=preq.port_name, sandbox=req.get("SandboxKey") or "")
        try:
            self.store.put(keys.oper_endpoint(ep_id), json.dumps(
                self.oper_value(rec, ofport, preq.container), sort_keys=True))
            self.state.put_endpoint(rec)
        except StoreError:
            self.plumbing.unplug(preq.port_name)
            raise
        LOG.info("joined %s: port %s ofport %d, sandbox %s", ep_id, preq.port_name, ofport,
                 rec.sandbox)
        resp: dict[str, Any] = {"InterfaceName": {"SrcName": preq.peer_name, "DstPrefix": "eth"},
                                "DisableGatewayService": True}
        if spec.gateway:
            resp["Gateway"] = spec.gateway
        return resp

    def unplug_port(self, rec: EndpointRecord) -> EndpointRecord:
        self.plumbing.unplug(rec.port)
        self.store.delete(keys.oper_endpoint(self.np_endpoint(rec)))
        LOG.info("unplugged port %s (Docker endpoint %s)", rec.port, short(rec.docker_id))
        return replace(rec, port="", sandbox="")

    def leave(self, req: dict) -> dict:
        rec = self._endpoint_record(req["EndpointID"])
        if rec.port:
            self.state.put_endpoint(self.unplug_port(rec))
        return {}

    # ------------------------------------------------------------------ names from Docker
    def learn(self, docker_endpoint: str, container: str) -> str | None:
        """Docker named the container of ``docker_endpoint``: its endpoint becomes
        ``<network>-<container>`` (same address).  Returns the endpoint id, None if unknown."""
        with self.lock:
            rec = self.state.endpoint(docker_endpoint)
            if rec is None:
                return None
            ep_id = self.np_endpoint(rec)
            if rec.container == container or not container:
                return ep_id
            new_id = endpoint_id(rec.network, container)
            if not NAME_RE.match(container) or not NAME_RE.match(new_id):
                LOG.warning("container name %r does not make a valid endpoint id: keeping %s",
                            container, ep_id)
                self.state.put_endpoint(replace(rec, container=container))
                return ep_id
            oper_key = keys.oper_endpoint(ep_id)
            oper = self.store.get(oper_key)
            if oper is not None:  # the new oper key first: the controller keeps the port's flows
                val = json.loads(oper.value) | {"container": container}
                self.store.put(keys.oper_endpoint(new_id), json.dumps(val, sort_keys=True))
            try:
                I.rename_endpoint(self.store, ep_id, container, self.host)
            except IntentError as e:
                if oper is not None:
                    self.store.delete(keys.oper_endpoint(new_id))
                LOG.warning("container %s: keeping endpoint %s: %s", container, ep_id,
                            "; ".join(e.problems))
                self.state.put_endpoint(replace(rec, container=container))
                return ep_id
            if oper is not None:
                self.store.delete(oper_key)
            addr = self.state.address(rec.network, rec.ip)
            if addr is not None:
                self.state.put_address(replace(addr, endpoint=new_id))
            rec = replace(rec, container=container)
            self.state.put_endpoint(rec)
            if rec.port:
                self.plumbing.relabel(self._port_request(rec, new_id))
            LOG.info("endpoint %s is now %s", ep_id, new_id)
            return new_id


def _type_tag(opts: dict, default_type: str | None) -> tuple[str | None, int | None]:
    net_type = opts.get(OPT_TYPE) or default_type
    if net_type is not None and net_type not in NET_TYPES:
        raise DriverError(f"{OPT_TYPE} {net_type!r}: must be one of {', '.join(NET_TYPES)}")
    tag = opts.get(OPT_TAG)
    if tag in (None, ""):
        return net_type, None
    try:
        return net_type, int(tag)
    except (TypeError, ValueError):
        raise DriverError(f"{OPT_TAG} {tag!r}: not a number") from None


def _check_host_address(ip: str, spec: NetworkSpec, gateway_ok: bool = False) -> None:
    try:
        addr = IPAddress(ip)
    except (AddrFormatError, ValueError):
        raise DriverError(f"address {ip!r}: not an IPv4 address") from None
    subnet = IPNetwork(spec.subnet)
    if addr not in subnet or addr in (subnet.network, subnet.broadcast):
        raise DriverError(f'address {ip} is not a host address of network "{spec.name}" '
                          f"({spec.subnet})")
    if not gateway_ok and ip == spec.gateway:
        raise DriverError(f'address {ip} is the gateway of network "{spec.name}"')
