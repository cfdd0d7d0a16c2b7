"""REST routes of routers (a mixin of :class:`ryu_apps.rest.RestApi`).

Shown as the intent document writes them (``Name``, ``Networks``, ``ExternalNetwork``,
``ExternalIp``, ``GatewayHost``) with the allocated ``Id`` and, for an external router, the
``GatewayMac`` the controller learnt; ``GET`` answers can be posted back.  Writes accept ``?wait``.
"""

from __future__ import annotations

import json
from typing import Any

from allocator import write as apply
from intent import keys
from intent.codec import loads
from intent.errors import NotFoundError
from intent.loader import load_document
from intent.model import Config, RouterConfig, TenantConfig
from netdcli.show import router_view


class RouterRoutes:
    """Handlers; needs the RestApi's ``store``, ``_read``, ``_tenant_exists``, ``_written``."""

    store: Any

    def _router_view(self, r: RouterConfig, values: dict[str, str]) -> dict:
        spec = values.get(keys.state_router(r.tenant, r.name))
        gateway = values.get(keys.oper_gateway(r.tenant, r.name))
        return router_view(r, json.loads(spec) if spec else None,
                           json.loads(gateway) if gateway else None)

    def list_routers(self, call, tenant: str) -> list:
        self._tenant_exists(tenant)
        values = self._read(prefixes=[keys.router(tenant, ""), keys.state_router(tenant, ""),
                                      keys.oper_gateway(tenant, "")])
        return [self._router_view(loads(RouterConfig, v), values)
                for k, v in sorted(values.items()) if k.startswith(keys.CONFIG_ROUTERS)]

    def get_router(self, call, tenant: str, router: str) -> dict:
        values = self._read([keys.router(tenant, router), keys.state_router(tenant, router),
                             keys.oper_gateway(tenant, router)])
        if keys.router(tenant, router) not in values:
            raise NotFoundError(f'router "{router}" does not exist in tenant "{tenant}"')
        return self._router_view(loads(RouterConfig, values[keys.router(tenant, router)]),
                                 values)

    def create_router(self, call, tenant: str) -> dict:
        self._tenant_exists(tenant)
        doc = load_document({"Tenants": [{"Name": tenant, "Routers": [call.body]}]})
        name = doc.tenants[0].routers[0].name
        return self._written(call, apply.apply_config(
            self.store, doc, "add", create_only=frozenset({("router", f"{tenant}/{name}")}),
            paths=False))

    def delete_router(self, call, tenant: str, router: str) -> dict:
        self.get_router(call, tenant, router)
        doc = Config(tenants=(TenantConfig(tenant, routers=(RouterConfig(router, tenant),)),))
        return self._written(call, apply.apply_config(self.store, doc, "delete", paths=False))
