"""``netdcli -trace`` and ``GET /metrics`` on the real test bed.

Trace: for a matrix of allowed, isolated and policy-denied packets, the controller's simulated
walk (``netdcli -trace -json``) must agree with ``ovs-appctl ofproto/trace`` on the real switch
of every host the packet crosses: the same entries (table, cookie) in the same order, the same
output ports, drop where OVS drops.  Real pings back the verdicts a user sees.

Metrics: a scrape before and after an intent change; the values a user watches must move.
"""

from __future__ import annotations

import copy
import json
import re
import time
import urllib.request
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.system.conftest import free_port
from tests.system.scenario_bed import ScenarioBed, bed_fixtures, example, needs_bed

pytestmark = needs_bed

# the module's own bed; its containers stay for every test of the module
bed = bed_fixtures(Path("/tmp/ops16-bed"), free_port(), free_port(), free_port())[0]
DENIED = "policy rule tenant-one/web-in/1"

WEB_IN = {"Name": "web-in", "Rules": [
    {"Id": 1, "Priority": 1, "Direction": "in", "Action": "deny"},
    {"Id": 2, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app", "Protocol": "tcp",
     "Port": 80, "Action": "allow"},
    {"Id": 3, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app",
     "Protocol": "icmp", "Action": "allow"}]}
CONTAINERS = {"c1": "host1", "c4": "host1", "c6": "host1", "c2": "host2", "c3": "host2",
              "c5": "host2", "c7": "host2"}


def intent() -> dict:
    """orange (VXLAN, policy: web accepts only app), purple (VLAN) of tenant-one; blue of
    tenant-two on an overlapping subnet."""
    return {"Hosts": example("two_hosts_vxlan.json")["Hosts"], "Tenants": [
        {"Name": "tenant-one", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
         "AllocSubnetLen": 24, "Vxlans": "10001-14000", "Vlans": "300-310",
         "EndpointGroups": [{"Name": "web", "Policies": ["web-in"]}, {"Name": "app"}],
         "Policies": [copy.deepcopy(WEB_IN)],
         "Networks": [
             {"Name": "orange", "SubnetCIDR": "11.1.0.0/24", "Endpoints": [
                 {"Container": "c1", "Host": "host1", "EndpointGroup": "web"},
                 {"Container": "c2", "Host": "host2", "EndpointGroup": "app"},
                 {"Container": "c3", "Host": "host2"},
                 {"Container": "c6", "Host": "host1"}]},
             {"Name": "purple", "PktTagType": "vlan", "Endpoints": [
                 {"Container": "c4", "Host": "host1"}, {"Container": "c7", "Host": "host2"}]}]},
        {"Name": "tenant-two", "DefaultNetType": "vxlan", "SubnetPool": "11.1.0.0/16",
         "AllocSubnetLen": 24, "Vxlans": "14001-15000", "Networks": [
             {"Name": "blue", "SubnetCIDR": "11.1.0.0/24", "Endpoints": [
                 {"Container": "c5", "Host": "host2", "IpAddress": "11.1.0.50"}]}]}]}


# (from, to, proto, dport) -> the verdict: ("delivered", endpoint, host) or ("dropped", host, by)
MATRIX = [
    (("orange-c2", "orange-c1", "tcp", 80), ("delivered", "orange-c1", "host1")),  # policy allow
    (("orange-c2", "orange-c1", "icmp", None), ("delivered", "orange-c1", "host1")),
    (("orange-c1", "orange-c6", "icmp", None), ("delivered", "orange-c6", "host1")),  # same host
    (("purple-c4", "purple-c7", "icmp", None), ("delivered", "purple-c7", "host2")),  # uplink
    (("orange-c3", "orange-c1", "tcp", 80), ("dropped", "host1", DENIED)),  # not in app
    (("orange-c2", "orange-c1", "udp", 53), ("dropped", "host1", DENIED)),  # not allowed
    (("orange-c1", "purple-c4", "icmp", None), ("dropped", "host1", None)),  # other network
    (("orange-c1", "blue-c5", "icmp", None), ("dropped", "host1", None)),  # other tenant
]


