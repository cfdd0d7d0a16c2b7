"""OVSDB edge: the bridges and endpoint ports the agent manages, through the ``ovs`` Python IDL.

Every change is one OVSDB transaction.  Errors (OVSDB unreachable, a transaction refused, an
interface OVS could not open) raise :class:`OvsdbError` with a message naming the object.
"""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import ovs.db.idl
    import ovs.jsonrpc
    import ovs.poller
    import ovs.stream

from agent.plan import Actual

LOG = logging.getLogger(__name__)
TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller")
Txn = ovs.db.idl.Transaction


class OvsdbError(Exception):
    """OVSDB cannot be reached or refused a change."""


@dataclass(frozen=True)
class BridgeSpec:
    """What a bridge must look like."""

    name: str
    datapath_type: str = "netdev"
    protocols: tuple[str, ...] = ("OpenFlow13",)
    fail_mode: str | None = "secure"
    controller: str | None = None
    other_config: tuple[tuple[str, str], ...] = ()


def _fetch_schema(remote: str, timeout: float) -> dict:
    err, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), timeout * 1000)
    if err:
        raise OvsdbError(f"cannot reach OVSDB at {remote}: {_strerror(err)}")
    rpc = ovs.jsonrpc.Connection(stream)
    try:
        err, resp = rpc.transact_block(
            ovs.jsonrpc.Message.create_request("get_schema", ["Open_vSwitch"]))
        if err or resp is None or resp.error:
            raise OvsdbError(f"OVSDB at {remote}: get_schema failed: {_strerror(err) or resp}")
        return resp.result
    finally:
        rpc.close()


def _strerror(err: int | None) -> str:
    import os

    return os.strerror(err) if err else ""


