"""The OpenAPI 3 document of the REST API, generated from the same route table it serves."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

_STR = {"type": "string"}
_INT = {"type": "integer"}

SCHEMAS: dict[str, dict[str, Any]] = {
    "Endpoint": {"type": "object", "required": ["Container"], "properties": {
        "Container": _STR, "Host": _STR, "AttachUUID": _STR, "IpAddress": _STR}},
    "Network": {"type": "object", "required": ["Name"], "properties": {
        "Name": _STR, "PktTagType": {"type": "string", "enum": ["vlan", "vxlan"]},
        "PktTag": _INT, "SubnetCIDR": _STR, "DefaultGw": _STR,
        "Endpoints": {"type": "array", "items": {"$ref": "#/components/schemas/Endpoint"}}}},
    "Tenant": {"type": "object", "required": ["Name"], "properties": {
        "Name": _STR, "DefaultNetType": {"type": "string", "enum": ["vlan", "vxlan"]},
        "SubnetPool": _STR, "AllocSubnetLen": _INT, "Vlans": _STR, "Vxlans": _STR,
        "Networks": {"type": "array", "items": {"$ref": "#/components/schemas/Network"}}}},
    "Host": {"type": "object", "required": ["Name"], "properties": {
        "Name": _STR, "Intf": _STR, "VtepIp": _STR, "NetId": _STR}},
    "Config": {"type": "object", "properties": {
        "Hosts": {"type": "array", "items": {"$ref": "#/components/schemas/Host"}},
        "Tenants": {"type": "array", "items": {"$ref": "#/components/schemas/Tenant"}}}},
    "Bindings": {"type": "array", "items": {"type": "object", "required": ["Container", "Host"],
                                            "properties": {"Container": _STR, "Host": _STR,
                                                           "AttachUUID": _STR}}},
    "Errors": {"type": "object", "properties": {
        "errors": {"type": "array", "items": _STR}}},
}

_REASONS = {200: "OK", 201: "Created", 400: "Invalid request", 401: "Missing or wrong token",
            404: "Unknown object", 409: "Conflict (duplicate, in use, pool exhausted)"}
_QUERY = {
    "wait": "Seconds to wait until every connected switch realized the written revision",
    "mode": "desired | add | delete", "revision": "Store revision to wait for",
    "timeout": "Seconds to wait at most",
}


def _params(route: Any) -> list[dict]:
    out = [{"name": p, "in": "path", "required": True, "schema": _STR}
           for p in re.findall(r"\{(\w+)\}", route.path)]
    names = []
    if route.method in ("POST", "DELETE"):
        names.append("wait")
    if route.handler == "post_config":
        names.append("mode")
    if route.handler == "wait":
        names += ["revision", "timeout"]
    out += [{"name": n, "in": "query", "required": n == "revision",
             "description": _QUERY[n], "schema": {"type": "number"}
             if n in ("wait", "timeout", "revision") else _STR} for n in names]
    return out


def document(routes: Iterable[Any], prefix: str) -> dict:
    """An OpenAPI 3.0 document describing ``routes`` under ``prefix``."""
    paths: dict[str, dict] = {}
    for r in routes:
        op: dict[str, Any] = {"operationId": r.handler, "summary": r.summary,
                              "parameters": _params(r), "responses": {}}
        op["responses"][str(r.ok)] = {"description": _REASONS[r.ok], "content": {
            "application/json": {"schema": {}}}}
        codes = set(r.errors) | ({401} if r.handler != "openapi" else set())
        for code in sorted(codes):
            op["responses"][str(code)] = {"description": _REASONS[code], "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/Errors"}}}}
        if r.body:
            op["requestBody"] = {"required": True, "content": {"application/json": {
                "schema": {"$ref": f"#/components/schemas/{r.body}"}}}}
        if r.handler == "openapi":
            op["security"] = []
        paths.setdefault(prefix + r.path, {})[r.method.lower()] = op
    return {
        "openapi": "3.0.3",
        "info": {"title": "netplugin controller", "version": "1"},
        "paths": paths,
        "components": {"schemas": SCHEMAS, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"}}},
        "security": [{"bearer": []}],
    }
