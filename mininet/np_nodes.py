"""Mininet node classes for netplugin demos (import only inside the sandbox, see sandbox.py).

* :class:`OVSHost` - a simulated host: a Mininet node (own network namespace) running its own
  ovsdb-server + ovs-vswitchd (userspace datapath), ``br-phy`` with its VTEP IP, and the agent;
* :class:`UnderlayBridge` - a Linux bridge in the sandbox's root namespace joining the hosts'
  underlay NICs (one for VXLAN, one VLAN trunk for the uplinks); Mininet's own ``LinuxBridge``
  needs ``brctl``, which Debian no longer installs;
* containers are plain Mininet ``Host`` nodes without links: the agent plugs them.

Every node's namespace is also given a name under ``/run/netns`` (a tmpfs private to the sandbox),
so the test bed's OVS recipe (``topologies.ovs``) and the runtime registry's ``netns`` paths work
unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mininet.node import Host, Node, Switch

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from topologies import ovs  # noqa: E402
from topologies.plan import UNDERLAY_MTU, HostPlan  # noqa: E402


def name_netns(node: Node) -> str:
    """Give the node's namespace a name (``ip netns attach``); returns it."""
    subprocess.run(["ip", "netns", "attach", node.name, str(node.pid)], check=True)
    return node.name


class OVSHost(Node):
    """A simulated host with its own Open vSwitch (userspace datapath)."""

    def __init__(self, name: str, workdir: str = "/tmp/np-mn", **params) -> None:
        super().__init__(name, **params)
        self.paths = ovs.host_paths(Path(workdir), name)
        self.pids: dict[str, int] = {}

    def start_ovs(self, plan: HostPlan) -> None:
        """Start ovsdb-server + ovs-vswitchd in this node; br-phy with ``plan``'s VTEP IP."""
        for intf in self.intfList():
            self.cmd(f"ip link set {intf} mtu {UNDERLAY_MTU}")
        self.pids = ovs.start_daemons(self.paths, plan.netns)
        ovs.setup_underlay(self.paths, plan)

    def vsctl(self, *args: str) -> str:
        return ovs.vsctl(self.paths, *args)

    def terminate(self) -> None:
        for pid in self.pids.values():
            subprocess.run(["kill", str(pid)], check=False)
        super().terminate()


class Container(Host):
    """A container: a bare namespace that the agent plugs (no Mininet links)."""

    def addIntf(self, intf, port=None, moveIntfFn=None) -> None:  # noqa: ANN001,N802,N803
        """Record an interface the agent already put in this namespace (nothing to move)."""
        super().addIntf(intf, port=port, moveIntfFn=lambda *_a, **_k: True)


class UnderlayBridge(Switch):
    """A Linux bridge (``ip link add type bridge``) in the sandbox's root namespace."""

    def __init__(self, name: str, **params) -> None:
        params["inNamespace"] = False
        super().__init__(name, **params)

    def start(self, _controllers) -> None:  # noqa: ANN001 - Mininet's signature
        self.cmd(f"ip link del {self} 2>/dev/null; ip link add name {self} mtu {UNDERLAY_MTU} "
                 "type bridge stp_state 0 forward_delay 0")
        for intf in self.intfList():
            if str(intf) != "lo":
                self.cmd(f"ip link set {intf} mtu {UNDERLAY_MTU} master {self} up")
        self.cmd(f"ip link set {self} up")

    def stop(self, deleteIntfs: bool = True) -> None:  # noqa: N803 - Mininet's signature
        self.cmd(f"ip link del {self}")
        super().stop(deleteIntfs)
