"""A real dockerd (Debian's docker.io 20.10, unpacked by ``make setup``) per test-bed host, with
netplugin-docker next to it.

Per host, everything is private: dockerd runs in the host's network namespace and in a mount
namespace of its own (held by a ``sleep`` process) where a tmpfs covers ``/run/docker``, so the
fixed plugin directory ``/run/docker/plugins`` is this host's alone; data root, exec root, API
socket, config file and pid file live under the test's work dir.  The driver is started inside
the same two namespaces.  Every process is stopped by its pid.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.system.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
DOCKER_ROOT = Path(os.environ.get("NETPLUGIN_DOCKER_ROOT", "/var/cache/netplugin/docker/root"))
IMAGE = "localhost/np-busybox"
PLUGIN = "netplugin"


def require_docker() -> None:
    missing = [str(p) for p in (DOCKER_ROOT / "usr/sbin/dockerd", DOCKER_ROOT / "usr/bin/docker",
                                Path("/usr/sbin/runc"), Path("/bin/busybox")) if not p.exists()]
    if os.geteuid() != 0 or missing:
        pytest.fail("needs root, Docker unpacked in $NETPLUGIN_DOCKER_ROOT, runc and "
                    f"busybox-static (`make setup` fetches them); missing: {', '.join(missing)}")


def _stop_pid(proc: subprocess.Popen | None, sig: int = signal.SIGTERM, grace: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def busybox_tar(workdir: Path) -> Path:
    """A rootfs tar of static busybox (``docker import`` makes it an image: no registry)."""
    tar = workdir / "busybox.tar"
    if tar.exists():
        return tar
    root = workdir / "rootfs"
    shutil.rmtree(root, ignore_errors=True)
    (root / "bin").mkdir(parents=True)
    (root / "etc").mkdir()
    shutil.copy("/bin/busybox", root / "bin" / "busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\n")
    subprocess.run(["tar", "-C", str(root), "-cf", str(tar), "."], check=True)
    shutil.rmtree(root)
    return tar


class DockerHost:
    """dockerd and netplugin-docker of one test-bed host."""

    def __init__(self, workdir: Path, host: str, netns: str, etcd_url: str, ovsdb: str) -> None:
        self.host = host
        self.netns = netns
        self.etcd_url = etcd_url
        self.ovsdb = ovsdb
        self.dir = workdir / "docker" / host
        self.sock = self.dir / "run" / "docker.sock"
        self.holder: subprocess.Popen | None = None
        self.dockerd: subprocess.Popen | None = None
        self.driver: subprocess.Popen | None = None
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{self.sock}",
                        PATH=f"{DOCKER_ROOT}/usr/bin:{DOCKER_ROOT}/usr/sbin:"
                             f"{os.environ.get('PATH', '/usr/bin:/bin')}")

    # ------------------------------------------------------------------ processes
    def _enter(self) -> list[str]:
        assert self.holder is not None
        return ["nsenter", f"--mount=/proc/{self.holder.pid}/ns/mnt",
                f"--net=/run/netns/{self.netns}"]

    def _log(self, name: str):  # noqa: ANN202
        return open(self.dir / f"{name}.log", "ab")  # noqa: SIM115

    def start(self, image_tar: Path) -> DockerHost:
        shutil.rmtree(self.dir, ignore_errors=True)
        for d in ("data", "exec", "run"):
            (self.dir / d).mkdir(parents=True)
        (self.dir / "daemon.json").write_text(json.dumps(
            {"deprecated-key-path": str(self.dir / "key.json")}))
        self.holder = subprocess.Popen(
            ["nsenter", f"--net=/run/netns/{self.netns}", "unshare", "--mount",
             "--propagation", "private", "sh", "-c",
             "mkdir -p /run/docker && mount -t tmpfs -o mode=0755 tmpfs /run/docker && "
             "mkdir /run/docker/plugins && exec sleep infinity"],
            stdout=self._log("holder"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: Path(f"/proc/{self.holder.pid}/comm").read_text().strip() == "sleep",
                 10, f"{self.host}'s mount namespace")
        self.start_dockerd()
        self.docker("import", str(image_tar), IMAGE)
        return self

    def start_dockerd(self) -> None:
        self.sock.unlink(missing_ok=True)
        self.dockerd = subprocess.Popen(
            self._enter() + [
                str(DOCKER_ROOT / "usr/sbin/dockerd"), "--config-file", str(self.dir /
                                                                            "daemon.json"),
                "--data-root", str(self.dir / "data"), "--exec-root", str(self.dir / "exec"),
                "--pidfile", str(self.dir / "run" / "dockerd.pid"), "-H", f"unix://{self.sock}",
                "--bridge=none", "--iptables=false", "--ip6tables=false", "--ip-masq=false",
                "--userland-proxy=false", "--storage-driver=overlay2", "--live-restore",
                "--exec-opt", "native.cgroupdriver=cgroupfs"],
            env=self.env, stdout=self._log("dockerd"), stderr=subprocess.STDOUT,
            start_new_session=True)
        wait_for(lambda: self.dockerd.poll() is not None or self.docker(
            "version", check=False).returncode == 0, 60, f"dockerd on {self.host}")
        assert self.dockerd.poll() is None, f"dockerd on {self.host} exited:\n{self.tail()}"

    def stop_dockerd(self) -> None:
        _stop_pid(self.dockerd)
        self.dockerd = None

    def plugin_socket(self) -> Path:
        assert self.holder is not None
        return Path(f"/proc/{self.holder.pid}/root/run/docker/plugins/{PLUGIN}.sock")

    def start_driver(self) -> None:
        self.driver = subprocess.Popen(
            self._enter() + [sys.executable, "-m", "agent.docker_main", "--host", self.host,
                             "--etcd", self.etcd_url, "--ovsdb", self.ovsdb,
                             "--docker-host", f"unix://{self.sock}", "--log-level", "DEBUG"],
            cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)),
            stdout=self._log("driver"), stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self.driver.poll() is not None or self.plugin_socket().exists(), 30,
                 f"netplugin-docker on {self.host}")
        assert self.driver.poll() is None, f"driver on {self.host} exited:\n{self.tail('driver')}"

    def stop_driver(self, sig: int = signal.SIGTERM) -> None:
        _stop_pid(self.driver, sig)
        self.driver = None

    def stop(self) -> None:
        if self.dockerd is not None and self.dockerd.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
            nets = [n for n in self.docker("network", "ls", "-q", "--filter",
                                           f"driver={PLUGIN}", check=False).stdout.split()]
            if nets:
                self.docker("network", "rm", *nets, check=False)
        self.stop_dockerd()
        self.stop_driver()
        _stop_pid(self.holder)
        self.holder = None

    # ------------------------------------------------------------------ commands
    def docker(self, *args: str, check: bool = True,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([str(DOCKER_ROOT / "usr/bin/docker"), *args], env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"{self.host}: docker {' '.join(args)}: exit {res.returncode}: "
                                 f"{res.stderr.strip()}")
        return res

    def run(self, name: str, network: str, *opts: str) -> subprocess.CompletedProcess[str]:
        return self.docker("run", "-d", "--name", name, "--network", network, *opts, IMAGE,
                           "sleep", "3600", check=False)

    def ip_of(self, name: str, network: str) -> str:
        out = self.docker("inspect", "-f", f'{{{{(index .NetworkSettings.Networks "{network}")'
                                           f'.IPAddress}}}}', name).stdout.strip()
        return out

    def exec(self, name: str, *cmd: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.docker("exec", name, *cmd, check=False, timeout=timeout)

    def reaches(self, name: str, ip: str, timeout: float = 10) -> bool:
        deadline = time.monotonic() + timeout
        while True:
            if self.exec(name, "ping", "-c1", "-W1", ip).returncode == 0:
                return True
            if time.monotonic() > deadline:
                return False

    def tail(self, log: str = "dockerd", lines: int = 30) -> str:
        try:
            text = (self.dir / f"{log}.log").read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def ports(self) -> list[str]:
        """Names of the Docker driver's ports on this host's br-int."""
        out = subprocess.run(
            ["ovs-vsctl", f"--db={self.ovsdb}", "--timeout=5", "--format=json",
             "--columns=name,external_ids", "list", "Interface"],
            capture_output=True, text=True, check=True).stdout
        rows = json.loads(out)["data"]
        return sorted(name for name, ids in rows
                      if dict(ids[1]).get("np-driver") == "docker")
