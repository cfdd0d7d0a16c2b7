"""Safe defaults of the controller: REST on loopback, a token for any other address unless
``--insecure``, OpenFlow on loopback unless configured, and the refusal to start otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ryu_apps.netplugin import OPTS, StartupError, is_loopback, rest_token
from tests.system.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
REFUSAL = ("refusing to serve the REST API on {host}:9999 without a token: give "
           "--rest-token-file FILE (or $NETPLUGIN_REST_TOKEN), or listen on --rest-host "
           "127.0.0.1, or add --insecure to serve it open")


def test_rest_listens_on_loopback_by_default():
    defaults = {o.name: o.default for o in OPTS}
    assert defaults["rest-host"] == "127.0.0.1" and defaults["insecure"] is False
    assert rest_token("127.0.0.1", 9999, None, None, False, environ={}) is None


@pytest.mark.parametrize("host", ["127.0.0.1", "127.1.2.3", "::1", "localhost"])
def test_loopback_addresses(host):
    assert is_loopback(host)


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.0.0.1", "controller.example"])
def test_other_addresses_need_a_token(host):
    assert not is_loopback(host)
    with pytest.raises(StartupError) as exc:
        rest_token(host, 9999, None, None, False, environ={})
    assert str(exc.value) == REFUSAL.format(host=host)


def test_token_from_flag_file_or_environment(tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text("s3cret\n")
    assert rest_token("0.0.0.0", 9999, "flag", None, False, environ={}) == "flag"
    assert rest_token("0.0.0.0", 9999, None, str(token_file), False, environ={}) == "s3cret"
    assert rest_token("0.0.0.0", 9999, None, None, False,
                      environ={"NETPLUGIN_REST_TOKEN": "env"}) == "env"
    # a token is used on loopback too
    assert rest_token("127.0.0.1", 9999, None, str(token_file), False, environ={}) == "s3cret"


def test_insecure_serves_open_only_when_asked():
    assert rest_token("0.0.0.0", 9999, None, None, True, environ={}) is None
    assert rest_token("0.0.0.0", 0, None, None, False, environ={}) is None  # no REST at all


@pytest.mark.parametrize(("content", "problem"), [
    (None, "--rest-token-file {f}: cannot read: No such file or directory"),
    ("  \n", "--rest-token-file {f}: the file is empty"),
    (b"\xff\xfe", "--rest-token-file {f}: cannot read: not UTF-8 text"),
])
def test_bad_token_file_refuses_to_start(tmp_path, content, problem):
    f = tmp_path / "token"
    if isinstance(content, bytes):
        f.write_bytes(content)
    elif content is not None:
        f.write_text(content)
    with pytest.raises(StartupError) as exc:
        rest_token("127.0.0.1", 9999, None, str(f), False, environ={"NETPLUGIN_REST_TOKEN": "e"})
    assert str(exc.value) == problem.format(f=f)


def test_token_flag_and_file_together_are_refused(tmp_path):
    with pytest.raises(StartupError) as exc:
        rest_token("0.0.0.0", 9999, "a", str(tmp_path / "t"), False, environ={})
    assert str(exc.value) == "give only one of --rest-token and --rest-token-file"


def test_launcher_refuses_to_start_with_one_line():
    """The real launcher: exit 2, one line on stderr saying what to do, nothing listening."""
    ofp, rest = free_port(), free_port()
    proc = subprocess.run(
        [sys.executable, "-W", "ignore", "-m", "ryu_apps", "--etcd", "memory://",
         "--ofp-tcp-listen-port", str(ofp), "--rest-host", "0.0.0.0", "--rest-port", str(rest)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={"PATH": "/usr/bin:/bin", "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.splitlines() == [
        "netplugin-controller: " + REFUSAL.format(host="0.0.0.0").replace("9999", str(rest))]
