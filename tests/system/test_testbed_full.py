"""The test bed with the whole stack (etcd, controller, agents): a container is plugged by the
agent when ``run`` registers it, reaches its network's peer on the other host over VXLAN, not the
other network, and everything is gone after ``down``."""

from __future__ import annotations

import json
from pathlib import Path

from tests.system.test_testbed import BED1, PORTS1, assert_gone, bed, recorded_pids

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "two_hosts_multiple_vxlan_nets.json"



def load_intent(url: str, path: Path) -> int:
    from allocator.write import apply_config
    from intent.loader import load_config
    from intent.store_etcd import EtcdStore

    store = EtcdStore(url)
    try:
        return apply_config(store, load_config(path), mode="desired").revision
    finally:
        store.close()


def test_full_stack_vxlan_across_hosts() -> None:
    bed(BED1, "down", check=False)
    out = bed(BED1, "up", "--config", str(EXAMPLE), *PORTS1).stdout
    assert "host1 registered" in out and "export NETPLUGIN_REST=http://127.0.0.1:25810" in out
    try:
        revision = load_intent("http://127.0.0.1:25790", EXAMPLE)
        for host, name in (("host1", "myContainer1"), ("host1", "myContainer2"),
                           ("host2", "myContainer3"), ("host2", "myContainer4")):
            assert "plugged: eth0 11.1." in bed(BED1, "run", host, name, "--wait", "30").stdout
        st = json.loads(bed(BED1, "status", "--json").stdout)
        ips = {c["name"]: c["interfaces"][0].split()[1].split("/")[0] for c in st["containers"]}
        assert all(h["registered"] and "br-int" in h["bridges"] for h in st["hosts"])
        assert all(h["realized"]["revision"] >= revision for h in st["hosts"])
        # orange: myContainer1 (host1) <-> myContainer3 (host2), full-size frames with DF
        bed(BED1, "exec", "myContainer1", "--", "ping", "-c2", "-W2", ips["myContainer3"])
        bed(BED1, "exec", "myContainer3", "--", "ping", "-c1", "-W2", "-M", "do", "-s", "1400",
            ips["myContainer1"])
        # purple is another network: isolated
        assert bed(BED1, "exec", "myContainer1", "--", "ping", "-c2", "-W1",
                   ips["myContainer4"], check=False).returncode != 0
        bed(BED1, "stop", "myContainer3")
        assert bed(BED1, "exec", "myContainer1", "--", "ping", "-c2", "-W1",
                   ips["myContainer3"], check=False).returncode != 0
    finally:
        pids = recorded_pids(BED1)
        bed(BED1, "down")
    assert_gone(BED1, pids)
