"""The systemd units and example configs in packaging/ use only flags and settings that exist."""

from __future__ import annotations

import configparser
import re
import shlex
import subprocess
import sys
from pathlib import Path

import tomllib

from agent.main import parse_args
from intent.etcd_conn import ENV_CA, ENV_CERT, ENV_KEY, ENV_URLS

ROOT = Path(__file__).resolve().parents[2]
UNITS = ROOT / "packaging" / "systemd"


def env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value.strip()
    return out


def exec_start(unit: Path) -> list[str]:
    line = next(ln for ln in unit.read_text().splitlines() if ln.startswith("ExecStart="))
    return shlex.split(line[len("ExecStart="):])


def test_units_start_console_scripts_of_this_package():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    for unit in sorted(UNITS.glob("*.service")):
        text = unit.read_text()
        assert re.search(r"^\[Install\]\nWantedBy=multi-user.target$", text, re.M), unit
        assert Path(exec_start(unit)[0]).name in scripts, unit


def test_controller_config_keys_are_controller_flags():
    conf = configparser.ConfigParser()
    conf.read(UNITS / "netplugin-controller.conf")
    helptext = subprocess.run([sys.executable, "-m", "ryu_apps.launcher", "--help"],
                              capture_output=True, text=True, timeout=60, cwd=ROOT).stdout
    keys = list(conf["DEFAULT"])
    assert keys
    unknown = [k for k in keys
               if not re.search(rf"--{re.escape(k.replace('_', '-'))}(?![\w-])", helptext)]
    assert unknown == []
    unit = exec_start(UNITS / "netplugin-controller.service")
    assert unit[1:] == ["--config-file", "/etc/netplugin/controller.conf"]


def test_agent_settings_parse_as_agent_flags():
    env = env_file(UNITS / "netplugin-agent.env")
    line = next(ln for ln in (UNITS / "netplugin-agent.service").read_text().splitlines()
                if ln.startswith("ExecStart="))
    # systemd: ${VAR} is one word, $VAR splits on spaces (the values of ${...} have none)
    argv = shlex.split(re.sub(r"\$\{?(\w+)\}?", lambda m: env[m.group(1)],
                              line[len("ExecStart="):]))
    args = parse_args(argv[1:])
    assert args.host == env["NETPLUGIN_HOST"] and args.etcd == env[ENV_URLS]
    assert args.metrics_port == 9101 and args.metrics_host == "127.0.0.1"
    assert {ENV_CA, ENV_CERT, ENV_KEY} <= set(env)  # read by the agent from its environment


def test_every_console_script_prints_its_version():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    bindir = Path(sys.executable).parent
    for name in scripts:
        res = subprocess.run([str(bindir / name), "--version"], capture_output=True, text=True,
                             timeout=60)
        assert res.returncode == 0, (name, res.stderr)
        assert re.match(rf"{re.escape(name)} \(netplugin \d", res.stdout + res.stderr), \
            (name, res.stdout, res.stderr)
