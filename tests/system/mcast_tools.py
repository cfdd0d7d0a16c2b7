"""Multicast helpers run inside test-bed containers: ``python -m tests.system.mcast_tools``.

``send GROUP PORT COUNT``      send COUNT numbered UDP datagrams to GROUP:PORT (TTL 1)
``join GROUP PORT SECONDS``    join GROUP with a real socket (IP_ADD_MEMBERSHIP), print every
                               datagram received for SECONDS, then leave (the kernel sends the
                               IGMP leave)
``report GROUP``               send one IGMPv2 report for GROUP from a raw socket, without
                               joining: nobody answers the next queries (the membership expires)
"""

from __future__ import annotations

import socket
import struct
import sys
import time


def send(group: str, port: int, count: int) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    for i in range(count):
        s.sendto(f"datagram {i}".encode(), (group, port))
        time.sleep(0.02)


def join(group: str, port: int, seconds: float) -> None:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("", port))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP,
                 struct.pack("4s4s", socket.inet_aton(group), socket.inet_aton("0.0.0.0")))
    print("joined", flush=True)
    s.settimeout(0.2)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            data, _ = s.recvfrom(2048)
        except TimeoutError:
            continue
        print(data.decode(), flush=True)
    s.close()


def report(group: str) -> None:
    igmp = struct.pack("!BBH4s", 0x16, 0, 0, socket.inet_aton(group))
    total = sum(struct.unpack("!4H", igmp))
    csum = ~((total & 0xFFFF) + (total >> 16)) & 0xFFFF
    igmp = igmp[:2] + struct.pack("!H", csum) + igmp[4:]
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_IGMP)
    s.setsockopt(socket.IPPROTO_IP, socket.IP_MULTICAST_TTL, 1)
    s.sendto(igmp, (group, 0))


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] not in ("send", "join", "report"):
        print(__doc__)
        return 2
    if argv[0] == "send":
        send(argv[1], int(argv[2]), int(argv[3]))
    elif argv[0] == "join":
        join(argv[1], int(argv[2]), float(argv[3]))
    else:
        report(argv[1])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
