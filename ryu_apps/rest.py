"""The REST northbound API (webob WSGI, ``/api/v1``): intent CRUD, hosts, desired flows, OpenAPI.

Writes go through ``allocator.write`` (each reads only the objects it names and commits
all-or-nothing).
Errors are JSON ``{"errors": [...]}`` with 400 (invalid), 404 (unknown), 409 (conflict/pool
exhausted), 401 (missing/wrong bearer token when one is configured).  Every write accepts
``?wait=SECONDS``: the answer then comes once every connected switch realized the new revision.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webob import Request, Response

from allocator import write as apply
from intent import keys
from intent.codec import loads
from intent.consistent import read_consistent
from intent.errors import IntentError, NotFoundError, ValidationError
from intent.loader import load_bindings, load_config, load_document
from intent.model import EndpointConfig, EndpointSpec, NetworkConfig, NetworkSpec, TenantConfig
from intent.store import Store

LOG = logging.getLogger(__name__)
PREFIX = "/api/v1"


@dataclass(frozen=True)
class Route:
    """One operation; ``path`` uses OpenAPI ``{param}`` syntax."""

    method: str
    path: str
    handler: str
    summary: str
    body: str | None = None  # name of the request schema (see ryu_apps.openapi.SCHEMAS)
    ok: int = 200
    errors: tuple[int, ...] = ()

    @property
    def regex(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")


W = (400, 404, 409)
ROUTES: tuple[Route, ...] = (
    Route("GET", "/openapi.json", "openapi", "This document"),
    Route("POST", "/config", "post_config", "Apply a whole intent document "
          "(?mode=desired|add|delete, like netdcli -cfg/-add-cfg/-del-cfg)", "Config", 200, W),
    Route("GET", "/tenants", "list_tenants", "List tenants"),
    Route("POST", "/tenants", "create_tenant", "Create a tenant (with its networks)", "Tenant",
          201, W),
    Route("GET", "/tenants/{name}", "get_tenant", "Get a tenant", errors=(404,)),
    Route("DELETE", "/tenants/{name}", "delete_tenant", "Delete a tenant and its networks",
          errors=W),
    Route("POST", "/tenants/{name}/networks", "create_network", "Create a network in a tenant",
          "Network", 201, W),
    Route("GET", "/networks", "list_networks", "List networks (config and allocated values)"),
    Route("GET", "/networks/{name}", "get_network", "Get a network", errors=(404,)),
    Route("DELETE", "/networks/{name}", "delete_network", "Delete a network", errors=W),
    Route("POST", "/networks/{name}/endpoints", "create_endpoint", "Create an endpoint",
          "Endpoint", 201, W),
    Route("GET", "/endpoints", "list_endpoints", "List endpoints (resolved: IP, MAC, host)"),
    Route("GET", "/endpoints/{id}", "get_endpoint", "Get an endpoint", errors=(404,)),
    Route("DELETE", "/endpoints/{id}", "delete_endpoint", "Delete an endpoint", errors=W),
    Route("POST", "/bindings", "post_bindings", "Bind endpoints to hosts late "
          "(like netdcli -host-bindings-cfg)", "Bindings", 200, W),
    Route("GET", "/hosts", "list_hosts", "Hosts with switch status and realized revision"),
    Route("GET", "/hosts/{name}/flows", "host_flows",
          "The flows, groups and meters a host's switch should hold, each with its owner",
          errors=(404,)),
    Route("GET", "/problems", "problems", "Store values the controller cannot use (each "
          "quarantines only its own object: its last good value stays in force)"),
    Route("GET", "/wait", "wait", "Wait until every connected switch realized ?revision=R "
          "(?timeout=S)", errors=(400,)),
)


class HttpError(Exception):
    def __init__(self, status: int, problems: list[str]):
        super().__init__("; ".join(problems))
        self.status = status
        self.problems = problems


def _json(status: int, data: Any) -> Response:
    return Response(status=status, content_type="application/json", charset="utf-8",
                    body=json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


def _plain(obj: Any) -> dict:
    d = dataclasses.asdict(obj)
    d.pop("networks", None)
    d.pop("endpoints", None)
    return d


class RestApi:
    """The WSGI application."""

    def __init__(self, store: Store, controller: Any = None, token: str | None = None,
                 wait_default: float = 0.0) -> None:
        self.store = store
        self.controller = controller
        self._token = token
        self.wait_default = wait_default

    # ------------------------------------------------------------------ WSGI plumbing

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, req: Request) -> Response:
        try:
            if not req.path.startswith(PREFIX + "/"):
                raise HttpError(404, [f"no such resource: {req.path}"])
            path = req.path[len(PREFIX):]
            allowed = []
            for route in ROUTES:
                m = route.regex.match(path)
                if not m:
                    continue
                allowed.append(route.method)
                if route.method != req.method:
                    continue
                if route.handler != "openapi":
                    self._authorize(req)
                data = getattr(self, route.handler)(req, **m.groupdict())
                if isinstance(data, Response):
                    return data
                return _json(route.ok, data)
            if allowed:
                raise HttpError(405, [f"{req.method} not allowed on {req.path}; "
                                      f"allowed: {', '.join(allowed)}"])
            raise HttpError(404, [f"no such resource: {req.path}"])
        except HttpError as exc:
            resp = _json(exc.status, {"errors": exc.problems})
            if exc.status == 401:
                resp.headers["WWW-Authenticate"] = 'Bearer realm="netplugin"'
            return resp
        except IntentError as exc:
            return _json(exc.http_status, {"errors": exc.problems})
        except Exception as exc:  # noqa: BLE001 - answer, never drop the connection
            LOG.exception("%s %s failed", req.method, req.path)
            return _json(500, {"errors": [f"internal error: {exc!r}"]})

    def _authorize(self, req: Request) -> None:
        if not self._token:
            return
        got = req.headers.get("Authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(value.strip().encode(),
                                                                 self._token.encode()):
            # who knocked, never with what: neither the token nor the header is logged
            LOG.warning("%s %s from %s refused: %s bearer token", req.method, req.path,
                        req.remote_addr or "?", "wrong" if got else "no")
            raise HttpError(401, ["missing or wrong bearer token"])

    @staticmethod
    def _body(req: Request) -> Any:
        if not req.body:
            raise ValidationError("request body: missing (expected a JSON document)")
        try:
            return json.loads(req.body)
        except ValueError as exc:
            raise ValidationError(f"request body: invalid JSON: {exc}") from exc

    def _written(self, req: Request, result: apply.ApplyResult) -> dict:
        out = {"changed": result.changed, "revision": result.revision, "summary": result.summary}
        wait = req.GET.get("wait")
        if wait is not None or self.wait_default:
            timeout = self._number(wait, "wait") if wait is not None else self.wait_default
            out["realized"] = bool(self.controller and
                                   self.controller.wait_realized(result.revision, timeout))
        return out

    @staticmethod
    def _number(value: str | None, name: str) -> float:
        try:
            return float(value)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValidationError(f"query parameter {name}: expected a number, "
                                  f"got {value!r}") from None

    # ------------------------------------------------------------------ reading helpers

    def _read(self, names: list[str] = (), prefixes: list[str] = ()) -> dict[str, str]:
        snap = read_consistent(self.store, keys=names, prefixes=prefixes)
        return {k: kv.value for k, kv in snap.items.items()}

    @staticmethod
    def _objects(values: dict[str, str], prefix: str, cls: type) -> dict[str, Any]:
        return {keys.last_segment(k): loads(cls, v) for k, v in sorted(values.items())
                if k.startswith(prefix)}

    def _stored(self, key: str, cls: type, what: str, name: str) -> Any:
        value = self._read([key]).get(key)
        if value is None:
            raise NotFoundError(f'{what} "{name}" does not exist')
        return loads(cls, value)

    def _network_endpoints(self, values: dict[str, str], network: str) -> list[str]:
        """Endpoint ids of ``network`` from its IP owner keys (``values`` holds that prefix)."""
        prefix = keys.alloc_ip_prefix(network)
        return sorted(json.loads(v)["owner"] for k, v in values.items() if k.startswith(prefix))

    # ------------------------------------------------------------------ handlers

    def openapi(self, req: Request) -> dict:
        from ryu_apps.openapi import document

        return document(ROUTES, PREFIX)

    def post_config(self, req: Request) -> dict:
        mode = req.GET.get("mode", "desired")
        if mode not in ("desired", "add", "delete"):
            raise ValidationError(f"query parameter mode: {mode!r} is not desired, add or delete")
        body = self._body(req)
        doc = load_config(body) if mode == "desired" else load_document(body)
        return self._written(req, apply.apply_config(self.store, doc, mode))

    def _tenant_view(self, t: TenantConfig, values: dict[str, str]) -> dict:
        idx = json.loads(values.get(keys.tenant_index(t.name)) or '{"networks": {}}')
        return dict(_plain(t), networks=sorted(idx.get("networks", {})))

    def list_tenants(self, req: Request) -> list:
        values = self._read(prefixes=[keys.CONFIG_TENANTS, keys.ALLOC_TENANT])
        return [self._tenant_view(t, values)
                for t in self._objects(values, keys.CONFIG_TENANTS, TenantConfig).values()]

    def get_tenant(self, req: Request, name: str) -> dict:
        values = self._read([keys.tenant(name), keys.tenant_index(name)])
        if keys.tenant(name) not in values:
            raise NotFoundError(f'tenant "{name}" does not exist')
        return self._tenant_view(loads(TenantConfig, values[keys.tenant(name)]), values)

    def create_tenant(self, req: Request) -> dict:
        new = load_document({"Tenants": [self._body(req)]})
        t = new.tenants[0]
        return self._written(req, apply.apply_config(
            self.store, new, "add", create_only=frozenset({("tenant", t.name)}), paths=False))

    def delete_tenant(self, req: Request, name: str) -> dict:
        return self._written(req, apply.delete_object(self.store, "tenant", name))

    def create_network(self, req: Request, name: str) -> dict:
        self._stored(keys.tenant(name), TenantConfig, "tenant", name)
        doc = load_document({"Tenants": [{"Name": name, "Networks": [self._body(req)]}]})
        net = doc.tenants[0].networks[0]
        return self._written(req, apply.apply_config(
            self.store, doc, "add", create_only=frozenset({("network", net.name)}),
            paths=False))

    def list_networks(self, req: Request) -> list:
        values = self._read(prefixes=[keys.CONFIG_NETWORKS, keys.STATE_NETWORKS,
                                      keys.CONFIG_ENDPOINTS])
        states = self._objects(values, keys.STATE_NETWORKS, NetworkSpec)
        members: dict[str, list[str]] = {}
        for e in self._objects(values, keys.CONFIG_ENDPOINTS, EndpointConfig).values():
            members.setdefault(e.network, []).append(e.id)
        return [self._network_view(n, states.get(n.name), sorted(members.get(n.name, [])))
                for n in self._objects(values, keys.CONFIG_NETWORKS, NetworkConfig).values()]

    def get_network(self, req: Request, name: str) -> dict:
        values = self._read([keys.network(name), keys.state_network(name)],
                            [keys.alloc_ip_prefix(name)])
        if keys.network(name) not in values:
            raise NotFoundError(f'network "{name}" does not exist')
        state = values.get(keys.state_network(name))
        return self._network_view(loads(NetworkConfig, values[keys.network(name)]),
                                  loads(NetworkSpec, state) if state else None,
                                  self._network_endpoints(values, name))

    @staticmethod
    def _network_view(net: Any, state: NetworkSpec | None, endpoints: list[str]) -> dict:
        return dict(_plain(net), endpoints=endpoints, state=_plain(state) if state else None)

    def delete_network(self, req: Request, name: str) -> dict:
        return self._written(req, apply.delete_object(self.store, "network", name))

    def create_endpoint(self, req: Request, name: str) -> dict:
        net = self._stored(keys.network(name), NetworkConfig, "network", name)
        doc = load_document({"Tenants": [{"Name": net.tenant, "Networks": [{
            "Name": net.name, "Endpoints": [self._body(req)]}]}]})
        ep = doc.tenants[0].networks[0].endpoints[0]
        return self._written(req, apply.apply_config(
            self.store, doc, "add", create_only=frozenset({("endpoint", ep.id)}), paths=False))

    def list_endpoints(self, req: Request) -> list:
        values = self._read(prefixes=[keys.STATE_ENDPOINTS, keys.OPER_ENDPOINTS])
        plugged = {keys.last_segment(k): json.loads(v) for k, v in values.items()
                   if k.startswith(keys.OPER_ENDPOINTS)}
        return [dict(_plain(e), oper=plugged.get(i))
                for i, e in self._objects(values, keys.STATE_ENDPOINTS, EndpointSpec).items()]

    def get_endpoint(self, req: Request, id: str) -> dict:  # noqa: A002 - route parameter
        values = self._read([keys.state_endpoint(id), keys.oper_endpoint(id)])
        if keys.state_endpoint(id) not in values:
            raise NotFoundError(f'endpoint "{id}" does not exist')
        oper = values.get(keys.oper_endpoint(id))
        return dict(_plain(loads(EndpointSpec, values[keys.state_endpoint(id)])),
                    oper=json.loads(oper) if oper else None)

    def delete_endpoint(self, req: Request, id: str) -> dict:  # noqa: A002
        return self._written(req, apply.delete_object(self.store, "endpoint", id))

    def post_bindings(self, req: Request) -> dict:
        return self._written(req, apply.apply_bindings(self.store, load_bindings(self._body(req))))

    def list_hosts(self, req: Request) -> list:
        if self.controller is not None:
            rows = {h["name"]: h for h in self.controller.host_status()}
        else:
            rows = {}
        for kv in self.store.list(keys.OPER_HOSTS):
            name = keys.last_segment(kv.key)
            reg = json.loads(kv.value)
            rows.setdefault(name, {"name": name, "dpid": reg.get("dpid"),
                                   "vtep_ip": reg.get("vtep_ip"), "connected": False})
        for kv in self.store.list(keys.OPER_REALIZED):
            row = rows.get(keys.last_segment(kv.key))
            if row is not None and row.get("realized_revision") is None:
                row["realized_revision"] = json.loads(kv.value).get("revision")
        return [rows[k] for k in sorted(rows)]

    def host_flows(self, req: Request, name: str) -> dict:
        if self.controller is None or name not in self.controller.cache.hosts:
            raise NotFoundError(f'host "{name}" is not registered')
        ctl = self.controller
        state = ctl.desired(name)
        owner = ctl.describe
        flows = sorted(state.flows | {ctl.marker(name)},
                       key=lambda f: (f.table, -f.priority, repr(f.match)))
        return {
            "host": name, "revision": ctl.cache.revision,
            "flows": [{"table": f.table, "priority": f.priority, "cookie": f"{f.cookie:#x}",
                       "owner": owner(f.cookie, f.table),
                       "match": {m.name: m.value if m.mask is None else f"{m.value}/{m.mask}"
                                 for m in f.match},
                       "instructions": [repr(i) for i in f.instructions]} for f in flows],
            "groups": [{"group_id": g.group_id, "owner": owner(g.cookie),
                        "buckets": [repr(b) for b in g.buckets]}
                       for g in sorted(state.groups, key=lambda g: g.group_id)],
            "meters": [{"meter_id": m.meter_id, "owner": owner(m.cookie),
                        "bands": [dataclasses.asdict(b) for b in m.bands]}
                       for m in sorted(state.meters, key=lambda m: m.meter_id)],
        }

    def problems(self, req: Request) -> dict:
        """Store values the controller cannot use (each quarantines only its own object)."""
        found = dict(self.controller.cache.problems) if self.controller else {}
        return {"problems": [{"key": k, "problem": v} for k, v in sorted(found.items())]}

    def wait(self, req: Request) -> dict:
        rev = int(self._number(req.GET.get("revision"), "revision"))
        timeout = self._number(req.GET.get("timeout", "30"), "timeout")
        ok = bool(self.controller and self.controller.wait_realized(rev, timeout))
        return {"revision": rev, "realized": ok}