class Ovsdb:
    """A connection to one ovsdb-server (the host's Open_vSwitch database)."""

    def __init__(self, remote: str, timeout: float = 5.0) -> None:
        self.remote = remote
        self.timeout = timeout
        helper = ovs.db.idl.SchemaHelper(None, _fetch_schema(remote, timeout))
        for t in TABLES:
            helper.register_table(t)
        self.idl = ovs.db.idl.Idl(remote, helper)
        self._run_until(lambda: self.idl.has_ever_connected() and self._root() is not None,
                        "initial contents")

    def close(self) -> None:
        self.idl.close()

    # ------------------------------------------------------------------ plumbing of the IDL
    def run(self) -> None:
        """Process pending updates from the server."""
        self.idl.run()

    def connected(self) -> bool:
        self.idl.run()
        return self.idl._session.is_connected()

    def _run_until(self, cond: Callable[[], bool], what: str, timeout: float | None = None):
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            self.idl.run()
            if cond():
                return
            if time.monotonic() > deadline:
                raise OvsdbError(f"OVSDB at {self.remote}: timed out waiting for {what}")
            poller = ovs.poller.Poller()
            self.idl.wait(poller)
            poller.timer_wait(50)
            poller.block()

    def _rows(self, table: str):
        return self.idl.tables[table].rows.values()

    def _root(self):
        return next(iter(self._rows("Open_vSwitch")), None)

    def transact(self, build: Callable[[Txn], None], what: str) -> None:
        """Build and commit one transaction, retrying on TRY_AGAIN until the timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            self.idl.run()
            if not self.idl._session.is_connected():
                raise OvsdbError(f"{what}: OVSDB at {self.remote} is not reachable")
            seqno = self.idl.change_seqno
            txn = Txn(self.idl)
            build(txn)
            status = txn.commit()
            while status == Txn.INCOMPLETE:
                if time.monotonic() > deadline:
                    txn.abort()
                    raise OvsdbError(f"{what}: OVSDB at {self.remote} did not answer")
                poller = ovs.poller.Poller()
                self.idl.wait(poller)
                txn.wait(poller)
                poller.timer_wait(50)
                poller.block()
                self.idl.run()
                status = txn.commit()
            if status in (Txn.SUCCESS, Txn.UNCHANGED):
                return
            if status != Txn.TRY_AGAIN or time.monotonic() > deadline:
                raise OvsdbError(f"{what}: OVSDB transaction {status}: {txn.get_error()}")
            self._run_until(lambda s=seqno: self.idl.change_seqno != s or
                            not self.idl._session.is_connected(), what)

    # ------------------------------------------------------------------ lookups
    def bridge(self, name: str):
        return next((b for b in self._rows("Bridge") if b.name == name), None)

    def port(self, name: str):
        return next((p for p in self._rows("Port") if p.name == name), None)

    def interface(self, name: str):
        return next((i for i in self._rows("Interface") if i.name == name), None)

    def ofport(self, name: str) -> int:
        iface = self.interface(name)
        return iface.ofport[0] if iface is not None and iface.ofport else -1

    def dpid(self, bridge: str) -> int | None:
        br = self.bridge(bridge)
        return int(br.datapath_id[0], 16) if br is not None and br.datapath_id else None

    def endpoint_ports(self, bridge: str) -> list[tuple[str, dict[str, str], int, str]]:
        """(port name, interface external_ids, ofport, error) for every endpoint port anywhere."""
        self.idl.run()
        res = []
        for port in self._rows("Port"):
            for iface in port.interfaces:
                ids = dict(iface.external_ids)
                if "endpoint-id" in ids:
                    res.append((port.name, ids, iface.ofport[0] if iface.ofport else -1,
                                iface.error[0] if iface.error else ""))
        return res

    def actual(self, bridge: str, link_exists: Callable[[str], bool]) -> list[Actual]:
        """Endpoint ports as :class:`agent.plan.Actual` rows."""
        out = []
        for name, ids, ofport, error in self.endpoint_ports(bridge):
            out.append(Actual(
                port_name=name, endpoint_id=ids["endpoint-id"], sig=ids.get("np-sig", ""),
                ofport=ofport, healthy=ofport > 0 and not error and link_exists(name),
                ip=ids.get("np-ip", ""), netns=ids.get("np-netns", ""),
                container=ids.get("np-container", ""),
                container_id=ids.get("np-container-id", ""), driver=ids.get("np-driver", "")))
        return out

    # ------------------------------------------------------------------ changes
    def ensure_bridge(self, spec: BridgeSpec) -> None:
        """Create ``spec.name`` (controller in the same transaction) or repair its settings."""
        def build(txn: Txn) -> None:
            br = self.bridge(spec.name)
            new = br is None
            if new:
                br = txn.insert(self.idl.tables["Bridge"])
                br.name = spec.name
                iface = txn.insert(self.idl.tables["Interface"])
                iface.name, iface.type = spec.name, "internal"
                port = txn.insert(self.idl.tables["Port"])
                port.name, port.interfaces = spec.name, [iface]
                br.ports = [port]
                self._root().addvalue("bridges", br.uuid)
            if new or br.datapath_type != spec.datapath_type:
                br.datapath_type = spec.datapath_type
            if new or list(br.protocols) != list(spec.protocols):
                br.protocols = list(spec.protocols)
            if new or (br.fail_mode[0] if br.fail_mode else None) != spec.fail_mode:
                br.fail_mode = [spec.fail_mode] if spec.fail_mode else []
            have = {} if new else dict(br.other_config)
            for k, v in spec.other_config:
                if have.get(k) != v:
                    br.setkey("other_config", k, v)
            targets = [] if new else sorted(c.target for c in br.controller)
            want = [spec.controller] if spec.controller else []
            if targets != want:
                rows = []
                for t in want:
                    ctrl = txn.insert(self.idl.tables["Controller"])
                    ctrl.target = t
                    rows.append(ctrl)
                br.controller = rows
        self.transact(build, f"bridge {spec.name}")
        self._run_until(lambda: self.dpid(spec.name) is not None, f"datapath id of {spec.name}")

    def ensure_port(self, bridge: str, name: str, type_: str = "",
                    options: dict[str, str] | None = None,
                    external_ids: dict[str, str] | None = None) -> int:
        """Add port ``name`` to ``bridge`` (or fix its type/options); returns its ofport."""
        def build(txn: Txn) -> None:
            br = self.bridge(bridge)
            if br is None:
                raise OvsdbError(f"port {name}: bridge {bridge} does not exist")
            port = self.port(name)
            if port is not None and port.uuid not in {p.uuid for p in br.ports}:
                for other in self._rows("Bridge"):
                    if port.uuid in {p.uuid for p in other.ports}:
                        other.delvalue("ports", port.uuid)
                port = None
            if port is None:
                iface = txn.insert(self.idl.tables["Interface"])
                iface.name = name
                port = txn.insert(self.idl.tables["Port"])
                port.name, port.interfaces = name, [iface]
                br.addvalue("ports", port.uuid)
                iface.type = type_
                if options is not None:
                    iface.options = options
                if external_ids is not None:
                    iface.external_ids = external_ids
                return
            iface = port.interfaces[0]
            if iface.type != type_:
                iface.type = type_
            if options is not None and dict(iface.options) != options:
                iface.options = options
            if external_ids is not None and dict(iface.external_ids) != external_ids:
                iface.external_ids = external_ids
        self.transact(build, f"port {name} on {bridge}")
        return self.wait_ofport(name)

    def wait_ofport(self, name: str) -> int:
        """The ofport OVS assigned to interface ``name``; error if OVS could not open it."""
        def ready() -> bool:
            iface = self.interface(name)
            return iface is not None and bool(iface.ofport) and (
                iface.ofport[0] != 0 or bool(iface.error))
        self._run_until(ready, f"ofport of {name}")
        iface = self.interface(name)
        if iface.error or iface.ofport[0] < 0:
            err = iface.error[0] if iface.error else "no ofport"
            raise OvsdbError(f"port {name}: OVS could not open it: {err}")
        return iface.ofport[0]

    def delete_port(self, name: str) -> None:
        """Remove port ``name`` from whatever bridge holds it (no-op when absent)."""
        def build(txn: Txn) -> None:
            port = self.port(name)
            if port is None:
                return
            for br in self._rows("Bridge"):
                if port.uuid in {p.uuid for p in br.ports}:
                    br.delvalue("ports", port.uuid)
        self.transact(build, f"delete port {name}")
