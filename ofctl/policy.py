"""Policy fragments: stateful ACLs between endpoint groups, networks and CIDRs.

In a network whose tenant has policies, IPv4 takes a longer path::

    0 CLASSIFY -> 15 SRC_GROUP (source address -> reg5 = source group, reg8 = its network)
               -> 16 DST_GROUP (destination address -> reg6 = its group, reg9 = its network)
               -> 20 EGRESS_CT (local origin: reg3 = zone, ct(zone=reg3) -> 21; else on)
               -> 21 EGRESS_POLICY (out rules of reg5's policies; allow commits) -> 25 L3
    30 L2 (local destination: reg7 = port, reg6 = group) -> 50 INGRESS_CT (ct -> 51)
               -> 51 INGRESS (in rules of reg6's policies; allow commits) -> output:reg7

Entries grow with rules + members: a member's entries (owned by the endpoint) load its group
id; a rule's entries (owned by the rule) match group ids - one per group that applies the
policy and per aligned block of its port range.  OpenFlow priority ``1000 + 2 * Priority``,
``+ 1`` for deny, so at equal rule priority deny wins and no two rules of different action
share a priority.  Replies and related packets of committed connections pass above every rule;
every other packet of a connection is judged again, so a policy change also stops established
connections that the new rules do not allow.  Traffic no rule matches is allowed and committed.
(OVS takes a ``ct`` action only in an entry that matches IP: every entry that commits does.)
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from intent.model import DENY, IN, PEER_GROUP, PEER_IP, PEER_NETWORK, PolicyConfig, RuleConfig
from ofctl import cookies
from ofctl.model import (
    ETH_IPV4,
    ApplyActions,
    Ct,
    Flow,
    GotoTable,
    OutputReg,
    SetField,
    match,
)
from ofctl.pipeline import (
    DOMAIN_MASK,
    DOMAIN_SHIFT,
    DST_GROUP,
    EGRESS_CT,
    EGRESS_POLICY,
    INGRESS,
    INGRESS_CT,
    L3,
    NET_MASK,
    POLICY_TABLES,
    SRC_GROUP,
    miss_flows,
)

PRIO = 100
RULE_BASE = 1000
PASS_PRIO = 2000
REG_ZONE, REG_SRC, REG_DST, REG_PORT = "reg3", "reg5", "reg6", "reg7"
REG_SRC_NET, REG_DST_NET = "reg8", "reg9"  # network ids, for FromNetwork / ToNetwork
CT_TRK, CT_REL, CT_RPL = 0x20, 0x04, 0x08
PROTO_NUMBERS = {"tcp": 6, "udp": 17, "icmp": 1}
PORT_FIELDS = {"tcp": "tcp_dst", "udp": "udp_dst"}


class PolicyWorld(Protocol):
    """What policy producers look up (the engine implements it)."""

    def group_id(self, tenant: str, group: str) -> int | None: ...

    def appliers(self, tenant: str, policy: str) -> list[int]:
        """Ids of the groups of ``tenant`` that apply ``policy``."""

    def network_id_of(self, network: str) -> int | None: ...


def rule_priority(rule: RuleConfig) -> int:
    return RULE_BASE + 2 * rule.priority + (1 if rule.action == DENY else 0)


def port_blocks(lo: int, hi: int) -> list[tuple[int, int]]:
    """``[lo, hi]`` as aligned (value, mask) blocks (the fewest masked matches)."""
    out = []
    while lo <= hi:
        size = lo & -lo if lo else 1 << 16
        while size > hi - lo + 1:
            size >>= 1
        out.append((lo, 0xFFFF & ~(size - 1)))
        lo += size
    return out


def rule_owner(tenant: str, policy: str, rule_id: int) -> str:
    return f"{tenant}/{policy}/{rule_id}"


def rule_flows(w: PolicyWorld, tenant: str, policy: PolicyConfig, rule: RuleConfig) -> tuple:
    """The entries of one rule (on any host where its tenant has a network)."""
    appliers = w.appliers(tenant, policy.name)
    if not appliers:
        return ()
    peer: dict = {}
    if rule.peer_kind == PEER_GROUP:
        gid = w.group_id(tenant, rule.peer or "")
        if gid is None:
            return ()
        peer[REG_SRC if rule.direction == IN else REG_DST] = gid
    elif rule.peer_kind == PEER_NETWORK:
        nid = w.network_id_of(rule.peer or "")
        if nid is None:
            return ()
        peer[REG_SRC_NET if rule.direction == IN else REG_DST_NET] = nid
    elif rule.peer_kind == PEER_IP:
        addr, length = (rule.peer or "0.0.0.0/0").split("/")
        mask = (0xFFFFFFFF << (32 - int(length))) & 0xFFFFFFFF
        peer["ipv4_src" if rule.direction == IN else "ipv4_dst"] = (addr, mask)
    proto: dict = {}
    if rule.protocol:
        proto["ip_proto"] = PROTO_NUMBERS.get(rule.protocol) or int(rule.protocol)
    blocks: list[dict] = [{}]
    if rule.port_lo is not None and rule.protocol in PORT_FIELDS:
        field = PORT_FIELDS[rule.protocol]
        blocks = [{field: (v, m) if m != 0xFFFF else v}
                  for v, m in port_blocks(rule.port_lo, rule.port_hi or rule.port_lo)]
    table, member = (INGRESS, REG_DST) if rule.direction == IN else (EGRESS_POLICY, REG_SRC)
    if rule.action == DENY:
        instr: tuple = ()
    elif rule.direction == IN:
        instr = (ApplyActions((Ct(commit=True, zone_src=REG_ZONE), OutputReg(REG_PORT))),)
    else:
        instr = (ApplyActions((Ct(commit=True, zone_src=REG_ZONE),)), GotoTable(L3))
    cookie = cookies.cookie_for(cookies.RULE, rule_owner(tenant, policy.name, rule.id))
    prio = rule_priority(rule)
    return tuple(Flow(table, prio, match(eth_type=ETH_IPV4, **{member: gid}, **peer, **proto,
                                         **ports), instr, cookie)
                 for gid in sorted(set(appliers)) for ports in blocks)


def policy_pipeline(cookie: int) -> tuple[Flow, ...]:
    """Entries of the policy tables every host with a policy network holds."""
    reply = (CT_RPL | CT_TRK, CT_RPL | CT_TRK)
    related = (CT_REL | CT_TRK, CT_REL | CT_TRK)
    commit_on = (ApplyActions((Ct(commit=True, zone_src=REG_ZONE),)), GotoTable(L3))
    commit_out = (ApplyActions((Ct(commit=True, zone_src=REG_ZONE), OutputReg(REG_PORT))),)
    return tuple(miss_flows(cookie, POLICY_TABLES)) + (
        Flow(EGRESS_POLICY, PASS_PRIO, match(ct_state=reply), (GotoTable(L3),), cookie),
        Flow(EGRESS_POLICY, PASS_PRIO, match(ct_state=related), (GotoTable(L3),), cookie),
        Flow(EGRESS_POLICY, 1, match(eth_type=ETH_IPV4), commit_on, cookie),
        Flow(INGRESS_CT, 1, (), (ApplyActions((OutputReg(REG_PORT),)),), cookie),
        Flow(INGRESS, PASS_PRIO, match(ct_state=reply), (ApplyActions((OutputReg(REG_PORT),)),),
             cookie),
        Flow(INGRESS, PASS_PRIO, match(ct_state=related),
             (ApplyActions((OutputReg(REG_PORT),)),), cookie),
        Flow(INGRESS, 1, match(eth_type=ETH_IPV4), commit_out, cookie))


def network_ct_flows(nid: int, zone: int, cookie: int) -> tuple[Flow, ...]:
    """A policy network's conntrack entries: its zone, then the lookup, before each stage."""
    from ofctl.pipeline import META_MASK

    load = SetField(REG_ZONE, zone)
    return (
        Flow(EGRESS_CT, PRIO, match(metadata=(nid, META_MASK), eth_type=ETH_IPV4),
             (ApplyActions((load, Ct(zone_src=REG_ZONE, table=EGRESS_POLICY))),), cookie),
        Flow(INGRESS_CT, PRIO, match(metadata=(nid, NET_MASK), eth_type=ETH_IPV4),
             (ApplyActions((load, Ct(zone_src=REG_ZONE, table=INGRESS))),), cookie))


