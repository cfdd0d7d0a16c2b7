"""Netlink edge (pyroute2): host-side veths and the container side of a plug.

The veth is created with its peer directly inside the container's netns (one netlink request), so
a crash never leaves a container-side interface without its host-side end; deleting the host end
removes both.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import socket
import struct
import threading
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError

from netaddr import IPAddress, IPNetwork

from agent.plan import Desired

CLONE_NEWNET = 0x40000000
SIOCETHTOOL = 0x8946
ETHTOOL_STXCSUM = 0x17
ETH_RE = re.compile(r"^eth(\d+)$")


class PlumbingError(Exception):
    """A netlink step failed; the message names the endpoint / netns / interface."""


def netns_exists(path: str) -> bool:
    return bool(path) and os.path.exists(path)


class HostSide:
    """Links in the agent's own (the host's) network namespace."""

    def __init__(self) -> None:
        self.ipr = IPRoute()

    def close(self) -> None:
        self.ipr.close()

    def link_index(self, name: str) -> int | None:
        idx = self.ipr.link_lookup(ifname=name)
        return idx[0] if idx else None

    def link_exists(self, name: str) -> bool:
        return self.link_index(name) is not None

    def links(self) -> frozenset[str]:
        return frozenset(link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links())

    def delete_link(self, name: str) -> None:
        idx = self.link_index(name)
        if idx is not None:
            try:
                self.ipr.link("del", index=idx)
            except NetlinkError as e:
                if e.code != errno.ENODEV:
                    raise

    def create_veth(self, want: Desired, ifname: str) -> None:
        """Host end ``want.port_name`` (up, MTU) with peer ``ifname`` inside ``want.netns``."""
        fd = _open_netns(want)
        try:
            self.ipr.link("add", ifname=want.port_name, kind="veth",
                          peer={"ifname": ifname, "net_ns_fd": fd})
        except NetlinkError as e:
            raise PlumbingError(f"endpoint {want.endpoint_id}: cannot create veth "
                                f"{want.port_name}/{ifname}: {e}") from e
        finally:
            os.close(fd)
        idx = self.link_index(want.port_name)
        self.ipr.link("set", index=idx, mtu=want.mtu, state="up")

    def create_veth_pair(self, name: str, peer: str, mtu: int, peer_mac: str) -> None:
        """Both ends here: ``name`` up, ``peer`` (for a runtime to move) with ``peer_mac``, TX
        checksum offload off on ``peer`` (the setting moves with it); MTU ``mtu`` on both."""
        try:
            self.ipr.link("add", ifname=name, kind="veth", peer={"ifname": peer})
            pidx, idx = self.link_index(peer), self.link_index(name)
            self.ipr.link("set", index=pidx, address=peer_mac, mtu=mtu)
            self.ipr.link("set", index=idx, mtu=mtu, state="up")
            tx_csum_off_here(peer)
        except (NetlinkError, OSError) as e:
            self.delete_link(name)
            raise PlumbingError(f"cannot create veth {name}/{peer}: {e}") from e

    def set_addr(self, dev: str, cidr: str) -> None:
        """Give ``dev`` the address ``cidr`` (idempotent) and bring it up."""
        idx = self.link_index(dev)
        if idx is None:
            raise PlumbingError(f"interface {dev} not found")
        net = IPNetwork(cidr)
        have = {(a.get_attr("IFA_ADDRESS"), a["prefixlen"]) for a in self.ipr.get_addr(index=idx)}
        if (str(net.ip), net.prefixlen) not in have:
            self.ipr.addr("add", index=idx, address=str(net.ip), prefixlen=net.prefixlen)
        self.ipr.link("set", index=idx, state="up")

    def move_addrs(self, src: str, dst: str) -> list[str]:
        """Move the IPv4 addresses of ``src`` to ``dst`` (the underlay NIC -> br-phy)."""
        sidx, didx = self.link_index(src), self.link_index(dst)
        if sidx is None or didx is None:
            raise PlumbingError(f"cannot move addresses {src} -> {dst}: interface missing")
        moved = []
        for a in self.ipr.get_addr(index=sidx, family=socket.AF_INET):
            ip, plen = a.get_attr("IFA_ADDRESS"), a["prefixlen"]
            self.ipr.addr("del", index=sidx, address=ip, prefixlen=plen)
            moved.append(f"{ip}/{plen}")
        for cidr in moved:
            self.set_addr(dst, cidr)
        self.ipr.link("set", index=didx, state="up")
        return moved

    def set_up(self, dev: str) -> None:
        idx = self.link_index(dev)
        if idx is None:
            raise PlumbingError(f"interface {dev} not found")
        self.ipr.link("set", index=idx, state="up")

    def ipv4_of(self, dev: str) -> str | None:
        idx = self.link_index(dev)
        if idx is None:
            return None
        for a in self.ipr.get_addr(index=idx, family=socket.AF_INET):
            return a.get_attr("IFA_ADDRESS")
        return None

    def dev_with_ip(self, ip: str) -> str | None:
        for a in self.ipr.get_addr(family=socket.AF_INET):
            if a.get_attr("IFA_ADDRESS") == ip:
                return self.ipr.get_links(a["index"])[0].get_attr("IFLA_IFNAME")
        return None

    def default_route_dev(self) -> str | None:
        for r in self.ipr.get_default_routes(family=socket.AF_INET):
            oif = r.get_attr("RTA_OIF")
            if oif:
                return self.ipr.get_links(oif)[0].get_attr("IFLA_IFNAME")
        return None


def _open_netns(want: Desired) -> int:
    try:
        return os.open(want.netns, os.O_RDONLY)
    except OSError as e:
        raise PlumbingError(f"endpoint {want.endpoint_id}: netns {want.netns} of container "
                            f"{want.owner} is gone: {e.strerror}") from e


class ContainerSide:
    """The container's netns, through a netlink socket opened inside it."""

    def __init__(self, want: Desired) -> None:
        self.want = want
        if not netns_exists(want.netns):
            raise PlumbingError(f"endpoint {want.endpoint_id}: netns {want.netns} of container "
                                f"{want.owner} is gone")
        self.ipr = IPRoute(netns=want.netns, flags=0)

    def close(self) -> None:
        self.ipr.close()

    def __enter__(self) -> ContainerSide:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def names(self) -> set[str]:
        return {link.get_attr("IFLA_IFNAME") for link in self.ipr.get_links()}

    def free_ifname(self, preferred: str | None = None) -> str:
        """``preferred`` if free, else the lowest free ``ethN``."""
        used = self.names()
        if preferred and preferred not in used:
            return preferred
        n = 0
        while f"eth{n}" in used:
            n += 1
        return f"eth{n}"

    def ip_user(self, ip: str) -> str | None:
        """The interface in this netns that already holds ``ip``, if any."""
        for a in self.ipr.get_addr(family=socket.AF_INET):
            if a.get_attr("IFA_ADDRESS") == ip:
                return self.ipr.get_links(a["index"])[0].get_attr("IFLA_IFNAME")
        return None

    def configure(self, ifname: str) -> None:
        """MAC, MTU, address, up, default route via the gateway, TX checksum offload off."""
        w = self.want
        idx = self.ipr.link_lookup(ifname=ifname)
        if not idx:
            raise PlumbingError(f"endpoint {w.endpoint_id}: {ifname} missing in {w.netns}")
        i = idx[0]
        self.ipr.link("set", index=i, address=w.mac, mtu=w.mtu)
        self.ipr.addr("add", index=i, address=w.ip, prefixlen=w.prefixlen)
        for lo in self.ipr.link_lookup(ifname="lo"):
            self.ipr.link("set", index=lo, state="up")
        self.ipr.link("set", index=i, state="up")
        _tx_csum_off(w.netns, ifname)
        if w.gateway and IPAddress(w.gateway) in IPNetwork(f"{w.ip}/{w.prefixlen}"):
            if not self.ipr.get_default_routes(family=socket.AF_INET):
                self.ipr.route("add", dst="0.0.0.0/0", gateway=w.gateway, oif=i)

    def find_by_mac(self, mac: str) -> str | None:
        for link in self.ipr.get_links():
            if (link.get_attr("IFLA_ADDRESS") or "").lower() == mac.lower():
                return link.get_attr("IFLA_IFNAME")
        return None


