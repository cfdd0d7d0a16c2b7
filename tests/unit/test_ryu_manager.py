"""``ryu-manager`` / ``netplugin-controller`` (ryu_apps.manager): flags, app loading, hand-over."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ryu_apps import framework, manager

ROOT = Path(__file__).resolve().parents[2]
RYU_API_APP = textwrap.dedent("""\
    from ryu.base import app_manager
    from ryu.controller import ofp_event
    from ryu.controller.handler import MAIN_DISPATCHER, set_ev_cls
    from ryu.ofproto import ofproto_v1_3


    class Hello(app_manager.RyuApp):
        OFP_VERSIONS = [ofproto_v1_3.OFP_VERSION]

        @set_ev_cls(ofp_event.EventOFPSwitchFeatures, MAIN_DISPATCHER)
        def features(self, ev):
            pass
    """)
FAKE_RYU_MANAGER = textwrap.dedent("""\
    def main(args=None, prog=None):
        print("RYU'S OWN MANAGER", prog, args)
        return 0
    """)


def run(*args: str, pythonpath: Path | None = None, script: str = "main"):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(p) for p in (pythonpath, ROOT) if p])}
    code = f"import sys; from ryu_apps.manager import {script}; sys.exit({script}(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=60)


def test_help_has_ryu_managers_flags_the_apps_options_and_an_example():
    res = run("ryu_apps.netplugin", "--help")
    assert res.returncode == 0, res.stderr
    for flag in ("--ofp-tcp-listen-port", "--ofp-listen-host", "--config-file", "--verbose",
                 "--log-file", "--version", "MODULE", "--etcd", "--rest-port", "--rest-token"):
        assert flag in res.stdout, flag
    assert "hands over to Ryu's own manager" in res.stdout
    assert "examples:\n  ryu-manager ryu_apps.netplugin --etcd" in res.stdout


def test_version_and_clear_errors_without_traceback():
    res = run("--version")
    assert res.returncode == 0 and "ryu-manager (netplugin" in res.stdout + res.stderr
    res = run("no_such_module_here.app")
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert "cannot import app module no_such_module_here.app" in res.stderr
    res = run("json")
    assert res.returncode == 2 and "module json defines no Ryu application class" in res.stderr


def test_hands_over_to_a_real_ryu_unchanged(tmp_path):
    (tmp_path / "ryu" / "cmd").mkdir(parents=True)
    (tmp_path / "ryu" / "__init__.py").write_text("")
    (tmp_path / "ryu" / "cmd" / "__init__.py").write_text("")
    (tmp_path / "ryu" / "cmd" / "manager.py").write_text(FAKE_RYU_MANAGER)
    res = run("--verbose", "ryu_apps.netplugin", "--etcd", "memory://", pythonpath=tmp_path)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == ("RYU'S OWN MANAGER ryu-manager "
                                  "['--verbose', 'ryu_apps.netplugin', '--etcd', 'memory://']")
    # netplugin-controller is ours whatever is installed: it runs on os-ken
    res = run("--version", pythonpath=tmp_path, script="controller_main")
    assert "netplugin-controller (netplugin" in res.stdout + res.stderr
    assert "RYU'S OWN MANAGER" not in res.stdout


@pytest.fixture
def ryu_alias():
    before = list(sys.meta_path)
    manager.install_ryu_alias()
    yield
    sys.meta_path[:] = before
    for name in [n for n in sys.modules if n == "ryu" or n.startswith("ryu.")]:
        del sys.modules[name]


def test_ryu_api_modules_run_on_os_ken(tmp_path, ryu_alias, monkeypatch):
    import os_ken.base.app_manager as osken_manager

    (tmp_path / "hello_ryu_app.py").write_text(RYU_API_APP)
    monkeypatch.syspath_prepend(str(tmp_path))
    import ryu.base.app_manager as ryu_manager  # type: ignore[import-not-found]

    assert ryu_manager is osken_manager and ryu_manager.RyuApp is osken_manager.OSKenApp
    assert osken_manager.__spec__.name == "os_ken.base.app_manager"  # not the alias's
    assert manager.check_apps(["hello_ryu_app"], framework.RyuApp) is None
    assert not framework.ryu_manager_running()  # the alias is not Ryu: the apps stay os-ken's
    assert framework.ryu_manager_running({"ryu.base.app_manager": type(sys)(
        "ryu.base.app_manager")})


def test_app_modules_are_found_on_the_command_line_before_parsing():
    args = ["--etcd", "http://127.0.0.1:2379", "--log-file", "netplugin.log", "--verbose",
            "ryu_apps.netplugin", "--app-lists", "ryu_apps.rest,no_such_mod", "6653"]
    assert manager.app_modules_in(args) == ["ryu_apps.netplugin", "ryu_apps.rest"]
