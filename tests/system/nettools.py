"""Tiny TCP/UDP servers and clients to run inside test-bed containers.

    python -m tests.system.nettools serve tcp|udp PORT
    python -m tests.system.nettools try tcp|udp IP PORT [--sport N]  # exit 0: the echo came back
    python -m tests.system.nettools stream IP PORT LOG               # one line every 0.1 s
    python -m tests.system.nettools vxlan VTEP VNI MAC IP PORT TEXT  # one crafted VXLAN packet

``stream`` keeps one TCP connection open and appends ``ok <time>`` to LOG for every echo,
``broken <time>`` when the connection stops answering; it runs until it is killed.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
import time


def serve(proto: str, port: int) -> None:
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", port))
        while True:
            data, peer = s.recvfrom(2048)
            s.sendto(data, peer)
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", port))
    s.listen(16)
    while True:
        conn, _ = s.accept()
        threading.Thread(target=_echo, args=(conn,), daemon=True).start()


def _echo(conn: socket.socket) -> None:
    with conn:
        while data := conn.recv(2048):
            conn.sendall(data)


def attempt(proto: str, ip: str, port: int, sport: int = 0, timeout: float = 2.0) -> bool:
    if proto == "udp":
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.settimeout(timeout)
        if sport:
            s.bind(("0.0.0.0", sport))
        s.sendto(b"ping", (ip, port))
        try:
            return s.recvfrom(2048)[0] == b"ping"
        except OSError:
            return False
    s = socket.socket()
    s.settimeout(timeout)
    if sport:
        s.bind(("0.0.0.0", sport))
    try:
        s.connect((ip, port))
        s.sendall(b"ping\n")
        return s.recv(2048) == b"ping\n"
    except OSError:
        return False
    finally:
        s.close()


def stream(ip: str, port: int, log: str) -> None:
    s = socket.create_connection((ip, port), timeout=5)
    s.settimeout(0.5)
    with open(log, "a", buffering=1) as out:
        while True:
            try:
                s.sendall(b"x\n")
                ok = s.recv(64) == b"x\n"
            except OSError:
                ok = False
            out.write(f"{'ok' if ok else 'broken'} {time.time():.3f}\n")
            time.sleep(0.1)


SO_NO_CHECK = 11  # Linux: send UDP over IPv4 without a checksum


def _checksum(data: bytes) -> int:
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    total = (total >> 16) + (total & 0xFFFF)
    return ~(total + (total >> 16)) & 0xFFFF


def vxlan_frame(vni: int, mac: str, ip: str, port: int, text: str) -> bytes:
    """A VXLAN payload: an Ethernet frame to ``mac`` carrying UDP ``text`` to ``ip:port``."""
    body = text.encode()
    udp = struct.pack("!HHHH", 40000, port, 8 + len(body), 0) + body
    src = socket.inet_aton("10.255.0.99")
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 1, 0, 64, 17, 0, src,
                      socket.inet_aton(ip))
    hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    eth = bytes.fromhex(mac.replace(":", "")) + bytes.fromhex("02aabbccddee") + b"\x08\x00"
    return struct.pack("!II", 0x08000000, vni << 8) + eth + hdr + udp


def send_vxlan(vtep: str, vni: int, mac: str, ip: str, port: int, text: str) -> None:
    """Send one VXLAN packet to ``vtep`` from this namespace's own address."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        # no UDP checksum: veths leave it to offload, and OVS would refuse the unfinished sum
        s.setsockopt(socket.SOL_SOCKET, SO_NO_CHECK, 1)
        s.sendto(vxlan_frame(vni, mac, ip, port, text), (vtep, 4789))


def main(argv: list[str]) -> int:
    if argv[0] == "serve":
        serve(argv[1], int(argv[2]))
    elif argv[0] == "try":
        sport = int(argv[5]) if len(argv) > 5 and argv[4] == "--sport" else 0
        return 0 if attempt(argv[1], argv[2], int(argv[3]), sport) else 1
    elif argv[0] == "stream":
        stream(argv[1], int(argv[2]), argv[3])
    elif argv[0] == "vxlan":
        send_vxlan(argv[1], int(argv[2]), argv[3], argv[4], int(argv[5]), argv[6])
        return 0
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