def member_flows(nid: int, ip: str, gid: int, cookie: int, domain: int = 0
                 ) -> tuple[Flow, ...]:
    """An endpoint's group (0: none) and network, by source and by destination address, on
    every host where its network (or, routed, its router's domain) is.  Keyed by the routing
    domain for a routed network (routed traffic arrives in the destination's network)."""
    key = (domain << DOMAIN_SHIFT, DOMAIN_MASK) if domain else (nid, NET_MASK)
    return (
        Flow(SRC_GROUP, PRIO, match(metadata=key, eth_type=ETH_IPV4, ipv4_src=ip),
             (ApplyActions((SetField(REG_SRC, gid), SetField(REG_SRC_NET, nid))),
              GotoTable(DST_GROUP)), cookie),
        Flow(DST_GROUP, PRIO, match(metadata=key, eth_type=ETH_IPV4, ipv4_dst=ip),
             (ApplyActions((SetField(REG_DST, gid), SetField(REG_DST_NET, nid))),
              GotoTable(EGRESS_CT)), cookie))


def local_delivery(port: int, gid: int | None) -> tuple:
    """The L2 instructions for a local endpoint of a policy network."""
    acts = (SetField(REG_PORT, port), SetField(REG_DST, gid or 0))
    return (ApplyActions(acts), GotoTable(INGRESS_CT))


def policy_rules(policies: Iterable[PolicyConfig]) -> Iterable[tuple[PolicyConfig, RuleConfig]]:
    for p in policies:
        for r in p.rules or ():
            yield p, r
