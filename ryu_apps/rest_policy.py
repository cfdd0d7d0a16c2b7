"""REST routes of endpoint groups and policies (a mixin of :class:`ryu_apps.rest.RestApi`).

Objects are shown in the intent document's own style (``Name``, ``Rules`` with ``Id``,
``Priority``, ``Direction``, ``Action``, a ``From…``/``To…`` peer, ``Protocol``, ``Port``), so what
``GET`` answers can be posted back.  Every write goes through the write path and accepts
``?wait``.
"""

from __future__ import annotations

import json
from typing import Any

from allocator import write as apply
from intent import keys
from intent.codec import loads
from intent.errors import ConflictError, NotFoundError
from intent.loader import load_document
from intent.model import (
    IN,
    Config,
    EndpointConfig,
    EndpointGroupConfig,
    NetworkConfig,
    PolicyConfig,
    RuleConfig,
    TenantConfig,
)
from netdcli.show import group_view, policy_view


class PolicyRoutes:
    """Handlers; needs the RestApi's ``store``, ``_read``, ``_stored`` and ``_written``."""

    store: Any

    def _tenant_exists(self, tenant: str) -> None:
        self._stored(keys.tenant(tenant), TenantConfig, "tenant", tenant)

    # ------------------------------------------------------------------ policies
    def list_policies(self, call, tenant: str) -> list:
        self._tenant_exists(tenant)
        values = self._read(prefixes=[keys.policy(tenant, "")])
        return [policy_view(loads(PolicyConfig, v)) for _k, v in sorted(values.items())]

    def get_policy(self, call, tenant: str, policy: str) -> dict:
        return policy_view(self._stored(keys.policy(tenant, policy), PolicyConfig, "policy",
                                        f"{tenant}/{policy}"))

    def create_policy(self, call, tenant: str) -> dict:
        self._tenant_exists(tenant)
        doc = load_document({"Tenants": [{"Name": tenant, "Policies": [call.body]}]})
        name = doc.tenants[0].policies[0].name
        return self._written(call, apply.apply_config(
            self.store, doc, "add", create_only=frozenset({("policy", f"{tenant}/{name}")}),
            paths=False))

    def delete_policy(self, call, tenant: str, policy: str) -> dict:
        self.get_policy(call, tenant, policy)
        doc = Config(tenants=(TenantConfig(tenant, policies=(PolicyConfig(policy, tenant),)),))
        return self._written(call, apply.apply_config(self.store, doc, "delete", paths=False))

    def add_rule(self, call, tenant: str, policy: str) -> dict:
        current = self._stored(keys.policy(tenant, policy), PolicyConfig, "policy",
                               f"{tenant}/{policy}")
        doc = load_document({"Tenants": [{"Name": tenant, "Policies": [
            {"Name": policy, "Rules": [call.body]}]}]})
        rule = doc.tenants[0].policies[0].rules[0]
        if any(r.id == rule.id for r in current.rules or ()):
            raise ConflictError(f'rule {rule.id} exists already in policy "{policy}" (delete '
                                f"it first, or give another Id)")
        return self._written(call, apply.apply_config(self.store, doc, "add", paths=False))

    def delete_rule(self, call, tenant: str, policy: str, rule: str) -> dict:
        rid = int(rule)
        doc = Config(tenants=(TenantConfig(tenant, policies=(PolicyConfig(policy, tenant, (
            RuleConfig(rid, 0, IN, "deny"),)),)),))
        return self._written(call, apply.apply_config(self.store, doc, "delete", paths=False))

    # ------------------------------------------------------------------ endpoint groups
    def list_groups(self, call, tenant: str) -> list:
        self._tenant_exists(tenant)
        values = self._read(prefixes=[keys.group(tenant, ""), keys.state_group(tenant, ""),
                                      keys.members(tenant, "")])
        out = []
        for k, v in sorted(values.items()):
            if k.startswith(keys.CONFIG_GROUPS):
                g = loads(EndpointGroupConfig, v)
                out.append(self._group_view(g, values))
        return out

    def _group_view(self, g: EndpointGroupConfig, values: dict[str, str]) -> dict:
        spec = values.get(keys.state_group(g.tenant, g.name))
        members = values.get(keys.members(g.tenant, g.name))
        return group_view(g, json.loads(spec) if spec else None,
                          json.loads(members) if members else None)

    def get_group(self, call, tenant: str, group: str) -> dict:
        values = self._read([keys.group(tenant, group), keys.state_group(tenant, group),
                             keys.members(tenant, group)])
        if keys.group(tenant, group) not in values:
            raise NotFoundError(f'endpoint group "{group}" does not exist in tenant "{tenant}"')
        return self._group_view(loads(EndpointGroupConfig, values[keys.group(tenant, group)]),
                                values)

    def create_group(self, call, tenant: str) -> dict:
        self._tenant_exists(tenant)
        doc = load_document({"Tenants": [{"Name": tenant, "EndpointGroups": [call.body]}]})
        name = doc.tenants[0].endpoint_groups[0].name
        return self._written(call, apply.apply_config(
            self.store, doc, "add",
            create_only=frozenset({("endpoint group", f"{tenant}/{name}")}), paths=False))

    def delete_group(self, call, tenant: str, group: str) -> dict:
        self.get_group(call, tenant, group)
        doc = Config(tenants=(TenantConfig(tenant, endpoint_groups=(
            EndpointGroupConfig(group, tenant),)),))
        return self._written(call, apply.apply_config(self.store, doc, "delete", paths=False))

    # ------------------------------------------------------------------ membership
    def patch_endpoint(self, call, id: str) -> dict:  # noqa: A002 - route parameter
        """Move an endpoint into a group (``{"EndpointGroup": "web"}``) or out (``null``)."""
        ep = self._stored(keys.endpoint(id), EndpointConfig, "endpoint", id)
        net = self._stored(keys.network(ep.network), NetworkConfig, "network", ep.network)
        doc = load_document({"Tenants": [{"Name": net.tenant, "Networks": [{
            "Name": net.name, "Endpoints": [{"Container": ep.container,
                                             "EndpointGroup": call.body.get("EndpointGroup")}]
        }]}]})
        return self._written(call, apply.apply_config(self.store, doc, "add", paths=False))
