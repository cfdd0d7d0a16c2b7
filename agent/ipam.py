"""Addresses from a network's CNI IPAM plugin, obtained on the endpoint's host (the agent, the
CNI plugin and the Docker driver share this).

:class:`CniIpam` runs the plugin binary (CNI 1.0 ``ADD`` / ``DEL``, found on the CNI path).
:func:`obtain` gets an endpoint's address: the plugin's ``ADD``, a *lease* record in the store
(``/netplugin/oper/ipam/<host>/<network>/<handle>``: everything the ``DEL`` needs, even after the
network is deleted), then the address recorded in the intent (:func:`allocator.write.
record_address`), which refuses an address another endpoint of the network holds; on a refusal
the plugin's ``DEL`` gives it back and nothing is left.  :func:`release` undoes all three.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from allocator.write import record_address
from intent import codec, keys
from intent.errors import IntentError, NotFoundError
from intent.ipam_doc import plugin_settings
from intent.model import EndpointSpec, NetworkSpec
from intent.store import Store

LOG = logging.getLogger(__name__)
DEFAULT_CNI_PATH = "/opt/cni/bin:/usr/lib/cni"
CNI_VERSION = "1.0.0"
IFNAME = "eth0"  # the interface name the plugin's allocation is recorded under
NO_NETNS = "/proc/self/ns/net"  # Docker asks for an address before the container's netns exists


class IpamError(Exception):
    """The plugin failed or returned no usable address; the message names it."""


@dataclass(frozen=True)
class Lease:
    """An address a host obtained from a plugin (the value of its lease key)."""

    host: str
    network: str
    handle: str  # CNI_CONTAINERID of the ADD (the endpoint id at that time)
    endpoint: str
    ip: str
    container: str = ""  # the netns owner it was obtained for ("" for Docker)
    driver: str = ""  # "docker": the Docker driver's (the agent leaves it alone)
    settings: str = "{}"  # the plugin's ipam object (JSON)
    result: str = "{}"  # the ADD's result (JSON: the DEL's prevResult)

    @property
    def key(self) -> str:
        return keys.oper_ipam(self.host, self.network, self.handle)


class Backend(Protocol):
    def add(self, settings: dict, network: str, handle: str, netns: str) -> dict: ...

    def delete(self, settings: dict, network: str, handle: str, result: dict) -> None: ...


class CniIpam:
    """Calls CNI IPAM plugin binaries found on ``cni_path`` (``a:b`` like ``CNI_PATH``)."""

    def __init__(self, cni_path: str = DEFAULT_CNI_PATH, timeout: float = 20.0) -> None:
        self.cni_path = cni_path or DEFAULT_CNI_PATH
        self.timeout = timeout

    def binary(self, plugin: str) -> str:
        for d in self.cni_path.split(":"):
            path = os.path.join(d, plugin)
            if d and os.path.isfile(path) and os.access(path, os.X_OK):
                return path
        raise IpamError(f'IPAM plugin "{plugin}" not found on the CNI path {self.cni_path}')

    def _run(self, command: str, settings: dict, network: str, handle: str, netns: str,
             extra: Mapping | None = None) -> dict:
        plugin = settings["type"]
        conf = {"cniVersion": CNI_VERSION, "name": network, "type": "netplugin-cni",
                "ipam": settings} | dict(extra or {})
        env = {"CNI_COMMAND": command, "CNI_CONTAINERID": handle, "CNI_NETNS": netns,
               "CNI_IFNAME": IFNAME, "CNI_PATH": self.cni_path, "PATH": os.environ.get(
                   "PATH", "/usr/sbin:/usr/bin:/sbin:/bin")}
        try:
            done = subprocess.run([self.binary(plugin)], input=json.dumps(conf), env=env,
                                  capture_output=True, text=True, timeout=self.timeout,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise IpamError(f'IPAM plugin "{plugin}" {command} for {handle}: {e}') from e
        try:
            out = json.loads(done.stdout) if done.stdout.strip() else {}
        except ValueError:
            out = {"msg": done.stdout.strip()[:200]}
        if done.returncode != 0:
            msg = out.get("msg") if isinstance(out, dict) else None
            msg = msg or done.stderr.strip()[:200] or f"exit status {done.returncode}"
            details = out.get("details") if isinstance(out, dict) else None
            raise IpamError(f'IPAM plugin "{plugin}" {command} for {handle} in network '
                            f'"{network}": {msg}' + (f" ({details})" if details else ""))
        return out if isinstance(out, dict) else {}

    def add(self, settings: dict, network: str, handle: str, netns: str) -> dict:
        """The plugin's ADD result."""
        return self._run("ADD", settings, network, handle, netns)

    def delete(self, settings: dict, network: str, handle: str, result: dict) -> None:
        """The plugin's DEL (its allocation for ``handle`` given back)."""
        extra = {"prevResult": result} if result else {}
        self._run("DEL", settings, network, handle, NO_NETNS, extra)