@pytest.fixture(scope="module")
def world(bed: ScenarioBed) -> ScenarioBed:
    bed.apply(intent())
    for name, host in CONTAINERS.items():
        bed.run(host, name)
    return bed


def trace(bed: ScenarioBed, src: str, dst: str, proto: str, dport: int | None) -> dict:
    args = ["-trace", "-from", src, "-to", dst, "-proto", proto, "-json", "-rest", bed.rest]
    if dport:
        args += ["-dport", str(dport)]
    res = bed.netdcli(*args)
    return json.loads(res.stdout)


def flow_spec(pkt: dict, vteps: tuple[str, str] | None) -> str:
    """An ``ofproto/trace`` flow for a packet of the simulator (``vteps``: tunnel src/dst)."""
    parts = [f"in_port={pkt['in_port']}"]
    if pkt.get("tunnel_id") is not None and vteps:
        parts += [f"tun_id={pkt['tunnel_id']:#x}", f"tun_src={vteps[0]}", f"tun_dst={vteps[1]}"]
    proto = {1: "icmp", 6: "tcp", 17: "udp"}[pkt["ip_proto"]]
    parts += ["ip", f"nw_proto={pkt['ip_proto']}", f"dl_src={pkt['eth_src']}",
              f"dl_dst={pkt['eth_dst']}"]
    if pkt.get("vlan_vid"):
        parts.append(f"dl_vlan={pkt['vlan_vid'] & 0xFFF}")
    parts += [f"nw_src={pkt['ipv4_src']}", f"nw_dst={pkt['ipv4_dst']}", "nw_ttl=64"]
    if proto == "icmp":
        parts += [f"icmp_type={pkt.get('icmpv4_type', 8)}", "icmp_code=0"]
    else:
        parts += [f"{proto}_src={pkt[proto + '_src']}", f"{proto}_dst={pkt[proto + '_dst']}"]
    return ",".join(parts)


_ENTRY = re.compile(r"^\s*(\d+)\. (?:.*, )?priority \d+(?:, cookie (0x[0-9a-f]+))?\s*$")
_OUTPUT = re.compile(r"^\s+(?:output:(\d+)|-> output port is (\d+))\s*$")


def ovs_trace(bed: ScenarioBed, host: str, spec: str) -> tuple[list, set[int], bool, str]:
    """(entries hit in br-int as (table, cookie), OpenFlow output ports, dropped, raw text)."""
    out = bed.sh(host, "ovs-appctl", "ofproto/trace", "br-int", spec, check=True).stdout
    hits, ports, bridge = [], set(), None
    lines = out.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r'^bridge\("([^"]+)"\)', line)
        if m:
            bridge = m.group(1)
            continue
        if bridge != "br-int":
            continue
        if m := _ENTRY.match(line):
            hits.append((int(m.group(1)), int(m.group(2) or "0", 16)))
        elif m := _OUTPUT.match(line):
            skipped = i + 1 < len(lines) and "skipping output to input port" in lines[i + 1]
            if not skipped:
                ports.add(int(m.group(1) or m.group(2)))
    actions = re.findall(r"^Datapath actions: (.*)$", out, re.M)
    assert actions, out
    return hits, ports, not datapath_outputs(actions[-1]), out


def datapath_outputs(actions: str) -> list[str]:
    """The outputs among datapath actions (a port number, or a tunnel push)."""
    flat = actions.strip()
    while (inner := re.sub(r"\([^()]*\)", "", flat)) != flat:
        flat = inner
    return [a for a in flat.split(",") if a.isdigit() or a == "tnl_push"]


def hop_ports(hop: dict) -> set[int]:
    return {int(o.split()[0]) for o in hop["outputs"]}


@pytest.mark.parametrize("question, verdict", MATRIX,
                         ids=[f"{q[0]}->{q[1]}-{q[2]}" for q, _ in MATRIX])
