"""netdcli's flags, output and exit codes against the in-memory store."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from intent import keys
from intent.store_memory import MemoryStore
from netdcli import cli

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def netdcli(store: MemoryStore, *argv: str) -> tuple[int, str, str]:
    """Run one command against ``store``; returns (exit code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    args = cli.build_parser().parse_args(list(argv))
    import contextlib

    with contextlib.redirect_stderr(err):
        try:
            code = cli.run(args, store, out=out)
        except cli.IntentError as exc:
            for p in exc.problems:
                print(f"netdcli: {p}", file=err)
            code = exc.exit_code
    return code, out.getvalue(), err.getvalue()


def test_cfg_then_get_endpoint() -> None:
    store = MemoryStore()
    code, out, _ = netdcli(store, "-cfg", str(EXAMPLES / "two_hosts_multiple_vxlan_nets.json"))
    assert code == 0 and "created network orange" in out
    code, out, _ = netdcli(store, "-oper", "get", "-construct", "endpoint",
                           "orange-myContainer1")
    ep = json.loads(out)
    assert code == 0
    assert ep["IpAddress"] == "11.1.0.2" and ep["Network"] == "orange"
    assert ep["Tenant"] == "tenant-one" and ep["Host"] == "host1"
    assert ep["Vni"] == 10001 and ep["MacAddress"] == "02:00:0b:01:00:02"


def test_same_file_twice_says_no_change() -> None:
    store = MemoryStore()
    netdcli(store, "-cfg", str(EXAMPLES / "two_hosts_vlan.json"))
    code, out, _ = netdcli(store, "-cfg", str(EXAMPLES / "two_hosts_vlan.json"))
    assert code == 0 and "no change" in out


def test_one_bad_network_writes_nothing(tmp_path: Path) -> None:
    store = MemoryStore()
    netdcli(store, "-cfg", str(EXAMPLES / "one_host_vlan.json"))
    before = [(kv.key, kv.value, kv.mod_revision) for kv in store.list("/")]
    doc = json.loads((EXAMPLES / "one_host_multiple_nets.json").read_text())
    doc["Tenants"][0]["Networks"].append({"Name": "bad", "PktTag": 4095})
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, _, err = netdcli(store, "-cfg", str(bad))
    assert code == 2
    assert "Tenants[0].Networks[2].PktTag 4095: outside 1-4094" in err
    assert [(kv.key, kv.value, kv.mod_revision) for kv in store.list("/")] == before


def test_get_unknown_network_is_not_found() -> None:
    code, _, err = netdcli(MemoryStore(), "-oper", "get", "-construct", "network", "nope")
    assert code == 3 and 'network "nope" does not exist' in err


def test_delete_network_and_global_view() -> None:
    store = MemoryStore()
    netdcli(store, "-cfg", str(EXAMPLES / "two_hosts_multiple_vxlan_nets.json"))
    code, out, _ = netdcli(store, "-oper", "delete", "-construct", "network", "purple")
    assert code == 0 and "deleted network purple" in out
    code, out, _ = netdcli(store, "-oper", "get", "-construct", "global")
    view = json.loads(out)
    assert [n["Name"] for n in view["Networks"]] == ["orange"]
    assert not store.list(keys.alloc_ip_prefix("purple"))


def test_host_bindings_flag() -> None:
    store = MemoryStore()
    netdcli(store, "-cfg", str(EXAMPLES / "late_host_bindings.json"))
    code, out, _ = netdcli(store, "-host-bindings-cfg",
                           str(EXAMPLES / "late_host_bindings.bindings.json"))
    assert code == 0
    _, out, _ = netdcli(store, "-oper", "get", "-construct", "endpoint", "orange-myContainer2")
    assert json.loads(out)["Host"] == "host2"


def test_wait_returns_when_hosts_realized_and_times_out_otherwise() -> None:
    store = MemoryStore()
    store.put(keys.oper_host("host1"), json.dumps({"name": "host1"}))
    store.put(keys.realized("host1"), json.dumps({"revision": 10**6}))
    code, _, _ = netdcli(store, "-wait", "-cfg", str(EXAMPLES / "one_host_vlan.json"))
    assert code == 0
    store.put(keys.realized("host1"), json.dumps({"revision": 1}))
    code, _, err = netdcli(store, "-wait", "-wait-timeout", "0.2", "-add-cfg",
                           str(EXAMPLES / "one_host_multiple_nets.json"))
    assert code == cli.EXIT_TIMEOUT and "host1" in err


def test_unreachable_etcd_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(["-etcd", "http://127.0.0.1:1", "-cfg", str(EXAMPLES / "one_host_vlan.json")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1
    assert "127.0.0.1:1" in err[0] and "Traceback" not in err[0]


def test_help_and_no_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main([]) == 0
    assert "-host-bindings-cfg" in capsys.readouterr().out


def test_policy_and_endpoint_group_constructs(tmp_path: Path) -> None:
    store = MemoryStore()
    code, _, err = netdcli(store, "-cfg", str(EXAMPLES / "policy_web_app.json"))
    assert code == 0, err
    code, out, _ = netdcli(store, "-oper", "get", "-construct", "policy", "tenant-one/web-in")
    policy = json.loads(out)
    assert code == 0 and [r["Id"] for r in policy["Rules"]] == [1, 2, 3, 4]
    assert policy["Rules"][3] == {"Id": 4, "Priority": 5, "Direction": "out",
                                  "Action": "deny", "ToNetwork": "purple", "Protocol": "udp",
                                  "Port": "5000-5010"}
    code, out, _ = netdcli(store, "-oper", "get", "-construct", "endpointgroup",
                           "tenant-one/web")
    group = json.loads(out)
    assert group["Policies"] == ["web-in"] and group["Members"] == 1 and group["Id"]
    code, _, err = netdcli(store, "-oper", "get", "-construct", "policy", "web-in")
    assert code == 2 and "takes TENANT/NAME" in err
    code, _, err = netdcli(store, "-oper", "delete", "-construct", "endpointgroup",
                           "tenant-one/web")
    assert code == 2 and "still used by 1 endpoint" in err
    code, _, _ = netdcli(store, "-oper", "delete", "-construct", "endpointgroup",
                         "tenant-one/app")
    assert code == 2  # the rule of web-in names it
