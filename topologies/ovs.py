"""One simulated host's Open vSwitch: private ovsdb-server + ovs-vswitchd (userspace datapath).

Recipe (see DESIGN.md "Runtime choices"):

* private run dir per host (``OVS_RUNDIR``), explicit ``--unixctl`` and ``--pidfile`` for both
  daemons, both started inside the host's network namespace with ``--detach`` (they return once
  ready);
* ``br-phy``: a netdev bridge holding the underlay NIC; the host's VTEP IP sits on its internal
  port, so VXLAN from ``br-int`` is routed out through it; fixed MAC so peers pre-seed
  ``tnl/neigh`` (no first-packet delay);
* ``ovs-vsctl add-br`` exits 0 even when a port failed: check ``ofport``/``error``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from topologies import proc
from topologies.plan import PHY_BRIDGE, UNDERLAY_IF, UNDERLAY_MTU, HostPlan

SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")


@dataclass(frozen=True)
class OvsPaths:
    """Where one host's OVS keeps its files."""

    home: Path

    @property
    def run(self) -> Path:
        return self.home / "run"

    @property
    def db(self) -> Path:
        return self.run / "conf.db"

    @property
    def db_sock(self) -> Path:
        return self.run / "db.sock"

    @property
    def vswitchd_ctl(self) -> Path:
        return self.run / "ovs-vswitchd.ctl"

    @property
    def controller_sock(self) -> Path:
        """The relay to the controller; inside the run dir, where OVS accepts unix targets."""
        return self.run / "controller.sock"

    def controller_sock_of(self, index: int) -> Path:
        """The relay to the test bed's controller number ``index`` (0: :attr:`controller_sock`)."""
        return self.controller_sock if index == 0 else self.run / f"controller{index + 1}.sock"

    def env(self) -> dict[str, str]:
        return {"OVS_RUNDIR": str(self.run), "OVS_DBDIR": str(self.run),
                "OVS_LOGDIR": str(self.home), "OVS_SYSCONFDIR": str(self.run)}


def host_paths(workdir: Path, host: str) -> OvsPaths:
    return OvsPaths(workdir / "hosts" / host)


def vsctl(paths: OvsPaths, *args: str, check: bool = True) -> str:
    res = proc.run(["ovs-vsctl", f"--db=unix:{paths.db_sock}", "--timeout=10", *args],
                   env=paths.env(), check=check)
    return res.stdout.strip()


def appctl(paths: OvsPaths, *args: str, check: bool = True) -> str:
    res = proc.run(["ovs-appctl", "-t", str(paths.vswitchd_ctl), *args], env=paths.env(),
                   check=check)
    return res.stdout.strip()


def _pidfile(path: Path) -> int:
    return int(path.read_text().strip())


def daemon_command(paths: OvsPaths, netns: str, name: str) -> list[str]:
    """The command line (``--detach``: it returns once the daemon is ready) of ``name``
    (``ovsdb-server`` or ``ovs-vswitchd``) in ``netns``."""
    common = [f"--pidfile={paths.run / f'{name}.pid'}", f"--unixctl={paths.run / f'{name}.ctl'}",
              f"--log-file={paths.home / f'{name}.log'}", "-vconsole:off", "--detach",
              "--no-chdir"]
    if name == "ovsdb-server":
        return proc.ns_cmd(netns, ["ovsdb-server", str(paths.db),
                                   f"--remote=punix:{paths.db_sock}", *common])
    return proc.ns_cmd(netns, ["ovs-vswitchd", f"unix:{paths.db_sock}", *common])


def daemon_launch(paths: OvsPaths, netns: str, name: str) -> dict:
    """How to start daemon ``name`` again (the test bed's ``restart``)."""
    return {"cmd": daemon_command(paths, netns, name), "env": paths.env(),
            "pidfile": str(paths.run / f"{name}.pid")}


def start_daemon(paths: OvsPaths, netns: str, name: str) -> int:
    """Start one daemon (ready when this returns); returns its pid."""
    proc.run(daemon_command(paths, netns, name), env=paths.env())
    pidfile = paths.run / f"{name}.pid"
    pid = _pidfile(pidfile)
    link = paths.run / f"{name}.{pid}.ctl"  # plain `ovs-appctl` (no -t) looks for it
    for old in paths.run.glob(f"{name}.*.ctl"):
        old.unlink()
    link.symlink_to(f"{name}.ctl")
    return pid


def start_daemons(paths: OvsPaths, netns: str) -> dict[str, int]:
    """Create the db and start both daemons in ``netns``; returns their pids."""
    paths.run.mkdir(parents=True, exist_ok=True)
    for stale in paths.run.iterdir():
        stale.unlink()
    proc.run(["ovsdb-tool", "create", str(paths.db), str(SCHEMA)])
    out = {"ovsdb-server": start_daemon(paths, netns, "ovsdb-server")}
    vsctl(paths, "--no-wait", "init")
    out["ovs-vswitchd"] = start_daemon(paths, netns, "ovs-vswitchd")
    return out


def setup_underlay(paths: OvsPaths, host: HostPlan) -> None:
    """``br-phy`` with the underlay NIC and the VTEP IP; the uplink NIC up (agent adds it)."""
    vsctl(paths, "--may-exist", "add-br", PHY_BRIDGE,
          "--", "set", "bridge", PHY_BRIDGE, "datapath_type=netdev", "fail_mode=standalone",
          f"other_config:hwaddr={host.phy_mac}",
          "--", "--may-exist", "add-port", PHY_BRIDGE, UNDERLAY_IF,
          "--", "set", "interface", UNDERLAY_IF, f"mtu_request={UNDERLAY_MTU}",
          "--", "set", "interface", PHY_BRIDGE, f"mtu_request={UNDERLAY_MTU}")
    for iface in (PHY_BRIDGE, UNDERLAY_IF):
        ofport = vsctl(paths, "get", "interface", iface, "ofport")
        if not ofport.lstrip("-").isdigit() or int(ofport) <= 0:
            err = vsctl(paths, "get", "interface", iface, "error", check=False)
            raise proc.CommandError(f"{host.name}: OVS port {iface} failed: {err or ofport}")
    address_underlay(host)


def address_underlay(host: HostPlan) -> None:
    """The VTEP IP on br-phy's internal port, links up (again after ovs-vswitchd restarts: the
    userspace datapath re-creates br-phy's tap device without the address)."""
    ns = host.netns
    proc.run(["ip", "-n", ns, "addr", "replace", f"{host.vtep_ip}/{host.vtep_prefixlen}",
              "dev", PHY_BRIDGE])
    for ifname in (UNDERLAY_IF, PHY_BRIDGE, host.uplink):
        proc.run(["ip", "-n", ns, "link", "set", ifname, "up"])


def seed_neighbours(paths: OvsPaths, peers: list[HostPlan]) -> None:
    """Pre-seed OVS's tunnel neighbour cache (and the kernel's) with every peer VTEP."""
    for peer in peers:
        appctl(paths, "tnl/neigh/set", PHY_BRIDGE, peer.vtep_ip, peer.phy_mac, check=False)


def bridges(paths: OvsPaths) -> list[str]:
    out = vsctl(paths, "list-br", check=False)
    return [b for b in out.splitlines() if b]
