"""The OpenAPI 3 document of the REST API, generated from the same route table it serves."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from ryu_apps.rest_input import PATH_PARAMS, QUERY

# What the loader (intent.loader) accepts: keys case-insensitively; null or "" for an optional
# value means "not given"; integers also as digit strings; network types in any case.
_STR = {"type": "string", "nullable": True}
_REQUIRED = {"type": "string", "minLength": 1}
_INT = {"anyOf": [{"type": "integer", "nullable": True},
                  {"type": "string", "pattern": "^\\s*[0-9]*\\s*$"}]}
_RANGES = {"anyOf": [{"type": "string", "nullable": True}, {"type": "integer"}]}
_NET_TYPE = {"type": "string", "nullable": True,
             "pattern": "^\\s*([vV][lL][aA][nN]|[vV][xX][lL][aA][nN])?\\s*$"}


def _list(item: str) -> dict[str, Any]:
    return {"type": "array", "nullable": True, "items": {"$ref": f"#/components/schemas/{item}"}}


SCHEMAS: dict[str, dict[str, Any]] = {
    "Endpoint": {"type": "object", "required": ["Container"], "properties": {
        "Container": _REQUIRED, "Host": _STR, "AttachUUID": _STR, "IpAddress": _STR,
        "EndpointGroup": _STR, "Reserved": {"type": "boolean", "nullable": True}}},
    "Ipam": {"anyOf": [
        {"type": "string", "enum": ["builtin"]},
        {"type": "object", "nullable": True, "properties": {
            "Type": {"type": "string", "enum": ["builtin", "cni"]}, "Plugin": _STR,
            "Config": {"type": "object", "nullable": True},
            "Hosts": {"type": "object", "nullable": True,
                      "additionalProperties": {"type": "object"}}}}]},
    "Rule": {"type": "object", "required": ["Id", "Priority", "Direction", "Action"],
             "properties": {
                 "Id": _INT, "Priority": _INT, "Direction": {"type": "string",
                                                           "enum": ["in", "out"]},
                 "Action": {"type": "string", "enum": ["allow", "deny"]},
                 "FromEndpointGroup": _STR, "FromNetwork": _STR, "FromIpAddress": _STR,
                 "ToEndpointGroup": _STR, "ToNetwork": _STR, "ToIpAddress": _STR,
                 "Protocol": {"anyOf": [{"type": "string", "nullable": True},
                                        {"type": "integer"}]},
                 "Port": {"anyOf": [{"type": "string", "nullable": True},
                                    {"type": "integer"}]}}},
    "Policy": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "Rules": _list("Rule")}},
    "EndpointGroup": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "Policies": {"type": "array", "nullable": True,
                                        "items": {"type": "string"}}}},
    "Router": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "Networks": {"type": "array", "nullable": True,
                                        "items": {"type": "string"}},
        "ExternalNetwork": _STR, "ExternalIp": _STR, "GatewayHost": _STR}},
    "EndpointPatch": {"type": "object", "required": ["EndpointGroup"], "properties": {
        "EndpointGroup": _STR}},
    "QosProfile": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "Bandwidth": {"anyOf": [{"type": "string", "nullable": True},
                                                   {"type": "integer"}]},
        "Burst": _INT, "Dscp": _INT}},
    "Multicast": {"type": "object", "nullable": True, "properties": {
        "Snooping": {"type": "boolean"}, "Groups": {"type": "array", "items": {
            "type": "object", "required": ["Address"], "properties": {
                "Address": _REQUIRED, "Receivers": {"type": "array",
                                                    "items": {"type": "string"}}}}}}},
    "Network": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "PktTagType": _NET_TYPE, "PktTag": _INT, "SubnetCIDR": _STR,
        "DefaultGw": _STR, "Endpoints": _list("Endpoint"), "QosProfile": _STR,
        "Multicast": {"$ref": "#/components/schemas/Multicast"},
        "Ipam": {"$ref": "#/components/schemas/Ipam"}, "Reserved": _STR}},
    "Tenant": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "DefaultNetType": _NET_TYPE, "SubnetPool": _STR,
        "AllocSubnetLen": _INT, "Vlans": _RANGES, "Vxlans": _RANGES,
        "Networks": _list("Network"), "EndpointGroups": _list("EndpointGroup"),
        "Policies": _list("Policy"), "Routers": _list("Router"),
        "QosProfiles": _list("QosProfile")}},
    "Host": {"type": "object", "required": ["Name"], "properties": {
        "Name": _REQUIRED, "Intf": _STR, "VtepIp": _STR, "NetId": _STR}},
    "Config": {"type": "object", "properties": {"Hosts": _list("Host"),
                                                "Tenants": _list("Tenant")}},
    "Bindings": {"type": "array", "items": {"type": "object", "required": ["Container", "Host"],
                                            "properties": {"Container": _REQUIRED,
                                                           "Host": _REQUIRED,
                                                           "AttachUUID": _STR}}},
    "Errors": {"type": "object", "required": ["errors"], "additionalProperties": False,
               "properties": {"errors": {"type": "array", "minItems": 1,
                                         "items": {"type": "string", "minLength": 1}}}},
}

_REASONS = {200: "OK", 201: "Created", 400: "Invalid request (body, path name or query "
            "parameter)", 401: "Missing or wrong token", 404: "Unknown object",
            405: "Method not allowed", 409: "Conflict (duplicate, in use, pool exhausted)",
            413: "Request body over the limit", 500: "Internal error (with a reference id)",
            503: "Intent store unavailable (see Retry-After)"}


def _params(route: Any) -> list[dict]:
    out = []
    for p in re.findall(r"\{(\w+)\}", route.path):
        spec = PATH_PARAMS[p]
        out.append({"name": p, "in": "path", "required": True, "description": spec.what,
                    "schema": {"type": "string", "pattern": f"^{spec.pattern}$",
                               "maxLength": spec.max_length}})
    out += [{"name": n, "in": "query", "required": QUERY[n].required,
             "description": QUERY[n].description, "schema": QUERY[n].schema()}
            for n in route.query]
    return out


def document(routes: Iterable[Any], prefix: str) -> dict:
    """An OpenAPI 3.0 document describing ``routes`` under ``prefix``."""
    paths: dict[str, dict] = {}
    for r in routes:
        op: dict[str, Any] = {"operationId": r.handler, "summary": r.summary,
                              "parameters": _params(r), "responses": {}}
        op["responses"][str(r.ok)] = {"description": _REASONS[r.ok], "content": {
            "application/json": {"schema": {}}}}
        codes = set(r.errors) | ({401, 503} if r.handler != "openapi" else set()) | {500}
        if r.query or "{" in r.path:
            codes.add(400)
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
