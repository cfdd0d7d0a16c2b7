"""Policies on the real test bed: stateful ACLs between endpoint groups on real OVS.

Two hosts; a VXLAN network (orange) and a VLAN network (blue) of one tenant.  ``web`` members
accept from ``app`` members TCP 8080, UDP 5353 and ICMP only; ``app`` members accept nothing
new at all (replies of their own connections still come back).  Real servers in the containers
(tests/system/nettools.py); every "blocked" is checked next to an "allowed" on the same pair,
so a blocked answer cannot come from a broken path.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.system.scenario_bed import ROOT, ScenarioBed, bed_fixtures, example, needs_bed
from tests.system.waiting import wait_for

pytestmark = needs_bed

bed, fresh = bed_fixtures(Path("/tmp/np-scen3"), 27794, 27802, 27812)

WEB_IN = {"Name": "web-in", "Rules": [
    {"Id": 1, "Priority": 1, "Direction": "in", "Action": "deny"},
    {"Id": 2, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app", "Protocol": "tcp",
     "Port": 8080, "Action": "allow"},
    {"Id": 3, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app", "Protocol": "udp",
     "Port": 5353, "Action": "allow"},
    {"Id": 4, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app",
     "Protocol": "icmp", "Action": "allow"}]}
APP_IN = {"Name": "app-in", "Rules": [
    {"Id": 1, "Priority": 1, "Direction": "in", "Action": "deny"}]}


def intent() -> dict:
    doc = {"Hosts": example("two_hosts_vxlan.json")["Hosts"], "Tenants": [{
        "Name": "shop", "DefaultNetType": "vxlan", "SubnetPool": "11.3.0.0/16",
        "AllocSubnetLen": 24, "Vxlans": "20001-20100", "Vlans": "300-310",
        "EndpointGroups": [{"Name": "web", "Policies": ["web-in"]},
                           {"Name": "app", "Policies": ["app-in"]}],
        "Policies": [copy.deepcopy(WEB_IN), copy.deepcopy(APP_IN)],
        "Networks": [
            {"Name": "orange", "Endpoints": [
                {"Container": "w1", "Host": "host1", "EndpointGroup": "web"},
                {"Container": "a2", "Host": "host2", "EndpointGroup": "app"},
                {"Container": "a1", "Host": "host1", "EndpointGroup": "app"},
                {"Container": "n2", "Host": "host2"}]},
            {"Name": "blue", "PktTagType": "vlan", "Endpoints": [
                {"Container": "bw1", "Host": "host1", "EndpointGroup": "web"},
                {"Container": "ba2", "Host": "host2", "EndpointGroup": "app"}]}]}]}
    return doc


class Servers:
    """Background processes inside containers, stopped at the end."""

    def __init__(self, bed: ScenarioBed) -> None:
        self.bed, self.procs = bed, []

    def start(self, name: str, *args: str) -> subprocess.Popen:
        p = subprocess.Popen([sys.executable, "-m", "topologies", "--workdir",
                              str(self.bed.workdir), "exec", name, "--", sys.executable, "-m",
                              "tests.system.nettools", *args], cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(p)
        return p

    def stop(self) -> None:
        for p in self.procs:
            p.kill()
            p.wait()


@contextmanager
def servers(bed: ScenarioBed) -> Iterator[Servers]:
    s = Servers(bed)
    try:
        yield s
    finally:
        s.stop()


def tries(bed: ScenarioBed, src: str, proto: str, ip: str, port: int, want: bool,
          timeout: float = 8.0) -> bool:
    """Whether ``src`` gets an echo from ``ip:port``: a wanted success is retried (flows and
    servers come up), an unwanted one is tried twice."""
    deadline = time.monotonic() + (timeout if want else 0)
    for attempt in range(100):
        ok = bed.sh(src, sys.executable, "-m", "tests.system.nettools", "try", proto, ip,
                    str(port)).returncode == 0
        if ok == want and (want or attempt >= 1):
            return ok
        if not want and ok:
            return ok
        if want and time.monotonic() > deadline:
            return ok
        time.sleep(0.3)
    return not want


def up(bed: ScenarioBed) -> dict[str, str]:
    bed.apply(intent())
    names = {"w1": "host1", "a2": "host2", "a1": "host1", "n2": "host2", "bw1": "host1",
             "ba2": "host2"}
    for name, host in names.items():
        bed.run(host, name)
    return {n: bed.wait_ip(n) for n in names}


def test_allowed_and_denied_tcp_udp_icmp_on_vxlan_and_vlan_same_and_across_hosts(bed) -> None:
    ip = up(bed)
    with servers(bed) as s:
        for name in ("w1", "bw1"):
            s.start(name, "serve", "tcp", "8080")
            s.start(name, "serve", "tcp", "8081")
            s.start(name, "serve", "udp", "5353")
            s.start(name, "serve", "udp", "5354")
        for src, dst in (("a2", "w1"), ("a1", "w1"), ("ba2", "bw1")):  # across, same host, VLAN
            assert tries(bed, src, "tcp", ip[dst], 8080, True), f"{src} -> {dst}:8080 allowed"
            assert not tries(bed, src, "tcp", ip[dst], 8081, False), f"{src} -> {dst}:8081 denied"
            assert tries(bed, src, "udp", ip[dst], 5353, True), f"{src} -> {dst} udp 5353"
            assert not tries(bed, src, "udp", ip[dst], 5354, False), f"{src} -> {dst} udp 5354"
            assert bed.reaches(src, ip[dst]), f"{src} pings {dst}: icmp allowed from app"
        # n2 is in no group: web's default deny stops it, though it shares the network
        assert not tries(bed, "n2", "tcp", ip["w1"], 8080, False)
        assert bed.blocked("n2", ip["w1"])
        assert bed.reaches("w1", ip["n2"])  # n2 has no policy: web may open to it


def test_replies_pass_but_a_connection_does_not_open_the_other_way(bed) -> None:
    ip = up(bed)
    with servers(bed) as s:
        s.start("w1", "serve", "tcp", "8080")
        s.start("a2", "serve", "tcp", "8080")
        assert tries(bed, "a2", "tcp", ip["w1"], 8080, True)  # its replies come back to app
        assert not tries(bed, "w1", "tcp", ip["a2"], 8080, False)  # app-in: nothing new in
        assert bed.blocked("w1", ip["a2"])
        assert bed.reaches("a2", ip["w1"])


def test_rule_changes_take_effect_and_apply_to_established_connections(bed,
                                                                      tmp_path) -> None:
    ip = up(bed)
    log = tmp_path / "stream.log"
    with servers(bed) as s:
        s.start("w1", "serve", "tcp", "8080")
        s.start("w1", "serve", "tcp", "9090")
        assert tries(bed, "a2", "tcp", ip["w1"], 8080, True)
        s.start("a2", "stream", ip["w1"], "8080", str(log))
        wait_for(lambda: log.exists() and "ok" in log.read_text(), 10, "the stream to flow")
        assert not tries(bed, "a2", "tcp", ip["w1"], 9090, False)
        # a rule added at run time: 9090 opens, the open connection keeps flowing
        add = {"Tenants": [{"Name": "shop", "Policies": [{"Name": "web-in", "Rules": [
            {"Id": 5, "Priority": 10, "Direction": "in", "FromEndpointGroup": "app",
             "Protocol": "tcp", "Port": 9090, "Action": "allow"}]}]}]}
        mark = len(log.read_text().splitlines())
        bed.apply(add, "-add-cfg")
        assert tries(bed, "a2", "tcp", ip["w1"], 9090, True)
        time.sleep(0.5)  # let the stream run on past the change (it logs every 0.1 s)
        after = log.read_text().splitlines()[mark:]
        assert after and all(line.startswith("ok") for line in after), after
        # the rule that allows the open connection is removed: it stops within the realize
        bed.apply({"Tenants": [{"Name": "shop", "Policies": [{"Name": "web-in", "Rules": [
            {"Id": 2, "Priority": 10, "Direction": "in", "Action": "allow"}]}]}]}, "-del-cfg")
        removed = time.time()
        wait_for(lambda: any(line.startswith("broken") and float(line.split()[1]) > removed
                             for line in log.read_text().splitlines()), 10, "the stream to stop")
        assert not tries(bed, "a2", "tcp", ip["w1"], 8080, False)
        assert tries(bed, "a2", "tcp", ip["w1"], 9090, True)  # rule 5 still there


def test_a_move_between_groups_applies_at_once(bed) -> None:
    ip = up(bed)
    with servers(bed) as s:
        s.start("w1", "serve", "tcp", "8080")
        assert not tries(bed, "n2", "tcp", ip["w1"], 8080, False)
        bed.netdcli("-add-cfg", bed._file({"Tenants": [{"Name": "shop", "Networks": [
            {"Name": "orange", "Endpoints": [{"Container": "n2", "EndpointGroup": "app"}]}]}]}),
            "-wait", "-q")
        assert tries(bed, "n2", "tcp", ip["w1"], 8080, True)
        got = json.loads(bed.netdcli("-oper", "get", "-construct", "endpointgroup",
                                     "shop/app").stdout)
        assert got["Members"] == 4  # a1, a2, ba2 and now n2