def socket_in_netns(path: str, family: int = socket.AF_INET, kind: int = socket.SOCK_DGRAM,
                    proto: int = 0) -> socket.socket:
    """A socket (default UDP) created inside the netns at ``path`` (a short-lived thread does
    setns; the socket stays in that namespace)."""
    libc = ctypes.CDLL(None, use_errno=True)
    box: dict = {}

    def run() -> None:
        try:
            fd = os.open(path, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns failed")
            finally:
                os.close(fd)
            box["sock"] = socket.socket(family, kind, proto)
        except OSError as e:  # reported to the caller
            box["err"] = e

    t = threading.Thread(target=run, name="netns-socket")
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box["sock"]


def _tx_csum_off(netns: str, ifname: str) -> None:
    """``ethtool -K <ifname> tx off`` inside ``netns`` (SIOCETHTOOL, ETHTOOL_STXCSUM)."""
    _tx_csum_off_with(socket_in_netns(netns), ifname)


def tx_csum_off_here(ifname: str) -> None:
    """``ethtool -K <ifname> tx off`` in this process's network namespace."""
    _tx_csum_off_with(socket.socket(socket.AF_INET, socket.SOCK_DGRAM), ifname)


def _tx_csum_off_with(sock: socket.socket, ifname: str) -> None:
    try:
        ecmd = ctypes.create_string_buffer(struct.pack("II", ETHTOOL_STXCSUM, 0))
        ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(ecmd)).ljust(40, b"\0")
        fcntl.ioctl(sock.fileno(), SIOCETHTOOL, ifreq)
    finally:
        sock.close()
