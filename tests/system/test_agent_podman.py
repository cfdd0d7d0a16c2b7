"""A real runtime calls netplugin-cni: rootful podman (CNI backend, runc) on a simulated host."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from intent import keys
from tests.system.agent_fixtures import WORK, Bed, require_root_ovs, wait_for

pytestmark = pytest.mark.system
HOST = "npa-h3"
MAC = "02:00:0a:01:00:21"
PD = WORK / "podman"


def _setup_podman(bed: Bed) -> dict[str, str]:
    """Private containers.conf / storage.conf, the plugin, the network, a busybox image."""
    shutil.rmtree(PD / "netconf", ignore_errors=True)
    for d in ("plugins", "netconf", "tmp", "storage", "run"):
        (PD / d).mkdir(parents=True, exist_ok=True)
    plugin = PD / "plugins" / "netplugin-cni"
    plugin.write_text(f"#!/bin/sh\nexec {sys.executable} -m agent.cni\n")
    plugin.chmod(0o755)
    (PD / "containers.conf").write_text(textwrap.dedent(f"""\
        [containers]
        default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
        [engine]
        runtime = "runc"
        cgroup_manager = "cgroupfs"
        events_logger = "file"
        tmp_dir = "{PD / 'tmp'}"
        lock_type = "file"
        [network]
        network_backend = "cni"
        network_config_dir = "{PD / 'netconf'}"
        cni_plugin_dirs = ["{PD / 'plugins'}", "/usr/lib/cni"]
        """))
    (PD / "storage.conf").write_text(textwrap.dedent(f"""\
        [storage]
        driver = "overlay"
        graphroot = "{PD / 'storage'}"
        runroot = "{PD / 'run'}"
        """))
    (PD / "netconf" / "np.conflist").write_text(json.dumps({
        "cniVersion": "1.0.0", "name": "np", "plugins": [{
            "type": "netplugin-cni", "etcd": bed.url, "host": HOST,
            "ovsdb": bed.host.ovsdb}]}))
    env = dict(os.environ, CONTAINERS_CONF=str(PD / "containers.conf"),
               CONTAINERS_STORAGE_CONF=str(PD / "storage.conf"))
    if podman(env, "image", "exists", "localhost/npa-busybox", check=False).returncode != 0:
        root = PD / "rootfs"
        shutil.rmtree(root, ignore_errors=True)
        (root / "bin").mkdir(parents=True)
        (root / "etc").mkdir()
        shutil.copy("/bin/busybox", root / "bin" / "busybox")
        subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"],
                       check=True)
        (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
        (root / "etc" / "group").write_text("root:x:0:\n")
        subprocess.run(["tar", "-C", str(root), "-cf", str(PD / "busybox.tar"), "."], check=True)
        podman(env, "import", "--change", 'CMD ["/bin/sh"]', str(PD / "busybox.tar"),
               "localhost/npa-busybox")
    return env


def podman(env, *args: str, check: bool = True, ns: str | None = None):
    cmd = (["nsenter", f"--net=/run/netns/{ns}"] if ns else []) + ["podman", *args]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    if check and res.returncode != 0:
        raise AssertionError(f"{' '.join(args)}: exit {res.returncode}: {res.stderr.strip()}")
    return res


@pytest.fixture(scope="module")
def bed():
    require_root_ovs()
    if not (shutil.which("podman") and shutil.which("runc") and os.path.exists("/bin/busybox")):
        pytest.fail("needs podman, runc and busybox-static (`make test` installs them)")
    b = Bed(HOST, 24794).start()
    b.host.start_agent(b.url)
    try:
        yield b, _setup_podman(b)
    finally:
        env = dict(os.environ, CONTAINERS_CONF=str(PD / "containers.conf"),
                   CONTAINERS_STORAGE_CONF=str(PD / "storage.conf"))
        podman(env, "rm", "-f", "-t", "0", "npa-web", "npa-ghost", "npa-pod", check=False,
               ns=HOST)
        b.stop()


def test_podman_run_plugs_and_stop_unplugs(bed):
    b, env = bed
    b.network("blue")
    eid = b.endpoint("blue", "npa-web", "10.1.0.33", MAC)
    podman(env, "run", "-d", "--name", "npa-web", "--network", "np", "localhost/npa-busybox",
           "sleep", "600", ns=HOST)
    oper = wait_for(lambda: b.oper(eid), what="plugged")
    assert oper["netns"].startswith("/run/netns/")
    out = podman(env, "exec", "npa-web", "ip", "addr", "show", "eth0", ns=HOST).stdout
    assert "10.1.0.33/24" in out and MAC in out
    route = podman(env, "exec", "npa-web", "ip", "route", ns=HOST).stdout
    assert "default via 10.1.0.1" in route
    insp = json.loads(podman(env, "inspect", "npa-web", ns=HOST).stdout)[0]
    assert insp["NetworkSettings"]["Networks"]["np"]["IPAddress"] == "10.1.0.33"
    podman(env, "stop", "-t", "0", "npa-web", ns=HOST)
    wait_for(lambda: b.oper(eid) is None and not b.host.endpoint_ports(), what="unplugged")
    assert b.store.get(keys.runtime_container(HOST, "npa-web")) is None
    podman(env, "rm", "npa-web", ns=HOST)


def test_podman_run_without_intent_fails_cleanly(bed):
    b, env = bed
    res = podman(env, "run", "-d", "--name", "npa-ghost", "--network", "np",
                 "localhost/npa-busybox", "sleep", "600", check=False, ns=HOST)
    assert res.returncode != 0
    assert "container npa-ghost: no endpoint" in res.stderr
    assert b.host.endpoint_ports() == {}
    podman(env, "rm", "-f", "npa-ghost", check=False, ns=HOST)


def test_attach_uuid_is_the_short_id_podman_gave_the_container(bed):
    b, env = bed
    b.network("blue")
    cid = podman(env, "create", "--name", "npa-pod", "--network", "np", "localhost/npa-busybox",
                 "sleep", "600", ns=HOST).stdout.strip()
    assert len(cid) == 64, cid
    eid = b.endpoint("blue", "app", "10.1.0.34", MAC, attach_uuid=cid[:12])
    podman(env, "start", "npa-pod", ns=HOST)
    oper = wait_for(lambda: b.oper(eid), what="plugged into the container its id names")
    assert oper["container"] == "npa-pod"
    out = podman(env, "exec", "npa-pod", "ip", "addr", "show", "eth0", ns=HOST).stdout
    assert "10.1.0.34/24" in out
    reg = json.loads(b.store.get(keys.runtime_container(HOST, "npa-pod")).value)
    assert reg["id"] == cid
    podman(env, "rm", "-f", "-t", "0", "npa-pod", ns=HOST)
    wait_for(lambda: b.oper(eid) is None and not b.host.endpoint_ports(), what="unplugged")
    b.remove_endpoint(eid)
