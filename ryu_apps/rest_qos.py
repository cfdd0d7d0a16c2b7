"""REST routes of QoS profiles and of a network's multicast (a mixin of
:class:`ryu_apps.rest.RestApi`).

Profiles are shown as the intent document writes them (``Name``, ``Bandwidth`` in kbit/s,
``Burst``, ``Dscp``), so what ``GET`` answers can be posted back.  ``PUT`` replaces a profile
(it must exist; the meters of its users are modified in place).  A network's multicast is
written through the network object; ``GET .../multicast`` shows the declared groups and the
receivers learned by IGMP snooping, per host.
"""

from __future__ import annotations

from typing import Any

from allocator import write as apply
from intent import keys
from intent.codec import loads
from intent.errors import ValidationError
from intent.loader import load_document
from intent.model import Config, EndpointSpec, NetworkConfig, QosProfileConfig, TenantConfig
from netdcli.show import profile_view


class QosRoutes:
    """Handlers; needs the RestApi's ``store``, ``_read``, ``_stored`` and ``_written``."""

    store: Any

    def list_qos_profiles(self, call, tenant: str) -> list:
        self._stored(keys.tenant(tenant), TenantConfig, "tenant", tenant)
        values = self._read(prefixes=[keys.qos_profile(tenant, "")])
        return [profile_view(loads(QosProfileConfig, v)) for _k, v in sorted(values.items())]

    def get_qos_profile(self, call, tenant: str, qosprofile: str) -> dict:
        return profile_view(self._stored(keys.qos_profile(tenant, qosprofile),
                                         QosProfileConfig, "QoS profile",
                                         f"{tenant}/{qosprofile}"))

    def create_qos_profile(self, call, tenant: str) -> dict:
        self._stored(keys.tenant(tenant), TenantConfig, "tenant", tenant)
        doc = load_document({"Tenants": [{"Name": tenant, "QosProfiles": [call.body]}]})
        name = doc.tenants[0].qos_profiles[0].name
        return self._written(call, apply.apply_config(
            self.store, doc, "add", create_only=frozenset({("QoS profile", f"{tenant}/{name}")}),
            paths=False))

    def put_qos_profile(self, call, tenant: str, qosprofile: str) -> dict:
        """Replace an existing profile (values the body leaves out are unset)."""
        self.get_qos_profile(call, tenant, qosprofile)
        body = call.body if isinstance(call.body, dict) else {}
        if str(body.get("Name", qosprofile)) != qosprofile:
            raise ValidationError(f'Name "{body.get("Name")}": the path names profile '
                                  f'"{qosprofile}"')
        doc = load_document({"Tenants": [{"Name": tenant, "QosProfiles": [
            {**body, "Name": qosprofile}]}]})
        return self._written(call, apply.apply_config(self.store, doc, "add", paths=False))

    def delete_qos_profile(self, call, tenant: str, qosprofile: str) -> dict:
        self.get_qos_profile(call, tenant, qosprofile)
        doc = Config(tenants=(TenantConfig(tenant, qos_profiles=(
            QosProfileConfig(qosprofile, tenant),)),))
        return self._written(call, apply.apply_config(self.store, doc, "delete", paths=False))

    def get_multicast(self, call, network: str) -> dict:
        net = self._stored(keys.network(network), NetworkConfig, "network", network)
        values = self._read(prefixes=[keys.mcast_member(network, "", "")[:-1]])
        learned: dict[str, dict[str, list[str]]] = {}
        hosts: dict[str, str | None] = {}
        for k in sorted(values):
            _n, address, eid = keys.mcast_member_parts(k)
            if eid not in hosts:
                spec = self._read([keys.state_endpoint(eid)]).get(keys.state_endpoint(eid))
                hosts[eid] = loads(EndpointSpec, spec).host if spec else None
            learned.setdefault(address, {}).setdefault(hosts[eid] or "", []).append(eid)
        mc = net.multicast
        declared = {g.address: sorted(g.receivers) for g in (mc.groups if mc else ())}
        return {"Network": network, "Snooping": bool(mc and mc.snooping),
                "Groups": [{"Address": a, "Declared": declared.get(a, []),
                            "Learned": learned.get(a, {})}
                           for a in sorted(set(declared) | set(learned))]}


__all__ = ["QosRoutes", "profile_view"]
