"""OVSDB edge: the bridges and endpoint ports the agent manages, through ovsdbapp.

Writes are ovsdbapp Open_vSwitch commands, one transaction per change (ovs-vsctl semantics: the
commit returns once ovs-vswitchd has applied it).  Reads come from the IDL's replica (public
``ovs`` Row API) under the connection's lock, so they never wait on ovs-vswitchd.  The IDL
reconnects by itself; errors (OVSDB unreachable, a transaction refused, an interface OVS could not
open) raise :class:`OvsdbError` naming the object, :class:`OvsdbUnreachable` when the server did
not answer.
"""

from __future__ import annotations

import logging
import os
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    import ovs.db.idl
    import ovs.jsonrpc
    import ovs.stream
    from ovsdbapp import exceptions as ovsdbapp_exc
    from ovsdbapp.backend.ovs_idl import command as ovs_command
    from ovsdbapp.backend.ovs_idl import connection, idlutils
    from ovsdbapp.schema.open_vswitch import impl_idl

from agent.plan import Actual

LOG = logging.getLogger(__name__)
TABLES = ("Open_vSwitch", "Bridge", "Port", "Interface", "Controller")
POLL = 0.02  # seconds between looks at the replica while waiting for ovs-vswitchd
CONTROLLER_BACKOFF_MS = 1000  # OVS's smallest max_backoff


