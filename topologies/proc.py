"""Process and namespace plumbing for the test bed: the only module that runs commands."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


class CommandError(RuntimeError):
    """A command failed; the message carries its stderr."""


def run(cmd: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = True,
        timeout: float = 30) -> subprocess.CompletedProcess[str]:
    """Run a command, capture its output; raise :class:`CommandError` on failure if ``check``."""
    full_env = {**os.environ, **env} if env else None
    try:
        res = subprocess.run(list(cmd), capture_output=True, text=True, env=full_env,
                             timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise CommandError(f"timed out after {timeout}s: {' '.join(cmd)}") from None
    if check and res.returncode != 0:
        msg = (res.stderr or res.stdout).strip()
        raise CommandError(f"{' '.join(cmd)}: exit {res.returncode}: {msg}")
    return res


def ns_cmd(netns: str | None, cmd: Sequence[str]) -> list[str]:
    return ["ip", "netns", "exec", netns, *cmd] if netns else list(cmd)


def start_time(pid: int) -> int | None:
    """The kernel start time of ``pid`` (to tell it from a recycled pid); None if not running."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()
    if fields[0] in ("Z", "X"):
        _reap(pid)
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def alive(pid: int, started: int | None) -> bool:
    """True if ``pid`` runs and is the very process recorded (same start time)."""
    now = start_time(pid)
    return now is not None and (started is None or now == started)


def spawn(cmd: Sequence[str], log: Path, *, env: Mapping[str, str] | None = None,
          cwd: str | None = None) -> int:
    """Start a long-running process detached from us (own session), output to ``log``."""
    log.parent.mkdir(parents=True, exist_ok=True)
    full_env = {**os.environ, **env} if env else None
    with open(log, "ab") as out:
        proc = subprocess.Popen(list(cmd), stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=full_env, cwd=cwd,
                                start_new_session=True)
    return proc.pid


def stop(pid: int, started: int | None, grace: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL after ``grace`` seconds, the recorded process only.

    Returns True if it was running.
    """
    if not alive(pid, started):
        return False
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if start_time(pid) is None:
                return True
            time.sleep(0.05)
    return True


def wait_for(pred, timeout: float, what: str, interval: float = 0.1) -> None:  # noqa: ANN001
    """Poll ``pred()`` until true, else raise ``TimeoutError`` naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return
        except Exception:  # noqa: BLE001 - a probe failing just means "not yet"
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


_handed_out: set[int] = set()


def free_port() -> int:
    """A free loopback TCP port, not handed out before by this process."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


# ----------------------------------------------------------------------------- namespaces


def netns_list() -> list[str]:
    res = run(["ip", "netns", "list"], check=False)
    return [line.split()[0] for line in res.stdout.splitlines() if line.strip()]


def netns_add(name: str) -> None:
    run(["ip", "netns", "add", name])
    run(["ip", "-n", name, "link", "set", "lo", "up"])
    run(ns_cmd(name, ["sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                      "net.ipv6.conf.default.disable_ipv6=1"]), check=False)


def netns_pids(name: str) -> list[int]:
    res = run(["ip", "netns", "pids", name], check=False)
    return [int(p) for p in res.stdout.split() if p.isdigit()]


def netns_delete(name: str) -> None:
    """Kill whatever still runs in the namespace, delete its tap leftovers, then the namespace."""
    if name not in netns_list():
        return
    for pid in netns_pids(name):
        stop(pid, None, grace=2.0)
    res = run(["ip", "-n", name, "-o", "link", "show", "type", "tun"], check=False)
    for line in res.stdout.splitlines():
        ifname = line.split(":")[1].strip().split("@")[0]
        run(["ip", "-n", name, "link", "del", ifname], check=False)
    run(["ip", "netns", "delete", name], check=False)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
