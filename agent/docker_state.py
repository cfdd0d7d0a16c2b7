"""The Docker driver's own records in the store (``/netplugin/docker/``), per host.

Docker keeps its networks, endpoints and addresses across restarts and never tells a restarted
driver about them again, so the driver writes down what Docker was told:

* a **network** record per Docker network id: the netplugin network (and tenant) it stands for;
* an **address** record per address Docker's IPAM holds: the netplugin endpoint that holds it
  (from ``RequestAddress`` to ``ReleaseAddress``);
* an **endpoint** record per Docker endpoint id: network, address, MAC, the OVS port while joined,
  and the container name once learnt;
* a machine-wide **created** marker for a netplugin network that a Docker host created (only those
  are deleted again by ``docker network rm``).

Key layout (next to ``intent.keys``' tree; the controller and the agent ignore it)::

    /netplugin/docker/networks/<network>                       created by a Docker host
    /netplugin/docker/hosts/<host>/networks/<docker net id>    NetworkRecord
    /netplugin/docker/hosts/<host>/addresses/<network>/<ip>    AddressRecord
    /netplugin/docker/hosts/<host>/endpoints/<docker ep id>    EndpointRecord
"""

from __future__ import annotations

import dataclasses
import json
import logging
from dataclasses import dataclass
from typing import TypeVar

from intent import keys
from intent.store import Store

LOG = logging.getLogger(__name__)
T = TypeVar("T")
DOCKER = keys.ROOT + "docker/"
DOCKER_NETWORKS = DOCKER + "networks/"
DOCKER_HOSTS = DOCKER + "hosts/"


def created_key(network: str) -> str:
    return DOCKER_NETWORKS + network


def host_prefix(host: str) -> str:
    return f"{DOCKER_HOSTS}{host}/"


def network_key(host: str, docker_id: str) -> str:
    return f"{host_prefix(host)}networks/{docker_id}"


def endpoint_key(host: str, docker_id: str) -> str:
    return f"{host_prefix(host)}endpoints/{docker_id}"


def address_key(host: str, network: str, ip: str) -> str:
    return f"{host_prefix(host)}addresses/{network}/{ip}"


@dataclass(frozen=True)
class NetworkRecord:
    docker_id: str
    network: str
    tenant: str


@dataclass(frozen=True)
class AddressRecord:
    network: str
    ip: str
    endpoint: str  # the netplugin endpoint id holding the address
    docker_endpoint: str = ""
    ipam: bool = True  # handed out by this IPAM driver (ReleaseAddress will come)
    handle: str = ""  # the network's CNI IPAM plugin gave it under this id (its lease)


@dataclass(frozen=True)
class EndpointRecord:
    docker_id: str
    docker_network: str
    network: str
    ip: str
    prefixlen: int
    mac: str
    port: str = ""  # the OVS port while joined
    sandbox: str = ""
    container: str = ""  # Docker's container name, once learnt


def _load(cls: type[T], text: str) -> T | None:
    try:
        data = json.loads(text)
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})
    except (ValueError, TypeError) as e:
        LOG.warning("unreadable %s record %r: %s", cls.__name__, text, e)
        return None


def _dump(obj: object) -> str:
    return json.dumps(dataclasses.asdict(obj), sort_keys=True)


class DockerState:
    """Records of one host's Docker driver."""

    def __init__(self, store: Store, host: str) -> None:
        self.store = store
        self.host = host

    # ------------------------------------------------------------------ networks
    def network(self, docker_id: str) -> NetworkRecord | None:
        kv = self.store.get(network_key(self.host, docker_id))
        return _load(NetworkRecord, kv.value) if kv else None

    def put_network(self, rec: NetworkRecord) -> None:
        self.store.put(network_key(self.host, rec.docker_id), _dump(rec))

    def delete_network(self, docker_id: str) -> None:
        self.store.delete(network_key(self.host, docker_id))

    def networks(self) -> list[NetworkRecord]:
        return self._list("networks/", NetworkRecord)

    def hosts_using(self, network: str) -> set[str]:
        """Hosts whose Docker has a network standing for netplugin network ``network``."""
        out = set()
        for kv in self.store.list(DOCKER_HOSTS):
            host, _, rest = kv.key[len(DOCKER_HOSTS):].partition("/")
            if rest.startswith("networks/"):
                rec = _load(NetworkRecord, kv.value)
                if rec is not None and rec.network == network:
                    out.add(host)
        return out

    # ------------------------------------------------------------------ created marker
    def created_by(self, network: str) -> str | None:
        kv = self.store.get(created_key(network))
        if kv is None:
            return None
        try:
            return str(json.loads(kv.value).get("host", "?"))
        except (ValueError, AttributeError):
            return "?"

    def mark_created(self, network: str) -> None:
        self.store.put(created_key(network), json.dumps({"host": self.host}))

    def unmark_created(self, network: str) -> None:
        self.store.delete(created_key(network))

    # ------------------------------------------------------------------ addresses
    def address(self, network: str, ip: str) -> AddressRecord | None:
        kv = self.store.get(address_key(self.host, network, ip))
        return _load(AddressRecord, kv.value) if kv else None

    def put_address(self, rec: AddressRecord) -> None:
        self.store.put(address_key(self.host, rec.network, rec.ip), _dump(rec))

    def delete_address(self, network: str, ip: str) -> None:
        self.store.delete(address_key(self.host, network, ip))

    def addresses(self) -> list[AddressRecord]:
        return self._list("addresses/", AddressRecord)

    # ------------------------------------------------------------------ endpoints
    def endpoint(self, docker_id: str) -> EndpointRecord | None:
        kv = self.store.get(endpoint_key(self.host, docker_id))
        return _load(EndpointRecord, kv.value) if kv else None

    def put_endpoint(self, rec: EndpointRecord) -> None:
        self.store.put(endpoint_key(self.host, rec.docker_id), _dump(rec))

    def delete_endpoint(self, docker_id: str) -> None:
        self.store.delete(endpoint_key(self.host, docker_id))

    def endpoints(self) -> list[EndpointRecord]:
        return self._list("endpoints/", EndpointRecord)

    def _list(self, sub: str, cls: type[T]) -> list[T]:
        out = []
        for kv in self.store.list(host_prefix(self.host) + sub):
            rec = _load(cls, kv.value)
            if rec is not None:
                out.append(rec)
        return out