class _DropPostCommitTraceback(logging.Filter):
    """ovsdbapp logs a traceback when ovs-vswitchd cannot open an interface; we report it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != "Post-commit checks failed"


logging.getLogger(impl_idl.__name__).addFilter(_DropPostCommitTraceback())


class OvsdbError(Exception):
    """OVSDB cannot be reached or refused a change."""


class OvsdbUnreachable(OvsdbError):
    """OVSDB did not answer (down, or not reachable): reconnecting may help."""


@dataclass(frozen=True)
class BridgeSpec:
    """What a bridge must look like."""

    name: str
    datapath_type: str = "netdev"
    protocols: tuple[str, ...] = ("OpenFlow13",)
    fail_mode: str | None = "secure"
    controller: str | None = None  # one OpenFlow target, or several separated by commas
    other_config: tuple[tuple[str, str], ...] = ()


def controller_targets(text: str | None) -> list[str]:
    """The sorted OpenFlow targets of a ``--controller`` value (comma-separated)."""
    return sorted({t.strip() for t in (text or "").split(",") if t.strip()})


def _open(remote: str, timeout: float):
    """A new JSON-RPC stream to ``remote``; OvsdbUnreachable when it cannot be opened."""
    err, stream = ovs.stream.Stream.open_block(ovs.stream.Stream.open(remote), timeout * 1000)
    if err:
        raise OvsdbUnreachable(f"cannot reach OVSDB at {remote}: {os.strerror(err)}")
    return stream


def _fetch_schema(remote: str, timeout: float) -> dict:
    """The Open_vSwitch schema from the server (with a timeout, unlike ovsdbapp's helper)."""
    rpc = ovs.jsonrpc.Connection(_open(remote, timeout))
    try:
        err, resp = rpc.transact_block(
            ovs.jsonrpc.Message.create_request("get_schema", ["Open_vSwitch"]))
        if err or resp is None or resp.error:
            why = os.strerror(err) if err else (resp.error if resp else "no answer")
            raise OvsdbUnreachable(f"OVSDB at {remote}: get_schema failed: {why}")
        return resp.result
    finally:
        rpc.close()


class _SetControllers(ovs_command.BaseCommand):
    """The bridge's controllers, all in one transaction, each retrying a lost connection at
    least every ``max_backoff`` ms (OVS's default backoff doubles to 8 s: a restarted
    controller would wait that long for its switches)."""

    def __init__(self, api: Any, bridge: str, targets: list[str], max_backoff: int) -> None:
        super().__init__(api)
        self.bridge, self.targets, self.max_backoff = bridge, targets, max_backoff

    def run_idl(self, txn: Any) -> None:
        br = idlutils.row_by_value(self.api.idl, "Bridge", "name", self.bridge)
        rows = []
        for target in self.targets:
            row = txn.insert(self.api.tables["Controller"])
            row.target, row.max_backoff = target, [self.max_backoff]
            rows.append(row)
        br.controller = rows


def _one(value: Any) -> Any:
    """An optional column's value, or None when empty."""
    return value[0] if value else None


class Ovsdb:
    """A connection to one ovsdb-server (the host's Open_vSwitch database)."""

    def __init__(self, remote: str, timeout: float = 5.0) -> None:
        self.remote = remote
        self.timeout = timeout
        helper = ovs.db.idl.SchemaHelper(None, _fetch_schema(remote, timeout))
        for t in TABLES:
            helper.register_table(t)
        idl = connection.OvsdbIdl(remote, helper)
        self._conn = connection.Connection(idl, timeout)
        self.api = impl_idl.OvsdbIdl(self._conn, start=False)
        try:
            self._conn.start()
        except Exception as exc:  # noqa: BLE001 - ovsdbapp raises bare exceptions here
            idl.close()
            raise OvsdbUnreachable(f"OVSDB at {remote}: no initial contents within "
                                   f"{timeout:g}s ({exc})") from None

    def close(self) -> None:
        self._conn.stop(self.timeout)

    # ------------------------------------------------------------------ plumbing
    @contextmanager
    def _replica(self) -> Iterator[dict[str, Any]]:
        """The IDL's tables, held still (the connection thread waits meanwhile)."""
        with self._conn.lock:
            yield self.api.tables

    def _row(self, table: str, name: str):
        with self._replica() as tables:
            return next((r for r in tables[table].rows.values() if r.name == name), None)

    def _wait(self, cond: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.timeout
        while not cond():
            if time.monotonic() > deadline:
                raise OvsdbError(f"OVSDB at {self.remote}: timed out waiting for {what}")
            time.sleep(POLL)

    def transact(self, commands: list, what: str) -> None:
        """Commit ``commands`` (ovsdbapp commands) as one transaction.

        Fails at once when the server does not accept connections (rather than after the
        timeout, with a plug half done meanwhile).
        """
        if not commands:
            return
        try:
            _open(self.remote, min(1.0, self.timeout)).close()
        except OvsdbUnreachable as exc:
            raise OvsdbUnreachable(f"{what}: OVSDB at {self.remote} is not reachable "
                                   f"({exc})") from None
        try:
            with self.api.transaction(check_error=True, log_errors=False) as txn:
                for cmd in commands:
                    txn.add(cmd)
        except ovsdbapp_exc.TimeoutException:
            raise OvsdbUnreachable(f"{what}: OVSDB at {self.remote} is not reachable (no "
                                   f"answer within {self.timeout:g}s)") from None
        except idlutils.RowNotFound as exc:
            raise OvsdbError(f"{what}: {exc}") from None
        except RuntimeError as exc:
            if "timed out" in str(exc):
                raise OvsdbUnreachable(f"{what}: OVSDB at {self.remote} is not reachable (no "
                                       f"answer within {self.timeout:g}s)") from None
            raise OvsdbError(f"{what}: OVSDB transaction failed: {exc}") from None

    # ------------------------------------------------------------------ lookups
    def ofport(self, name: str) -> int:
        iface = self._row("Interface", name)
        return _one(iface.ofport) if iface is not None and iface.ofport else -1

    def dpid(self, bridge: str) -> int | None:
        br = self._row("Bridge", bridge)
        return int(br.datapath_id[0], 16) if br is not None and br.datapath_id else None

    def interface_external_ids(self, name: str) -> dict[str, str]:
        """``external_ids`` of interface ``name`` (empty when there is none)."""
        with self._replica() as tables:
            iface = next((r for r in tables["Interface"].rows.values() if r.name == name), None)
            return dict(iface.external_ids) if iface is not None else {}

    def endpoint_ports(self, bridge: str) -> list[tuple[str, dict[str, str], int, str]]:
        """(port name, interface external_ids, ofport, error) for every endpoint port anywhere."""
        res = []
        with self._replica() as tables:
            for port in tables["Port"].rows.values():
                for iface in port.interfaces:
                    ids = dict(iface.external_ids)
                    if "endpoint-id" in ids:
                        res.append((port.name, ids, _one(iface.ofport) or -1,
                                    _one(iface.error) or ""))
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
        api, name = self.api, spec.name
        with self._replica():
            br = self._row("Bridge", name)
            have = None if br is None else {
                "datapath_type": br.datapath_type, "protocols": list(br.protocols),
                "fail_mode": _one(br.fail_mode), "other_config": dict(br.other_config),
                "controller": sorted(c.target for c in br.controller)}
            slow = [c.uuid for c in (br.controller if br is not None else ())
                    if _one(c.max_backoff) != CONTROLLER_BACKOFF_MS]
        cmds = []
        if have is None:
            cmds.append(api.add_br(name, may_exist=True, datapath_type=spec.datapath_type))
            have = {"datapath_type": spec.datapath_type, "protocols": [], "fail_mode": None,
                    "other_config": {}, "controller": []}
        elif have["datapath_type"] != spec.datapath_type:
            cmds.append(api.db_set("Bridge", name, ("datapath_type", spec.datapath_type)))
        if have["protocols"] != list(spec.protocols):
            cmds.append(api.db_set("Bridge", name, ("protocols", list(spec.protocols))))
        if have["fail_mode"] != spec.fail_mode:
            cmds.append(api.set_fail_mode(name, spec.fail_mode) if spec.fail_mode
                        else api.db_clear("Bridge", name, "fail_mode"))
        missing = {k: v for k, v in spec.other_config if have["other_config"].get(k) != v}
        if missing:
            cmds.append(api.db_set("Bridge", name, ("other_config", missing)))
        want = controller_targets(spec.controller)
        if have["controller"] != want:  # every target in one transaction: never none between
            cmds.append(_SetControllers(api, name, want, CONTROLLER_BACKOFF_MS) if want
                        else api.del_controller(name))
        else:  # the same targets: only their backoff (no reconnect, no flush)
            cmds += [api.db_set("Controller", u, ("max_backoff", CONTROLLER_BACKOFF_MS))
                     for u in slow]
        self.transact(cmds, f"bridge {name}")
        self._wait(lambda: self.dpid(name) is not None, f"datapath id of {name}")

    def ensure_port(self, bridge: str, name: str, type_: str = "",
                    options: dict[str, str] | None = None,
                    external_ids: dict[str, str] | None = None) -> int:
        """Add port ``name`` to ``bridge`` (or fix its type/options); returns its ofport."""
        api = self.api
        with self._replica() as tables:
            bridges = {b.name: {p.name for p in b.ports} for b in tables["Bridge"].rows.values()}
            # our ports have one interface, named as the port
            iface = next((r for r in tables["Interface"].rows.values() if r.name == name), None)
            have = None if iface is None else {"type": iface.type, "options": dict(iface.options),
                                               "external_ids": dict(iface.external_ids)}
        if bridge not in bridges:
            raise OvsdbError(f"port {name}: bridge {bridge} does not exist")
        holders = [b for b, ports in bridges.items() if name in ports]
        cmds = []
        if holders != [bridge] or have is None:  # (re)create it on this bridge
            cmds += [api.del_port(name, bridge=b) for b in holders]
            attrs: dict[str, Any] = {"type": type_}
            if options is not None:
                attrs["options"] = options
            if external_ids is not None:
                attrs["external_ids"] = external_ids
            cmds.append(api.add_port(bridge, name, may_exist=False, **attrs))
        else:  # repair what differs
            if have["type"] != type_:
                cmds.append(api.db_set("Interface", name, ("type", type_)))
            for column, value in (("options", options), ("external_ids", external_ids)):
                if value is not None and have[column] != value:
                    cmds += [api.db_clear("Interface", name, column),
                             api.db_set("Interface", name, (column, value))]
        self.transact(cmds, f"port {name} on {bridge}")
        return self.wait_ofport(name)

    def wait_ofport(self, name: str) -> int:
        """The ofport OVS assigned to interface ``name``; error if OVS could not open it."""
        def ready() -> bool:
            iface = self._row("Interface", name)
            return iface is not None and bool(iface.ofport) and (
                iface.ofport[0] != 0 or bool(iface.error))
        self._wait(ready, f"ofport of {name}")
        iface = self._row("Interface", name)
        ofport, error = _one(iface.ofport), _one(iface.error)
        if error or ofport < 0:
            raise OvsdbError(f"port {name}: OVS could not open it: {error or 'no ofport'}")
        return ofport

    def delete_port(self, name: str) -> None:
        """Remove port ``name`` from whatever bridge holds it (no-op when absent)."""
        if self._row("Port", name) is not None:
            self.transact([self.api.del_port(name, if_exists=True)], f"delete port {name}")
