"""The REST northbound API (webob WSGI, ``/api/v1``): intent CRUD, hosts, desired flows, OpenAPI.

Writes go through ``allocator.write`` (each reads only the objects it names and commits
all-or-nothing).
Errors are JSON ``{"errors": [...]}`` with 400 (invalid: body, path name, query parameter), 401
(missing/wrong bearer token when one is configured), 404 (unknown), 405, 409 (conflict/pool
exhausted), 413 (body over the limit), 503 with ``Retry-After`` (store unreachable) and 500
("internal error" with a reference id; the traceback goes to the log only).  Every write accepts
``?wait=SECONDS``: the answer then comes once every connected switch realized the new revision.
What a request may carry is declared in :mod:`ryu_apps.rest_input`.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from webob import Request, Response

from allocator import write as apply
from intent import keys
from intent.codec import loads
from intent.consistent import read_consistent
from intent.errors import IntentError, NotFoundError, ValidationError
from intent.jsontext import MAX_DEPTH
from intent.loader import load_bindings, load_config, load_document
from intent.logfmt import logline
from intent.model import EndpointConfig, EndpointSpec, NetworkConfig, NetworkSpec, TenantConfig
from intent.realized import realized_in
from intent.store import Store, StoreUnavailable
from ryu_apps.rest_input import (
    MAX_BODY,
    HttpError,
    path_params,
    query_params,
    read_body,
    show,
)
from ryu_apps.rest_policy import PolicyRoutes
from ryu_apps.rest_qos import QosRoutes
from ryu_apps.rest_router import RouterRoutes
from ryu_apps.rest_trace import TraceRoutes

LOG = logging.getLogger(__name__)
PREFIX = "/api/v1"
METRICS = "/metrics"  # Prometheus text format, outside the versioned API
ROUTE_KEY = "netplugin.route"  # environ slot: the route template a request matched
METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
RETRY_AFTER = 2  # seconds, in a 503's Retry-After


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
    query: tuple[str, ...] = ()  # names in ryu_apps.rest_input.QUERY

    @property
    def regex(self) -> re.Pattern:
        return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", self.path) + "$")


W = (400, 404, 409)
BODY_WRITE = W + (413,)
WAIT = ("wait",)
ROUTES: tuple[Route, ...] = (
    Route("GET", "/openapi.json", "openapi", "This document"),
    Route("POST", "/config", "post_config", "Apply a whole intent document (?mode=add, the "
          "default, like netdcli -add-cfg; ?mode=desired like -cfg: deletes what the document "
          "does not have; ?mode=delete like -del-cfg)", "Config", 200, BODY_WRITE,
          ("mode", "wait")),
    Route("GET", "/tenants", "list_tenants", "List tenants"),
    Route("POST", "/tenants", "create_tenant", "Create a tenant (with its networks)", "Tenant",
          201, BODY_WRITE, WAIT),
    Route("GET", "/tenants/{tenant}", "get_tenant", "Get a tenant", errors=(400, 404)),
    Route("DELETE", "/tenants/{tenant}", "delete_tenant", "Delete a tenant and its networks",
          errors=W, query=WAIT),
    Route("POST", "/tenants/{tenant}/networks", "create_network", "Create a network in a tenant",
          "Network", 201, BODY_WRITE, WAIT),
    Route("GET", "/networks", "list_networks", "List networks (config and allocated values)"),
    Route("GET", "/networks/{network}", "get_network", "Get a network", errors=(400, 404)),
    Route("DELETE", "/networks/{network}", "delete_network", "Delete a network", errors=W,
          query=WAIT),
    Route("POST", "/networks/{network}/endpoints", "create_endpoint", "Create an endpoint",
          "Endpoint", 201, BODY_WRITE, WAIT),
    Route("GET", "/endpoints", "list_endpoints", "List endpoints (resolved: IP, MAC, host)"),
    Route("GET", "/endpoints/{id}", "get_endpoint", "Get an endpoint", errors=(400, 404)),
    Route("DELETE", "/endpoints/{id}", "delete_endpoint", "Delete an endpoint", errors=W,
          query=WAIT),
    Route("POST", "/bindings", "post_bindings", "Bind endpoints to hosts late "
          "(like netdcli -host-bindings-cfg)", "Bindings", 200, BODY_WRITE, WAIT),
    Route("PATCH", "/endpoints/{id}", "patch_endpoint", "Move an endpoint into an endpoint "
          'group ({"EndpointGroup": "web"}) or out of its group ({"EndpointGroup": null})',
          "EndpointPatch", 200, BODY_WRITE, WAIT),
    Route("GET", "/tenants/{tenant}/policies", "list_policies", "List a tenant's policies",
          errors=(400, 404)),
    Route("POST", "/tenants/{tenant}/policies", "create_policy", "Create a policy (with its "
          "rules)", "Policy", 201, BODY_WRITE, WAIT),
    Route("GET", "/tenants/{tenant}/policies/{policy}", "get_policy", "Get a policy",
          errors=(400, 404)),
    Route("DELETE", "/tenants/{tenant}/policies/{policy}", "delete_policy", "Delete a policy "
          "(no endpoint group may still apply it)", errors=W, query=WAIT),
    Route("POST", "/tenants/{tenant}/policies/{policy}/rules", "add_rule", "Add a rule to a "
          "policy", "Rule", 201, BODY_WRITE, WAIT),
    Route("DELETE", "/tenants/{tenant}/policies/{policy}/rules/{rule}", "delete_rule",
          "Delete a rule of a policy by its id", errors=W, query=WAIT),
    Route("GET", "/tenants/{tenant}/endpointgroups", "list_groups",
          "List a tenant's endpoint groups (with their ids and member counts)",
          errors=(400, 404)),
    Route("POST", "/tenants/{tenant}/endpointgroups", "create_group", "Create an endpoint "
          "group", "EndpointGroup", 201, BODY_WRITE, WAIT),
    Route("GET", "/tenants/{tenant}/endpointgroups/{group}", "get_group",
          "Get an endpoint group", errors=(400, 404)),
    Route("DELETE", "/tenants/{tenant}/endpointgroups/{group}", "delete_group",
          "Delete an endpoint group (its members must go or move in the same write)",
          errors=W, query=WAIT),
    Route("GET", "/tenants/{tenant}/routers", "list_routers", "List a tenant's routers (with "
          "their ids and learnt gateway MACs)", errors=(400, 404)),
    Route("POST", "/tenants/{tenant}/routers", "create_router", "Create a router (its networks "
          "route to each other; optionally an external network through a physical gateway)",
          "Router", 201, BODY_WRITE, WAIT),
    Route("GET", "/tenants/{tenant}/routers/{router}", "get_router", "Get a router",
          errors=(400, 404)),
    Route("DELETE", "/tenants/{tenant}/routers/{router}", "delete_router", "Delete a router "
          "(its networks stop routing to each other)", errors=W, query=WAIT),
    # QoS profiles and multicast (issue 13)
    Route("GET", "/tenants/{tenant}/qosprofiles", "list_qos_profiles",
          "List a tenant's QoS profiles", errors=(400, 404)),
    Route("POST", "/tenants/{tenant}/qosprofiles", "create_qos_profile", "Create a QoS "
          "profile", "QosProfile", 201, BODY_WRITE, WAIT),
    Route("GET", "/tenants/{tenant}/qosprofiles/{qosprofile}", "get_qos_profile",
          "Get a QoS profile", errors=(400, 404)),
    Route("PUT", "/tenants/{tenant}/qosprofiles/{qosprofile}", "put_qos_profile",
          "Replace a QoS profile (its users' meters change in place)", "QosProfile", 200,
          BODY_WRITE, WAIT),
    Route("DELETE", "/tenants/{tenant}/qosprofiles/{qosprofile}", "delete_qos_profile",
          "Delete a QoS profile (nothing may still use it)", errors=W, query=WAIT),
    Route("GET", "/networks/{network}/multicast", "get_multicast",
          "A network's multicast: snooping, declared and learned receivers per group and host",
          errors=(400, 404)),
    Route("GET", "/hosts", "list_hosts", "Hosts with switch status, realized revision "
          "and the master controller of each switch"),
    Route("GET", "/hosts/{host}/flows", "host_flows",
          "The flows, groups and meters a host's switch should hold, each with its owner",
          errors=(400, 404)),
    Route("GET", "/hosts/{host}/audit", "host_audit",
          "Read the host's switch and list every difference from what it should hold "
          "(read-only; used by netdcli -audit)", errors=(400, 404)),
    Route("GET", "/trace", "trace", "Walk a packet from an endpoint (?from) to an address or "
          "endpoint (?to) through the desired tables of every host it reaches: each entry it "
          "matches with its owner, and where it is delivered or dropped (netdcli -trace)",
          errors=(400, 404, 409), query=("from", "to", "proto", "dport", "sport", "host")),
    Route("GET", "/problems", "problems", "Store values the controller cannot use (each "
          "quarantines only its own object: its last good value stays in force)"),
    Route("GET", "/wait", "wait", "Wait until every connected switch realized ?revision=R "
          "(?timeout=S)", errors=(400,), query=("revision", "timeout")),
)


def _json(status: int, data: Any) -> Response:
    return Response(status=status, content_type="application/json", charset="utf-8",
                    body=json.dumps(data, indent=1, sort_keys=True).encode() + b"\n")


def _body_stream(req: Request) -> Any:
    """The request body as a stream; a chunked one straight from the server (webob would see
    none without a length), which de-chunks it."""
    if req.content_length is None and "chunked" in req.headers.get("Transfer-Encoding", "").lower():
        return req.body_file_raw
    return req.body_file


def _expect(body: Any, kind: type, what: str) -> Any:
    """``body`` if it is a ``kind`` (the loaders read a bare string as a file path: never that)."""
    if not isinstance(body, kind):
        got = _JSON_TYPE.get(type(body), type(body).__name__)
        raise ValidationError(f"request body: expected {what}, got {got}")
    return body


_JSON_TYPE = {dict: "an object", list: "an array", str: "a string", int: "a number",
              float: "a number", bool: "true/false", type(None): "null"}


def _raw_path(req: Request) -> str:
    """The request path for a log line (undecoded: safe whatever its bytes)."""
    return repr(req.environ.get("PATH_INFO", ""))


@dataclass(frozen=True)
class Call:
    """What a handler gets: the request, its checked query parameters and its parsed body."""

    req: Request
    query: dict[str, Any]
    body: Any = None


def _plain(obj: Any) -> dict:
    d = dataclasses.asdict(obj)
    d.pop("networks", None)
    d.pop("endpoints", None)
    return d


class RestApi(PolicyRoutes, RouterRoutes, QosRoutes, TraceRoutes):
    """The WSGI application."""

    def __init__(self, store: Store, controller: Any = None, token: str | None = None,
                 wait_default: float = 0.0, max_body: int = MAX_BODY,
                 max_depth: int = MAX_DEPTH, metrics: Any = None) -> None:
        self.store = store
        self.metrics = metrics  # a ryu_apps.metrics.ControllerMetrics, or None
        self.controller = controller
        self._token = token
        self.wait_default = wait_default
        self.max_body = max_body
        self.max_depth = max_depth

    # ------------------------------------------------------------------ WSGI plumbing

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        return self.handle(Request(environ))(environ, start_response)

    def handle(self, req: Request) -> Response:
        """Dispatch one request; every answer is JSON, every error ``{"errors": [...]}``
        (``/metrics``: Prometheus text).  Counted by route template, method and status."""
        resp = self._handle(req)
        if self.metrics is not None:
            self.metrics.rest_request(req.environ.get(ROUTE_KEY, "unmatched"),
                                      req.method if req.method in METHODS else "other",
                                      resp.status_code)
        return resp

    def _handle(self, req: Request) -> Response:
        try:
            return self._dispatch(req)
        except HttpError as exc:
            resp = _json(exc.status, {"errors": exc.problems})
            resp.headers.update(exc.headers)
            if exc.status == 401:
                resp.headers["WWW-Authenticate"] = 'Bearer realm="netplugin"'
            return resp
        except IntentError as exc:
            return _json(exc.http_status, {"errors": exc.problems})
        except StoreUnavailable as exc:
            LOG.warning("%s", logline("rest-store-unavailable", method=req.method,
                                      path=_raw_path(req), error=str(exc)))
            resp = _json(503, {"errors": [f"intent store unavailable: {exc}; try again later"]})
            resp.headers["Retry-After"] = str(RETRY_AFTER)
            return resp
        except Exception:  # noqa: BLE001 - answer, never drop the connection or leak a traceback
            ref = uuid.uuid4().hex[:12]
            LOG.exception("%s", logline("rest-error", method=req.method, path=_raw_path(req),
                                        reference=ref))
            return _json(500, {"errors": [f"internal error (reference {ref}); the details are "
                                          f"in the controller's log"]})

    def _dispatch(self, req: Request) -> Response:
        try:
            full = req.path
            raw_query = list(req.GET.items())
        except UnicodeDecodeError:
            raise HttpError(400, ["request URL: not UTF-8"]) from None
        if full == METRICS and self.metrics is not None:
            return self._metrics(req)
        if not full.startswith(PREFIX + "/"):
            raise HttpError(404, [f"no such resource: {show(full)}"])
        path = full[len(PREFIX):]
        allowed = []
        for route in ROUTES:
            m = route.regex.match(path)
            if not m:
                continue
            allowed.append(route.method)
            if route.method != req.method:
                continue
            req.environ[ROUTE_KEY] = PREFIX + route.path
            if route.handler != "openapi":
                self._authorize(req)
            path_params(m.groupdict())
            query = query_params(raw_query, route.query)
            body = None
            if route.body:
                body = read_body(_body_stream(req), req.content_length, route.body,
                                 self.max_body, self.max_depth)
            data = getattr(self, route.handler)(Call(req, query, body), **m.groupdict())
            if isinstance(data, Response):
                return data
            return _json(route.ok, data)
        if allowed:
            raise HttpError(405, [f"{req.method} not allowed on {show(full)}; "
                                  f"allowed: {', '.join(allowed)}"],
                            {"Allow": ", ".join(allowed)})
        raise HttpError(404, [f"no such resource: {show(full)}"])

    def _metrics(self, req: Request) -> Response:
        req.environ[ROUTE_KEY] = METRICS
        if req.method != "GET":
            raise HttpError(405, [f"{req.method} not allowed on {METRICS}; allowed: GET"],
                            {"Allow": "GET"})
        self._authorize(req)
        body, content_type = self.metrics.render()
        resp = Response(status=200, body=body)
        resp.headers["Content-Type"] = content_type
        return resp

    def _authorize(self, req: Request) -> None:
        if not self._token:
            return
        got = req.headers.get("Authorization", "")
        scheme, _, value = got.partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(
                value.strip().encode("utf-8", "surrogateescape"), self._token.encode()):
            # who knocked, never with what: neither the token nor the header is logged
            LOG.warning("%s %s from %s refused: %s bearer token", req.method, req.path,
                        req.remote_addr or "?", "wrong" if got else "no")
            raise HttpError(401, ["missing or wrong bearer token"])

    def _written(self, call: Call, result: apply.ApplyResult) -> dict:
        out = {"changed": result.changed, "revision": result.revision, "summary": result.summary}
        wait = call.query.get("wait")
        if wait is not None or self.wait_default:
            timeout = wait if wait is not None else self.wait_default
            out["realized"] = bool(self.controller and
                                   self.controller.wait_realized(result.revision, timeout))
        return out

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
        lists = (keys.alloc_ip_prefix(network), keys.alloc_delegated_prefix(network))
        return sorted(json.loads(v)["owner"] for k, v in values.items() if k.startswith(lists))

    # ------------------------------------------------------------------ handlers

    def openapi(self, call: Call) -> dict:
        from ryu_apps.openapi import document

        return document(ROUTES, PREFIX)

    def post_config(self, call: Call) -> dict:
        mode = call.query["mode"]
        body = _expect(call.body, dict, "an object (Config)")
        doc = load_config(body) if mode == "desired" else load_document(body)
        return self._written(call, apply.apply_config(self.store, doc, mode))

    def _tenant_view(self, t: TenantConfig, values: dict[str, str]) -> dict:
        idx = json.loads(values.get(keys.tenant_index(t.name)) or '{"networks": {}}')
        return dict(_plain(t), networks=sorted(idx.get("networks", {})))

    def list_tenants(self, call: Call) -> list:
        values = self._read(prefixes=[keys.CONFIG_TENANTS, keys.ALLOC_TENANT])
        return [self._tenant_view(t, values)
                for t in self._objects(values, keys.CONFIG_TENANTS, TenantConfig).values()]

    def get_tenant(self, call: Call, tenant: str) -> dict:
        values = self._read([keys.tenant(tenant), keys.tenant_index(tenant)])
        if keys.tenant(tenant) not in values:
            raise NotFoundError(f'tenant "{tenant}" does not exist')
        return self._tenant_view(loads(TenantConfig, values[keys.tenant(tenant)]), values)

    def create_tenant(self, call: Call) -> dict:
        new = load_document({"Tenants": [call.body]})
        t = new.tenants[0]
        return self._written(call, apply.apply_config(
            self.store, new, "add", create_only=frozenset({("tenant", t.name)}), paths=False))

    def delete_tenant(self, call: Call, tenant: str) -> dict:
        return self._written(call, apply.delete_object(self.store, "tenant", tenant))

    def create_network(self, call: Call, tenant: str) -> dict:
        self._stored(keys.tenant(tenant), TenantConfig, "tenant", tenant)
        doc = load_document({"Tenants": [{"Name": tenant, "Networks": [call.body]}]})
        net = doc.tenants[0].networks[0]
        return self._written(call, apply.apply_config(
            self.store, doc, "add", create_only=frozenset({("network", net.name)}),
            paths=False))

    def list_networks(self, call: Call) -> list:
        values = self._read(prefixes=[keys.CONFIG_NETWORKS, keys.STATE_NETWORKS,
                                      keys.CONFIG_ENDPOINTS])
        states = self._objects(values, keys.STATE_NETWORKS, NetworkSpec)
        members: dict[str, list[str]] = {}
        for e in self._objects(values, keys.CONFIG_ENDPOINTS, EndpointConfig).values():
            members.setdefault(e.network, []).append(e.id)
        return [self._network_view(n, states.get(n.name), sorted(members.get(n.name, [])))
                for n in self._objects(values, keys.CONFIG_NETWORKS, NetworkConfig).values()]

    def get_network(self, call: Call, network: str) -> dict:
        values = self._read([keys.network(network), keys.state_network(network)],
                            [keys.alloc_ip_prefix(network), keys.alloc_delegated_prefix(network)])
        if keys.network(network) not in values:
            raise NotFoundError(f'network "{network}" does not exist')
        state = values.get(keys.state_network(network))
        return self._network_view(loads(NetworkConfig, values[keys.network(network)]),
                                  loads(NetworkSpec, state) if state else None,
                                  self._network_endpoints(values, network))

    @staticmethod
    def _network_view(net: Any, state: NetworkSpec | None, endpoints: list[str]) -> dict:
        return dict(_plain(net), endpoints=endpoints, state=_plain(state) if state else None)

    def delete_network(self, call: Call, network: str) -> dict:
        return self._written(call, apply.delete_object(self.store, "network", network))

    def create_endpoint(self, call: Call, network: str) -> dict:
        # the body is checked as an endpoint of ``network`` (the tenant named here only frames
        # it); the write reads the network itself, not its tenant
        doc = load_document({"Tenants": [{"Name": "endpoint", "Networks": [{
            "Name": network, "Endpoints": [call.body]}]}]})
        ep = doc.tenants[0].networks[0].endpoints[0]
        copy = self.controller.mirror if self.controller is not None else None
        return self._written(call, apply.create_endpoints(self.store, [ep], copy=copy))

    def list_endpoints(self, call: Call) -> list:
        values = self._read(prefixes=[keys.STATE_ENDPOINTS, keys.OPER_ENDPOINTS])
        plugged = {keys.last_segment(k): json.loads(v) for k, v in values.items()
                   if k.startswith(keys.OPER_ENDPOINTS)}
        return [dict(_plain(e), oper=plugged.get(i))
                for i, e in self._objects(values, keys.STATE_ENDPOINTS, EndpointSpec).items()]

    def get_endpoint(self, call: Call, id: str) -> dict:  # noqa: A002 - route parameter
        values = self._read([keys.state_endpoint(id), keys.oper_endpoint(id)])
        if keys.state_endpoint(id) not in values:
            raise NotFoundError(f'endpoint "{id}" does not exist')
        oper = values.get(keys.oper_endpoint(id))
        return dict(_plain(loads(EndpointSpec, values[keys.state_endpoint(id)])),
                    oper=json.loads(oper) if oper else None)

    def delete_endpoint(self, call: Call, id: str) -> dict:  # noqa: A002
        return self._written(call, apply.delete_object(self.store, "endpoint", id))

    def post_bindings(self, call: Call) -> dict:
        return self._written(call, apply.apply_bindings(self.store, load_bindings(
            _expect(call.body, list, 'an array of {"Container", "Host", "AttachUUID"}'))))

    def list_hosts(self, call: Call) -> list:
        if self.controller is not None:
            rows = {h["name"]: h for h in self.controller.host_status()}
        else:
            rows = {}
        for kv in self.store.list(keys.OPER_HOSTS):
            name = keys.last_segment(kv.key)
            reg = json.loads(kv.value)
            rows.setdefault(name, {"name": name, "dpid": reg.get("dpid"),
                                   "vtep_ip": reg.get("vtep_ip"), "connected": False,
                                   **(self.controller.mastership(name) if self.controller
                                      else {})})
        snap = self.store.read(prefixes=[keys.OPER_REALIZED, keys.OPER_APPLIED])
        for name, rev in realized_in(snap).items():
            row = rows.get(name)
            if row is not None and row.get("realized_revision") is None:
                row["realized_revision"] = rev
        return [rows[k] for k in sorted(rows)]

    def host_flows(self, call: Call, host: str) -> dict:
        if self.controller is None or host not in self.controller.cache.hosts:
            raise NotFoundError(f'host "{host}" is not registered')
        ctl = self.controller
        state = ctl.desired(host)
        owner = ctl.describe
        flows = sorted(state.flows | {ctl.marker(host)},
                       key=lambda f: (f.table, -f.priority, repr(f.match)))
        return {
            "host": host, "revision": ctl.cache.revision,
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

    def host_audit(self, call: Call, host: str) -> dict:
        if self.controller is None or host not in self.controller.cache.hosts:
            raise NotFoundError(f'host "{host}" is not registered')
        from ryu_apps.audit import audit_host

        return audit_host(self.controller, host)

    def problems(self, call: Call) -> dict:
        """Store values the controller cannot use (each quarantines only its own object)."""
        found = dict(self.controller.cache.problems) if self.controller else {}
        return {"problems": [{"key": k, "problem": v} for k, v in sorted(found.items())]}

    def wait(self, call: Call) -> dict:
        rev, timeout = call.query["revision"], call.query["timeout"]
        ok = bool(self.controller and self.controller.wait_realized(rev, timeout))
        return {"revision": rev, "realized": ok}
