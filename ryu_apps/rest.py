"""The REST northbound API (webob WSGI, ``/api/v1``): intent CRUD, hosts, desired flows, OpenAPI.

Writes go through ``intent.apply`` (one compare-and-swap transaction each: nothing half-written).
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
from dataclasses import dataclass, replace
from typing import Any

from webob import Request, Response

from intent import apply, keys
from intent.codec import loads
from intent.errors import ConflictError, IntentError, NotFoundError, ValidationError
from intent.loader import load_bindings, load_config
from intent.model import Config, EndpointSpec, NetworkSpec
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

    def _config(self) -> Config:
        return apply.read_config(self.store)

    def _tenant(self, cfg: Config, name: str):
        t = next((t for t in cfg.tenants if t.name == name), None)
        if t is None:
            raise NotFoundError(f'tenant "{name}" does not exist')
        return t

    def _net_states(self) -> dict[str, NetworkSpec]:
        return {keys.last_segment(kv.key): loads(NetworkSpec, kv.value)
                for kv in self.store.list(keys.STATE_NETWORKS)}

    def _ep_states(self) -> dict[str, EndpointSpec]:
        return {keys.last_segment(kv.key): loads(EndpointSpec, kv.value)
                for kv in self.store.list(keys.STATE_ENDPOINTS)}

    # ------------------------------------------------------------------ handlers

    def openapi(self, req: Request) -> dict:
        from ryu_apps.openapi import document

        return document(ROUTES, PREFIX)

    def post_config(self, req: Request) -> dict:
        mode = req.GET.get("mode", "desired")
        if mode not in ("desired", "add", "delete"):
            raise ValidationError(f"query parameter mode: {mode!r} is not desired, add or delete")
        return self._written(req, apply.apply_config(
            self.store, load_config(self._body(req), validate=mode != "delete"), mode))

    def list_tenants(self, req: Request) -> list:
        cfg = self._config()
        return [dict(_plain(t), networks=[n.name for n in t.networks]) for t in cfg.tenants]

    def get_tenant(self, req: Request, name: str) -> dict:
        t = self._tenant(self._config(), name)
        return dict(_plain(t), networks=[n.name for n in t.networks])

    def create_tenant(self, req: Request) -> dict:
        new = load_config({"Tenants": [self._body(req)]}, validate=False)
        t = new.tenants[0]
        if any(x.name == t.name for x in self._config().tenants):
            raise ConflictError(f'tenant "{t.name}" exists already')
        return self._written(req, apply.apply_config(self.store, new, "add"))

    def delete_tenant(self, req: Request, name: str) -> dict:
        self._tenant(self._config(), name)
        return self._written(req, apply.delete_object(self.store, "tenant", name))

    def create_network(self, req: Request, name: str) -> dict:
        cfg = self._config()
        t = self._tenant(cfg, name)
        body = self._body(req)
        parsed = load_config({"Tenants": [{"Name": t.name, "DefaultNetType": t.default_net_type,
                                           "Networks": [body]}]}, validate=False)
        net = parsed.tenants[0].networks[0]
        if any(n.name == net.name for n in cfg.networks()):
            raise ConflictError(f'network "{net.name}" exists already')
        return self._written(req, apply.apply_config(
            self.store, Config(tenants=(replace(t, networks=(net,)),)), "add"))

    def list_networks(self, req: Request) -> list:
        states = self._net_states()
        return [self._network_view(n, states.get(n.name)) for n in self._config().networks()]

    def get_network(self, req: Request, name: str) -> dict:
        net = next((n for n in self._config().networks() if n.name == name), None)
        if net is None:
            raise NotFoundError(f'network "{name}" does not exist')
        return self._network_view(net, self._net_states().get(name))

    @staticmethod
    def _network_view(net: Any, state: NetworkSpec | None) -> dict:
        return dict(_plain(net), endpoints=[e.id for e in net.endpoints],
                    state=_plain(state) if state else None)

    def delete_network(self, req: Request, name: str) -> dict:
        return self._written(req, apply.delete_object(self.store, "network", name))

    def create_endpoint(self, req: Request, name: str) -> dict:
        cfg = self._config()
        net = next((n for n in cfg.networks() if n.name == name), None)
        if net is None:
            raise NotFoundError(f'network "{name}" does not exist')
        t = self._tenant(cfg, net.tenant)
        parsed = load_config({"Tenants": [{"Name": t.name, "Networks": [{
            "Name": net.name, "PktTagType": net.pkt_tag_type,
            "Endpoints": [self._body(req)]}]}]}, validate=False)
        ep = parsed.tenants[0].networks[0].endpoints[0]
        if any(e.id == ep.id for e in net.endpoints):
            raise ConflictError(f'endpoint "{ep.id}" exists already')
        return self._written(req, apply.apply_config(self.store, Config(tenants=(
            replace(t, networks=(replace(net, endpoints=(ep,)),)),)), "add"))

    def list_endpoints(self, req: Request) -> list:
        plugged = {keys.last_segment(kv.key): json.loads(kv.value)
                   for kv in self.store.list(keys.OPER_ENDPOINTS)}
        return [dict(_plain(e), oper=plugged.get(i)) for i, e in sorted(self._ep_states().items())]

    def get_endpoint(self, req: Request, id: str) -> dict:  # noqa: A002 - route parameter
        ep = self._ep_states().get(id)
        if ep is None:
            raise NotFoundError(f'endpoint "{id}" does not exist')
        kv = self.store.get(keys.oper_endpoint(id))
        return dict(_plain(ep), oper=json.loads(kv.value) if kv else None)

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
        intent = ctl.cache.resolved()
        owner = lambda c: ctl.dataplane.describe(c, intent)  # noqa: E731
        flows = sorted(state.flows, key=lambda f: (f.table, -f.priority, repr(f.match)))
        return {
            "host": name, "revision": intent.revision,
            "flows": [{"table": f.table, "priority": f.priority, "cookie": f"{f.cookie:#x}",
                       "owner": owner(f.cookie),
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

    def wait(self, req: Request) -> dict:
        rev = int(self._number(req.GET.get("revision"), "revision"))
        timeout = self._number(req.GET.get("timeout", "30"), "timeout")
        ok = bool(self.controller and self.controller.wait_realized(rev, timeout))
        return {"revision": rev, "realized": ok}
