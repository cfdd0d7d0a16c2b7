"""Planning of endpoints in networks whose addresses a CNI IPAM plugin gives (a mixin of
:class:`allocator.plan.Planner`).

Such an endpoint without a static ``IpAddress`` is *pending*: its resolved state has no address
(``ip ""``: the controller programs nothing for it) and ``alloc/delegated/<net>/<ep>`` lists it
among the network's endpoints.  When its host has obtained an address from the plugin, a write
records it (:attr:`allocator.merge.Delta.delegated`): the address is claimed through the same
owner key as an allocated one (``alloc/ip/<net>/<ip>``), so an address another endpoint of the
network holds is refused, naming both.  Giving it back makes the endpoint pending again.
"""

from __future__ import annotations

from typing import Any

from allocator.pools import ip_int, ip_str, mac_for_int, subnet_bounds
from allocator.reads import UNKNOWN, owner_of
from intent import codec, keys
from intent.ipam_doc import reserved_end, reserved_ranges
from intent.model import EndpointSpec

NOT_GIVEN: Any = object()


class IpamPlanning:
    """Mixin: needs the Planner's ``d``, ``r``, ``problems``, ``taken``, ``_lookup``, ``_put``,
    ``_delete``, ``_claim``, ``_release``, ``_endpoint_keys``."""

    d: Any
    r: Any
    problems: list[str]
    taken: dict[str, set[int]]
    released: dict[str, set[int]]

    def delegated_endpoint(self, item) -> None:
        """Plan an endpoint of a delegating network that has no static address."""
        ep, old, net, spec, label = item
        given = self.d.delegated.get(ep.id, NOT_GIVEN)
        if spec.ipam is None:
            self.problems.append(f'{label}: network "{spec.name}" takes no addresses from an '
                                 f"IPAM plugin (its Ipam is builtin)")
            return
        same_net = old is not None and old.network == spec.name
        if given is NOT_GIVEN:
            if same_net and old.ip:
                ip = self._kept(*item)  # type: ignore[attr-defined]
                if ip is not None:
                    self._endpoint_keys(item, ip)
                    return
            self.pending_endpoint(item)
            return
        if given is None:
            self.pending_endpoint(item)
            return
        ip = self._delegated_ip(given, ep, net, spec, label)
        if ip is None:
            return
        taken = self.taken.setdefault(spec.name, set())
        kv = self._lookup(keys.alloc_ip(spec.name, ip_str(ip)))
        if kv is UNKNOWN:
            return
        owner = owner_of(kv)
        if (owner not in (None, ep.id) and ip not in self.released.get(spec.name, ())) or \
                ip in taken:
            self.problems.append(
                f'{label}: address {ip_str(ip)} from IPAM plugin "{spec.ipam.plugin}" is used '
                f'by endpoint "{owner or "another endpoint of this write"}" in network '
                f'"{spec.name}"')
            return
        claimed = self._claim(spec.name, ip, ep, label, old)  # type: ignore[attr-defined]
        if claimed is not None:
            self._delete(keys.alloc_delegated(spec.name, ep.id))
            self._endpoint_keys(item, claimed)

    def _delegated_ip(self, given: str, ep, net, spec, label: str) -> int | None:
        first, last = subnet_bounds(spec.subnet)
        try:
            ip = ip_int(given)
        except ValueError:
            ip = -1
        plugin = f'IPAM plugin "{spec.ipam.plugin}"'
        if not first < ip < last:
            self.problems.append(f'{label}: address {given} from {plugin} is not a host address '
                                 f'of network "{spec.name}" ({spec.subnet})')
        elif given == spec.gateway:
            self.problems.append(f'{label}: address {given} from {plugin} is the gateway of '
                                 f'network "{spec.name}"')
        elif reserved_end(reserved_ranges(net.reserved), ip) is not None:
            self.problems.append(f'{label}: address {given} from {plugin} is in the Reserved '
                                 f'ranges of network "{spec.name}" ({net.reserved})')
        else:
            return ip
        return None

    def pending_endpoint(self, item) -> None:
        """The endpoint waits for its address (any address it held is given back)."""
        ep, old, _net, spec, _label = item
        if old is not None:
            self.release_endpoint(old)
        self._endpoint_keys(item, None, pending=True)
        self._put(keys.alloc_delegated(spec.name, ep.id), codec.dumps({"owner": ep.id}))

    def release_endpoint(self, old: EndpointSpec) -> None:
        """Give back what ``old`` (the stored state) holds: its address or its pending key."""
        if old.ip:
            self._release(old.network, old.ip)  # type: ignore[attr-defined]
        else:
            self._delete(keys.alloc_delegated(old.network, old.id))


def address_fields(ip: int | None) -> tuple[str, str]:
    """(ip, mac) of an endpoint's state: ``("", "")`` while pending."""
    return ("", "") if ip is None else (ip_str(ip), mac_for_int(ip))


