"""A running test bed (``python -m topologies``) driven as a user would: netdcli, run, exec, ping.

:class:`ScenarioBed` wraps one bed (etcd, controller, one agent per host) brought up once per test
module; every scenario loads its own intent with ``netdcli -cfg … -wait`` (desired state: the
previous scenario's objects go), starts its containers and checks what a user sees.  Reachability
helpers retry a positive ping for a few seconds (a freshly plugged port gets its flows just after
its address) and give up on a negative one after ``ping -c2 -W1``.
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BED_CONFIG = EXAMPLES / "two_hosts_vxlan.json"  # host1/host2, uplink eth2, VTEP IPs

needs_bed = [pytest.mark.system]


def example(name: str) -> dict[str, Any]:
    return json.loads((EXAMPLES / name).read_text())


class ScenarioBed:
    """One test bed in ``workdir`` on explicit ports (etcd, etcd+1, ofp, rest)."""

    def __init__(self, workdir: Path, etcd_port: int, ofp_port: int, rest_port: int) -> None:
        self.workdir = workdir
        self.ports = ["--etcd-port", str(etcd_port), "--ofp-port", str(ofp_port),
                      "--rest-port", str(rest_port)]
        self.etcd = f"http://127.0.0.1:{etcd_port}"
        self.rest = f"http://127.0.0.1:{rest_port}"
        self._tmp = Path(tempfile.mkdtemp(prefix="np-scen-"))
        self._n = 0

    # ------------------------------------------------------------------ bed CLI
    def cli(self, *args: str, check: bool = True,
            timeout: float = 90) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "topologies", "--workdir", str(self.workdir),
                              *args], capture_output=True, text=True, cwd=ROOT, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"topologies {' '.join(args)}: exit {res.returncode}\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def up(self, config: Path = BED_CONFIG, *extra: str) -> None:
        """Bring the bed up (``extra``: more ``up`` options, e.g. ``--controllers 3``)."""
        self.cli("down", check=False)
        self.cli("up", "--config", str(config), *self.ports, *extra)

    def down(self) -> None:
        self.cli("down", check=False)
        shutil.rmtree(self._tmp, ignore_errors=True)

    def run(self, host: str, name: str, cid: str | None = None, wait: float = 20) -> None:
        args = ["run", host, name, *(["--id", cid] if cid else [])]
        self.cli(*args, *(["--wait", str(wait)] if wait else []))

    def stop(self, name: str) -> None:
        self.cli("stop", name)

    def stop_all(self) -> None:
        for c in self.status()["containers"]:
            self.cli("stop", c["name"], check=False)

    def status(self) -> dict[str, Any]:
        return json.loads(self.cli("status", "--json").stdout)

    def sh(self, name: str, *cmd: str, check: bool = False,
           timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return self.cli("exec", name, "--", *cmd, check=check, timeout=timeout)

    # ------------------------------------------------------------------ intent
    def netdcli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "netdcli.cli", "-etcd", self.etcd, *args],
                             capture_output=True, text=True, cwd=ROOT, timeout=90)
        if check and res.returncode != 0:
            raise AssertionError(f"netdcli {' '.join(args)}: exit {res.returncode}\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def _file(self, data: Any) -> str:
        self._n += 1
        path = self._tmp / f"intent{self._n}.json"
        path.write_text(json.dumps(data))
        return str(path)

    def apply(self, data: Any, flag: str = "-cfg") -> None:
        """Write intent (a dict/list, or an example file name) and wait until it is realized."""
        path = str(EXAMPLES / data) if isinstance(data, str) else self._file(data)
        self.netdcli(flag, path, "-wait", "-q")

    def endpoint(self, ep_id: str) -> dict[str, Any] | None:
        res = self.netdcli("-oper", "get", "-construct", "endpoint", ep_id, check=False)
        return json.loads(res.stdout) if res.returncode == 0 else None

    def etcd_keys(self, prefix: str = "/netplugin/") -> dict[str, str]:
        from topologies.etcd import Etcd
        return Etcd(self.etcd).list(prefix)

    # ------------------------------------------------------------------ what a user sees
    def addrs(self, name: str) -> dict[str, str]:
        """Interface -> IPv4 address of a container."""
        for c in self.status()["containers"]:
            if c["name"] == name:
                return {i.split()[0]: i.split()[1].split("/")[0] for i in c["interfaces"]}
        raise AssertionError(f"no container {name}")

    def ip(self, name: str, iface: str = "eth0") -> str:
        addrs = self.addrs(name)
        assert iface in addrs, f"{name} has no IPv4 address on {iface} (has {addrs})"
        return addrs[iface]

    def reaches(self, src: str, dst_ip: str, timeout: float = 8) -> bool:
        """True once ``src`` gets an echo reply from ``dst_ip`` (retrying up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            if self.sh(src, "ping", "-c1", "-W1", dst_ip).returncode == 0:
                return True
            if time.monotonic() > deadline:
                return False

    def blocked(self, src: str, dst_ip: str) -> bool:
        """True if ``src`` gets no reply from ``dst_ip`` (``ping -c2 -W1``)."""
        return self.sh(src, "ping", "-c2", "-i0.3", "-W1", dst_ip).returncode != 0

    def assert_reach(self, src: str, dst: str, dst_ip: str | None = None) -> None:
        ip = dst_ip or self.ip(dst)
        assert self.reaches(src, ip), f"{src} cannot reach {dst} ({ip}) but should"

    def assert_unreachable(self, src: str, dst: str, dst_ip: str) -> None:
        """No reply from an address (e.g. of a deleted endpoint) at all."""
        assert self.blocked(src, dst_ip), f"{src} reaches {dst} ({dst_ip}) but must not"

    def assert_isolated(self, src: str, dst: str, src_if: str = "eth0",
                        dst_if: str = "eth0") -> None:
        """``src``'s frames cannot reach ``dst``, even addressed to ``dst``'s own MAC.

        Both sides get a permanent neighbour entry for the other (and an on-link /32 route when
        it is outside their subnet), so ``src`` sends from its own IP and MAC (port security
        passes) straight to ``dst``'s MAC, and ``dst`` would answer to ``src``'s: a ping reply,
        or any frame from ``src`` in a capture at ``dst``, is a leak only isolation can stop.
        """
        src_ip, dst_ip = self.ip(src, src_if), self.ip(dst, dst_if)
        src_mac, dst_mac = self.mac(src, src_if), self.mac(dst, dst_if)
        self._pin(src, src_if, src_ip, dst_ip, dst_mac)
        self._pin(dst, dst_if, dst_ip, src_ip, src_mac)
        try:
            with self.capture(dst, f"ether src {src_mac}", dst_if) as seen:
                res = self.sh(src, "ping", "-c2", "-i0.3", "-W1", dst_ip)
        finally:
            self._unpin(src, src_if, dst_ip)
            self._unpin(dst, dst_if, src_ip)
        assert "2 packets transmitted" in res.stdout, \
            f"{src} did not send to {dst} ({dst_ip}): {res.stdout}{res.stderr}"
        assert res.returncode != 0 and seen == [], (
            f"{src} ({src_ip} {src_mac}) reaches {dst} ({dst_ip} {dst_mac}) with frames to its "
            f"MAC: isolation leaks\n{res.stdout}\ncaptured at {dst}: {seen}")

    def mac(self, name: str, iface: str = "eth0") -> str:
        return self.sh(name, "cat", f"/sys/class/net/{iface}/address", check=True).stdout.strip()

    def _pin(self, name: str, iface: str, own_ip: str, peer_ip: str, peer_mac: str) -> None:
        self.sh(name, "sh", "-c", f"ip route replace {peer_ip}/32 dev {iface} src {own_ip} && "
                f"ip neigh replace {peer_ip} lladdr {peer_mac} dev {iface} nud permanent",
                check=True)

    def _unpin(self, name: str, iface: str, peer_ip: str) -> None:
        self.sh(name, "sh", "-c", f"ip route del {peer_ip}/32 dev {iface}; "
                f"ip neigh del {peer_ip} dev {iface}")

    def wait_ip(self, name: str, iface: str = "eth0", timeout: float = 20) -> str:
        """The address the agent gave ``name`` on ``iface``, once it has one."""
        deadline = time.monotonic() + timeout
        while True:
            addrs = self.addrs(name)
            if iface in addrs:
                return addrs[iface]
            assert time.monotonic() < deadline, f"{name} got no address on {iface}: {addrs}"
            time.sleep(0.3)

    def container_id(self, name: str) -> str:
        return next(c["id"] for c in self.status()["containers"] if c["name"] == name)

    def switch_cookies(self, host: str) -> set[int]:
        """Cookies of the flows installed in ``host``'s br-int (the real switch)."""
        out = self.sh(host, "ovs-ofctl", "-O", "OpenFlow13", "dump-flows", "br-int",
                      check=True).stdout
        return {int(m, 16) for m in re.findall(r"cookie=(0x[0-9a-f]+)", out)}

    @contextmanager
    def capture(self, name: str, bpf: str, iface: str = "eth0",
                inbound: bool = False) -> Iterator[list[str]]:
        """tcpdump in container ``name`` while the block runs; the list gets the packet lines
        (``inbound``: only what ``iface`` receives, e.g. on a trunk port, what its host sent)."""
        lines: list[str] = []
        cmd = [sys.executable, "-m", "topologies", "--workdir", str(self.workdir), "exec", name,
               "--", "tcpdump", "-i", iface, "-n", "-l", "-U", "-e",
               *(["-Q", "in"] if inbound else []), bpf]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             cwd=ROOT)
        try:
            assert p.stderr is not None
            head = ""
            while "listening" not in head:  # "listening on eth0, …" once the capture runs
                line = p.stderr.readline()
                assert line, f"tcpdump in {name} did not start: {head}"
                head += line
            yield lines
            time.sleep(0.5)
        finally:
            p.send_signal(signal.SIGINT)
            out, _ = p.communicate(timeout=10)
            lines.extend(ln for ln in out.splitlines() if ln.strip())


def bed_fixtures(workdir: Path, etcd_port: int, ofp_port: int, rest_port: int):
    """A module-scoped ``bed`` fixture and an autouse ``fresh`` one that stops containers."""

    @pytest.fixture(scope="module")
    def bed() -> Iterator[ScenarioBed]:
        b = ScenarioBed(workdir, etcd_port, ofp_port, rest_port)
        b.up()
        try:
            yield b
        finally:
            b.down()

    @pytest.fixture(autouse=True)
    def fresh(bed: ScenarioBed) -> Iterator[None]:
        yield
        bed.stop_all()

    return bed, fresh
