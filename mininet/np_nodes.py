"""Mininet node classes for netplugin demos (import only inside the sandbox, see sandbox.py).

* :class:`OVSHost` - a simulated host: a Mininet node (own network namespace) running its own
  ovsdb-server + ovs-vswitchd (userspace datapath), ``br-phy`` with its VTEP IP, and the agent;
* :class:`UnderlayBridge` - a Linux bridge in the sandbox's root namespace joining the hosts'
  underlay NICs (one for VXLAN, one VLAN trunk for the uplinks); Mininet's own ``LinuxBridge``
  needs ``brctl``, which Debian no longer installs;
* :class:`Container` - a plain Mininet ``Host`` without links: the agent plugs it, then it
  learns the interfaces and addresses the agent gave it;
* :class:`DemoNet` - Mininet whose ``pingall`` involves the containers only.

Every node's namespace is also given a name under ``/run/netns`` (a tmpfs private to the sandbox),
so the test bed's OVS recipe (``topologies.ovs``) and the runtime registry's ``netns`` paths work
unchanged.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mininet.link import Intf
from mininet.log import output
from mininet.net import Mininet
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

    def learn_interfaces(self) -> list[str]:
        """Record the interfaces the agent plugged here, with the addresses it gave them (so
        ``IP()``, ``pingall`` and node names on the CLI use them); returns "ifname ip" lines."""
        present = sorted(n for n in self.cmd("ls /sys/class/net").split() if n != "lo")
        for name in present:  # eth0 first: it becomes the default interface
            if name not in self.nameToIntf:
                Intf(name, node=self).updateAddr()
        return [f"{i.name} {i.IP()}" for i in self.intfList() if i.name != "lo"]


class DemoNet(Mininet):
    """Mininet whose ping tests (``pingall``, ``pingpair``, ``pingallfull``) involve only the
    containers: the simulated hosts carry the switches, they are no endpoints of the intent.
    Pings wait 1 s for a reply unless told otherwise (``pingall 3``)."""

    def containers(self) -> list[Container]:
        return [h for h in self.hosts if isinstance(h, Container)]

    def ping(self, hosts=None, timeout=None):  # noqa: ANN001,ANN201 - Mininet's signature
        if not hosts:
            output("*** Ping: testing ping reachability between the containers\n")
        return super().ping(hosts or self.containers(), timeout or "1")

    def pingFull(self, hosts=None, timeout=None):  # noqa: ANN001,ANN201,N802
        return super().pingFull(hosts or self.containers(), timeout or "1")

    def pingPair(self):  # noqa: ANN201,N802 - Mininet's name
        return self.ping(self.containers()[:2])

    def pingPairFull(self):  # noqa: ANN201,N802
        return self.pingFull(self.containers()[:2])


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
