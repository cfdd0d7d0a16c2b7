"""``make demo`` (foundation part): a private etcd, an example loaded with netdcli, a table.

Starts etcd in a temporary directory on a free loopback port, runs ``netdcli -cfg`` on an example,
prints tenants, networks and endpoint allocations, and stops etcd again.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from intent.resolved import read_resolved
from intent.store_etcd import EtcdStore

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_etcd(workdir: Path) -> tuple[subprocess.Popen, str]:
    """A single-node etcd in ``workdir`` on free loopback ports; returns (process, url)."""
    binary = shutil.which("etcd")
    if binary is None:
        sys.exit("demo: etcd is not installed (apt-get install etcd-server)")
    client, peer = _free_port(), _free_port()
    url, peer_url = f"http://127.0.0.1:{client}", f"http://127.0.0.1:{peer}"
    log = open(workdir / "etcd.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen(
        [binary, "--name", "demo", "--data-dir", str(workdir / "data"),
         "--listen-client-urls", url, "--advertise-client-urls", url,
         "--listen-peer-urls", peer_url, "--initial-advertise-peer-urls", peer_url,
         "--initial-cluster", f"demo={peer_url}"],
        stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url + "/health", timeout=1) as resp:
                if resp.status == 200:
                    return proc, url
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit(f"demo: etcd did not become healthy; see {workdir / 'etcd.log'}")


def print_table(rows: list[list[str]], headers: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(headers, *rows, strict=False)]
    for row in [headers, ["-" * w for w in widths], *rows]:
        print("  ".join(str(x).ljust(w) for x, w in zip(row, widths, strict=False)))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--config", default=str(ROOT / "examples" / "mixed_vlan_vxlan_tenants.json"))
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="netplugin-demo-") as tmp:
        print(f">> starting a private etcd in {tmp}")
        proc, url = start_etcd(Path(tmp))
        try:
            print(f">> netdcli -etcd {url} -cfg {args.config}")
            result = subprocess.run([sys.executable, "-m", "netdcli.cli", "-etcd", url, "-cfg",
                                     args.config], cwd=ROOT)
            if result.returncode != 0:
                return result.returncode
            store = EtcdStore(url)
            resolved = read_resolved(store)
            store.close()
            print("\nNetworks")
            print_table([[n.tenant, n.name, n.net_type, str(n.tag), n.subnet, n.gateway or ""]
                         for n in resolved.networks],
                        ["TENANT", "NETWORK", "TYPE", "VLAN/VNI", "SUBNET", "GATEWAY"])
            print("\nEndpoints")
            print_table([[e.id, e.container, e.host or "(unbound)", e.ip, e.mac]
                         for e in resolved.endpoints],
                        ["ENDPOINT", "CONTAINER", "HOST", "IP", "MAC"])
        finally:
            proc.terminate()
            proc.wait(timeout=10)
            print("\n>> etcd stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