def first_ipv4(result: dict, plugin: str) -> str:
    """The first IPv4 address of a CNI result (without its prefix length)."""
    for entry in result.get("ips") or ():
        address = str(entry.get("address", "")) if isinstance(entry, dict) else ""
        ip = address.split("/")[0]
        if ip.count(".") == 3:
            return ip
    raise IpamError(f'IPAM plugin "{plugin}" returned no IPv4 address: {json.dumps(result)}')


def read_leases(store: Store, host: str) -> list[Lease]:
    """Every lease of ``host``."""
    out = []
    for kv in store.list(keys.oper_ipam_prefix(host)):
        try:
            out.append(Lease(**json.loads(kv.value)))
        except (ValueError, TypeError) as e:
            LOG.warning("lease %s: unreadable (%s)", kv.key, e)
    return out


def _put(store: Store, lease: Lease) -> None:
    store.put(lease.key, codec.dumps(lease))


def obtain(store: Store, backend: Backend, host: str, net: NetworkSpec, endpoint: str,
           netns: str, container: str = "", driver: str = "",
           leases: Mapping[tuple[str, str], Lease] | None = None) -> str:
    """An address for pending ``endpoint`` of ``net`` from its plugin, recorded in the intent.

    A lease this host already holds for the endpoint (an earlier pass that did not finish) is
    used again.  Raises IpamError or IntentError (the address refused); then nothing is held.
    """
    assert net.ipam is not None
    lease = (leases or {}).get((net.name, endpoint))
    if lease is None:
        settings = plugin_settings(net.ipam, host, net.subnet, net.gateway)
        result = backend.add(settings, net.name, endpoint, netns)
        try:
            ip = first_ipv4(result, net.ipam.plugin or "?")
        except IpamError:
            backend.delete(settings, net.name, endpoint, result)
            raise
        lease = Lease(host, net.name, endpoint, endpoint, ip, container, driver,
                      json.dumps(settings, sort_keys=True), json.dumps(result, sort_keys=True))
        _put(store, lease)
        LOG.info("endpoint %s: address %s from IPAM plugin %s", endpoint, ip, net.ipam.plugin)
    try:
        record_address(store, endpoint, lease.ip)
    except IntentError:
        release(store, backend, lease, clear=False)
        raise
    return lease.ip


def release(store: Store, backend: Backend, lease: Lease, clear: bool = True) -> None:
    """Give a lease back: the endpoint waits for an address again (``clear``, when it still
    holds this one), the plugin's DEL, the lease key deleted."""
    if clear:
        kv = store.get(keys.state_endpoint(lease.endpoint))
        spec = codec.loads(EndpointSpec, kv.value) if kv else None
        if spec is not None and (spec.network, spec.ip) == (lease.network, lease.ip):
            try:
                record_address(store, lease.endpoint, None)
            except NotFoundError:
                pass  # deleted meanwhile: nothing to clear
            except IntentError as e:  # e.g. the network allocates by itself now: it keeps it
                LOG.warning("endpoint %s keeps %s: %s", lease.endpoint, lease.ip,
                            "; ".join(e.problems))
    backend.delete(json.loads(lease.settings), lease.network, lease.handle,
                   json.loads(lease.result))
    store.delete(lease.key)
    LOG.info("endpoint %s: address %s given back to IPAM plugin", lease.endpoint, lease.ip)


# --------------------------------------------------------------------------- reconcile passes


def delegate_wanted(store: Store, backend: Backend, host: str, want: dict, networks: Mapping,
                    leases: Mapping[tuple[str, str], Lease]) -> tuple[dict, list[str], list[str]]:
    """Obtain the address of every pending endpoint in ``want`` (``agent.plan.Desired`` by
    endpoint id).  Returns (want with the addresses, endpoints obtained now, problems); an
    endpoint whose address cannot be had is left out of ``want`` with a problem naming it."""
    from dataclasses import replace

    from allocator.pools import mac_for

    out, obtained, problems = {}, [], []
    for eid, w in sorted(want.items()):
        net = networks.get(w.network)
        if w.ip or net is None or net.ipam is None:
            out[eid] = w
            continue
        try:
            ip = obtain(store, backend, host, net, eid, w.netns, container=w.owner,
                        leases=leases)
        except IpamError as e:
            problems.append(f"endpoint {eid}: not plugged: {e}")
            continue
        except IntentError as e:
            problems.append(f"endpoint {eid}: not plugged: " + "; ".join(e.problems))
            continue
        out[eid] = replace(w, ip=ip, mac=mac_for(ip))
        obtained.append(eid)
    return out, obtained, problems


def give_back(store: Store, backend: Backend, leases: list[Lease], problems: list[str]) -> None:
    """Release ``leases``; a failure is a problem (the lease stays: the next pass retries)."""
    for lease in leases:
        try:
            release(store, backend, lease)
        except (IpamError, IntentError) as e:
            problems.append(f"endpoint {lease.endpoint}: address {lease.ip} not given back: "
                            + ("; ".join(e.problems) if isinstance(e, IntentError) else str(e)))