def test_trace_agrees_with_the_real_switches(world, question, verdict):
    bed = world
    got = trace(bed, *question)
    vteps = {h["Name"]: h["VtepIp"] for h in intent()["Hosts"]}
    previous = None
    for hop in got["hops"]:
        via = (vteps[previous], vteps[hop["host"]]) if previous else None
        hits, ports, dropped, raw = ovs_trace(bed, hop["host"], flow_spec(hop["packet"], via))
        sim = [(s["table"], int(s["cookie"], 16)) for s in hop["steps"]]
        where = f"{question} on {hop['host']}:\n{raw}\nsimulated: {json.dumps(hop, indent=1)}"
        assert hits == sim, where
        assert ports == hop_ports(hop), where
        assert dropped == (not hop["outputs"]), where
        previous = hop["host"]
    delivered = [v for v in got["verdicts"] if v["result"] == "delivered"]
    if verdict[0] == "delivered":
        assert [(v["endpoint"], v["host"]) for v in delivered] == [verdict[1:]], got["verdicts"]
        last = got["hops"][-1]
        port = delivered[0]["port"]
        assert last["host"] == verdict[2] and hop_ports(last) == {port}
    else:
        assert delivered == [], got["verdicts"]
        drops = [v for v in got["verdicts"] if v["result"] == "dropped"]
        assert [v["host"] for v in drops] == [verdict[1]], got["verdicts"]
        if verdict[2]:
            assert drops[0]["entry"] == verdict[2], drops


def test_the_verdicts_are_what_the_containers_see(world):
    bed = world
    bed.assert_reach("c2", "c1")  # app -> web: icmp allowed
    bed.assert_reach("c4", "c7")  # the VLAN network over the uplink
    bed.assert_unreachable("c3", "c1", bed.ip("c1"))  # no group -> web: denied
    bed.assert_isolated("c1", "c4")  # another network of the tenant
    bed.assert_isolated("c1", "c5")  # another tenant, overlapping subnet


def test_trace_errors_name_the_field(world):
    bed = world
    res = bed.netdcli("-trace", "-from", "orange-nope", "-to", "11.1.0.3", "-rest", bed.rest,
                      check=False)
    assert res.returncode == 3 and 'from: endpoint "orange-nope" does not exist' in res.stderr
    res = bed.netdcli("-trace", "-from", "orange-c1", "-to", "11.1.0.999", "-rest", bed.rest,
                      check=False)
    assert res.returncode == 2 and "is not an IPv4 address" in res.stderr, res.stderr
    assert "Traceback" not in res.stderr


def scrape(bed: ScenarioBed) -> dict[tuple, float]:
    with urllib.request.urlopen(bed.rest + "/metrics", timeout=10) as resp:
        text = resp.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def total(samples: dict, name: str, **labels: str) -> float:
    want = set(labels.items())
    return sum(v for (n, lab), v in samples.items() if n == name and want <= set(lab))


def test_metrics_move_when_intent_changes(world):
    bed = world
    before = scrape(bed)
    assert total(before, "netplugin_switches_connected") == 2
    assert total(before, "netplugin_switch_master", host="host1") == 1
    assert total(before, "netplugin_watch_lag_revisions") >= 0
    doc = intent()
    doc["Tenants"][0]["Networks"][0]["Endpoints"].append({"Container": "c8", "Host": "host1"})
    bed.apply(doc)
    bed.run("host1", "c8")
    moved = ("netplugin_changes_sent_total", "netplugin_syncs_total",
             "netplugin_intent_realized_seconds_count", "netplugin_flows")
    deadline = time.monotonic() + 10  # the plug's own flows follow the agent's oper write
    while True:
        after = scrape(bed)
        still = [n for n in moved if total(after, n, host="host1") <= total(before, n,
                                                                            host="host1")]
        if not still or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert still == [], f"did not move: {still}"
    deadline = time.monotonic() + 10  # the controller's own realized writes come back too
    while (lag := total(scrape(bed), "netplugin_watch_lag_revisions")) and \
            time.monotonic() < deadline:
        time.sleep(0.2)
    assert lag == 0, f"the controller stays {lag} revisions behind the store"
    assert total(after, "netplugin_rest_requests_total", route="/metrics", status="200") > \
        total(before, "netplugin_rest_requests_total", route="/metrics", status="200")
    assert total(after, "netplugin_sync_errors_total", host="host1") == \
        total(before, "netplugin_sync_errors_total", host="host1")
