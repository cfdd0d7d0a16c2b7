"""Tiny TCP/UDP servers and clients to run inside test-bed containers.

    python -m tests.system.nettools serve tcp|udp PORT
    python -m tests.system.nettools try tcp|udp IP PORT [--sport N]  # exit 0: the echo came back
    python -m tests.system.nettools stream IP PORT LOG               # one line every 0.1 s

``stream`` keeps one TCP connection open and appends ``ok <time>`` to LOG for every echo,
``broken <time>`` when the connection stops answering; it runs until it is killed.
"""

from __future__ import annotations

import socket
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


def main(argv: list[str]) -> int:
    if argv[0] == "serve":
        serve(argv[1], int(argv[2]))
    elif argv[0] == "try":
        sport = int(argv[5]) if len(argv) > 5 and argv[4] == "--sport" else 0
        return 0 if attempt(argv[1], argv[2], int(argv[3]), sport) else 1
    elif argv[0] == "stream":
        stream(argv[1], int(argv[2]), argv[3])
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
