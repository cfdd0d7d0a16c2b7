"""The Docker driver's reconciliation: its records against OVS (always) and Docker (when its API
answers).  Run on start, and again whenever the driver (re)connects to Docker's API.

Without Docker's view it only repairs what OVS shows: a recorded port that is gone or broken (the
container lost its interface: logged, record and oper key cleared), a marked port or veth nobody
records (a crashed plug: removed), oper keys out of date.  With Docker's view it also names
containers; with ``cleanup`` (once after a start) it drops what Docker no longer has: endpoints
of containers that went while the driver was down, addresses no container holds, networks
Docker deleted, and half-made ``docker-ipam-`` endpoints.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace

from agent import docker_intent as I
from agent.docker_api import DockerView
from agent.docker_driver import PENDING, Driver, short
from agent.docker_state import EndpointRecord
from intent import keys

LOG = logging.getLogger(__name__)


def reconcile(d: Driver, view: DockerView | None, cleanup: bool = False) -> list[str]:
    """Bring records, ports and oper keys in line with OVS (and Docker, when ``view`` is
    known).  ``cleanup`` (once Docker answers after a start) also drops what Docker no
    longer has: endpoints, addresses, networks.  Returns what was done."""
    done: list[str] = []
    with d.lock:
        if view is not None and cleanup:
            done += _drop_gone(d, view)
        ports = {p.port_name: p for p in d.plumbing.docker_ports()}
        records = d.state.endpoints()
        for rec in records:
            if rec.port:
                port = ports.get(rec.port)
                if port is None or not port.healthy:
                    LOG.error("port %s of Docker endpoint %s is %s: the container has lost "
                              "its interface", rec.port, short(rec.docker_id),
                              "gone" if port is None else "broken")
                    if port is not None:
                        d.plumbing.unplug(rec.port)
                    d.state.put_endpoint(_unplug_record(d, rec))
                    done.append(f"lost port {rec.port}")
                    continue
                ep_id = d.np_endpoint(rec)
                want = d.oper_value(rec, port.ofport, rec.container or ep_id)
                kv = d.store.get(keys.oper_endpoint(ep_id))
                if kv is None or json.loads(kv.value) != want:
                    d.store.put(keys.oper_endpoint(ep_id), json.dumps(want,
                                                                         sort_keys=True))
                    done.append(f"oper {ep_id}")
        referenced = {r.port for r in d.state.endpoints() if r.port}
        for name, port in ports.items():
            if name not in referenced:
                d.plumbing.unplug(name)
                kv = d.store.get(keys.oper_endpoint(port.endpoint_id))
                if kv is not None and json.loads(kv.value).get("docker_endpoint") == \
                        port.docker_endpoint:
                    d.store.delete(kv.key)
                done.append(f"leaked port {name}")
        for link in d.plumbing.leftover_links() - referenced:
            d.plumbing.delete_link(link)
            done.append(f"leftover veth {link}")
    if view is not None:
        for nid, eps in view.networks.items():
            for eid, dep in eps.items():
                rec = d.state.endpoint(eid)
                if rec is not None and rec.docker_network == nid and dep.container and \
                        rec.container != dep.container:
                    d.learn(eid, dep.container)
                    done.append(f"named {dep.container}")
    for msg in done:
        LOG.info("reconcile: %s", msg)
    return done

def _unplug_record(d: Driver, rec: EndpointRecord) -> EndpointRecord:
    d.store.delete(keys.oper_endpoint(d.np_endpoint(rec)))
    return replace(rec, port="", sandbox="")

def _drop_gone(d: Driver, view: DockerView) -> list[str]:
    done = []
    nets = {n.docker_id: n for n in d.state.networks()}
    for rec in d.state.endpoints():
        if rec.docker_id in view.networks.get(rec.docker_network, {}):
            continue
        if rec.port:
            d.unplug_port(rec)
        addr = d.state.address(rec.network, rec.ip)
        if addr is not None:
            d.release(addr)
        d.state.delete_endpoint(rec.docker_id)
        done.append(f"Docker endpoint {short(rec.docker_id)} is gone")
    held = {(nets[nid].network, dep.ip) for nid, eps in view.networks.items() if nid in nets
            for dep in eps.values()}
    for addr in d.state.addresses():
        if (addr.network, addr.ip) not in held:
            d.release(addr)
            done.append(f"address {addr.ip} of {addr.network} is not Docker's any more")
    for nid, net in nets.items():
        if nid not in view.networks:
            d.state.delete_network(nid)
            d.maybe_delete_network(net.network)
            done.append(f"Docker network {short(nid)} is gone")
    recorded = {a.endpoint for a in d.state.addresses()}
    for ep in I.endpoints_on(d.store, d.host):
        if ep.container.startswith(PENDING) and ep.id not in recorded:
            I.delete_endpoint(d.store, ep.id)
            done.append(f"pending endpoint {ep.id}")
    return done
