"""CLI habits: options after the subcommand, and an example in every command's ``--help``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from topologies import cli

ROOT = Path(__file__).resolve().parents[2]
COMMANDS = ("up", "run", "stop", "exec", "status", "down", "env")


def parse(*argv: str):
    args = cli._parser().parse_args(list(argv))
    if args.cmd == "exec":
        cli._exec_workdir(args)
    return args


@pytest.mark.parametrize("argv, workdir", [
    (("up", "--hosts", "h1", "--workdir", "/tmp/b2"), "/tmp/b2"),
    (("--workdir", "/tmp/b1", "up", "--hosts", "h1"), "/tmp/b1"),
    (("--workdir", "/tmp/b1", "up", "--hosts", "h1", "--workdir", "/tmp/b2"), "/tmp/b2"),
    (("status", "--json", "--workdir", "/tmp/b2"), "/tmp/b2"),
    (("run", "host1", "c1", "--workdir=/tmp/b2"), "/tmp/b2"),
    (("exec", "--workdir", "/tmp/b2", "c1", "--", "ip", "addr"), "/tmp/b2"),
    (("exec", "c1", "--workdir", "/tmp/b2", "--", "ip", "addr"), "/tmp/b2"),
])
def test_workdir_before_or_after_the_command(argv, workdir):
    args = parse(*argv)
    assert args.workdir == workdir
    if args.cmd == "exec":
        assert [a for a in args.command if a != "--"] == ["ip", "addr"]


def test_exec_passes_a_workdir_option_of_the_command_itself():
    args = parse("--workdir", "/tmp/b1", "exec", "c1", "--", "tool", "--workdir", "x")
    assert args.workdir == "/tmp/b1" and args.command[-3:] == ["tool", "--workdir", "x"]


def test_the_workdir_after_the_command_is_the_one_used(tmp_path, capsys):
    assert cli.main(["--workdir", "/nonexistent-np", "status", "--workdir", str(tmp_path)]) == 1
    assert f"no test bed in {tmp_path}" in capsys.readouterr().err


@pytest.mark.parametrize("command", COMMANDS)
def test_every_test_bed_command_help_shows_an_example(command, capsys):
    with pytest.raises(SystemExit):
        cli._parser().parse_args([command, "--help"])
    out = capsys.readouterr().out
    assert "\nexample" in out and f"python -m topologies {command}" in out.split("\nexample")[1]


@pytest.mark.parametrize("module", ["netdcli.cli", "agent", "topologies.tour", "topologies"])
def test_other_commands_help_shows_examples(module):
    res = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert res.returncode == 0 and "\nexamples:\n" in res.stdout, res.stdout + res.stderr
