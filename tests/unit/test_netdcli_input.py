"""netdcli on hostile files: whatever a file holds, exit 2 with one message naming it (never a
traceback); an unreachable etcd is exit 1 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from netdcli import cli
from tests.system.conftest import free_port

NOTHING = "netdcli: nothing was written"


def run_file(tmp_path: Path, content: bytes, capsys, flag: str = "-cfg") -> tuple[int, list[str]]:
    f = tmp_path / "in.json"
    f.write_bytes(content)
    code = cli.main(["-etcd", "memory://", flag, str(f)])
    captured = capsys.readouterr()
    return code, captured.err.splitlines()


@pytest.mark.parametrize(("content", "problem"), [
    (b"\xff\xfe{}", "{f}: not UTF-8 text (byte 0xff at offset 0)"),
    (b"[" * 100000 + b"]" * 100000, "{f}: JSON nested 100000 levels deep (at most 32)"),
    (b'{"Tenants": [{"Name": "t", "AllocSubnetLen": ' + b"9" * 5000 + b"}]}",
     "{f}: number 999999999999… has 5000 digits (at most 64)"),
    (b'{"Tenants": [{"Name": "t", "AllocSubnetLen": 1e999}]}', "{f}: number 1e999 is out of range"),
    (b'{"Tenants": NaN}', "{f}: NaN is not valid JSON"),
    (b'{"Tenants": [{"Name": "\\udc80"}]}',
     "{f}: a string holds an unpaired UTF-16 surrogate ('\\udc80')"),
    (b"\x7fELF\x02\x01\x01\x00\x00", "{f}: invalid JSON at line 1 column 1: Expecting value"),
    (b"", "{f}: invalid JSON at line 1 column 1: Expecting value"),
    (b"[1, 2]", "document: expected an object, got list"),
    (b'"text"', "document: expected an object, got str"),
    (b'{"a\\nb\\u001b[31m": 1}', "a\\nb\\x1b[31m: unknown key; known keys: Hosts, Tenants"),
])
def test_bad_file_content_is_exit_2_with_one_message(tmp_path, capsys, content, problem):
    code, err = run_file(tmp_path, content, capsys)
    assert code == 2
    assert err == ["netdcli: " + problem.format(f=tmp_path / "in.json"), NOTHING]


def test_bindings_file_that_is_not_a_list(tmp_path, capsys):
    code, err = run_file(tmp_path, b'{"Container": "c"}', capsys, "-host-bindings-cfg")
    assert code == 2 and err[0] == ('netdcli: host bindings: expected a list of {"Container", '
                                    '"Host", "AttachUUID"} objects')


def test_unreadable_file(tmp_path, capsys):
    code = cli.main(["-etcd", "memory://", "-cfg", str(tmp_path)])
    err = capsys.readouterr().err.splitlines()
    assert code == 2 and err == [f"netdcli: {tmp_path}: cannot read: Is a directory", NOTHING]


def test_etcd_unreachable_is_exit_1_with_one_line(capsys):
    port = free_port()
    code = cli.main(["-etcd", f"http://127.0.0.1:{port}", "-oper", "get", "-construct",
                     "global"])
    assert code == 1
    assert capsys.readouterr().err.splitlines() == [
        f"netdcli: etcd at http://127.0.0.1:{port} is unreachable (connection refused)"]


def _json_text():
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8)
    values = st.recursive(scalars, lambda c: st.lists(c, max_size=4)
                          | st.dictionaries(st.sampled_from(
                              ["Tenants", "Hosts", "Name", "Networks", "Endpoints", "Vlans",
                               "Container", "x"]) | st.text(max_size=4), c, max_size=4),
                          max_leaves=20)
    import json

    return values.map(lambda v: json.dumps(v).encode())


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content=st.binary(max_size=64) | _json_text())
def test_any_file_content_gives_a_message_not_a_traceback(tmp_path, capsys, content):
    code, err = run_file(tmp_path, content, capsys)
    # 0: a valid document; 2: invalid; 4: a conflict such as an exhausted pool
    assert code in (0, 2, 4), err
    assert all(line.startswith("netdcli: ") for line in err), err
    assert not any("Traceback" in line or "internal error" in line for line in err), err
