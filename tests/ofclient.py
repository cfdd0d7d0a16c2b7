"""A minimal OpenFlow 1.3 client for tests: talk to a bridge's management socket directly.

``ovs-ofctl`` prints text; this sends and receives raw messages (what the controller's wire
code produces and parses), so tests can check those bytes against a real switch.
"""

from __future__ import annotations

import socket
import struct

from ofctl import wire

OFPT_HELLO, OFPT_ERROR, OFPT_ECHO_REQUEST, OFPT_MULTIPART_REPLY, OFPT_BARRIER_REPLY = \
    0, 1, 2, 19, 21


class OfClient:
    """One OpenFlow 1.3 connection to ``unix:PATH`` (a bridge's ``.mgmt`` socket)."""

    def __init__(self, path: str, timeout: float = 10.0) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.sock.connect(path)
        self._buf = b""
        self._xid = 100
        self.sock.sendall(struct.pack("!BBHI", 4, OFPT_HELLO, 8, 1))
        msg_type, _, _ = self.recv()
        assert msg_type == OFPT_HELLO, msg_type

    def close(self) -> None:
        self.sock.close()

    def xid(self) -> int:
        self._xid += 1
        return self._xid

    def recv(self) -> tuple[int, int, bytes]:
        """(type, xid, whole message) of the next message (echo requests answered)."""
        while True:
            while len(self._buf) < 8 or len(self._buf) < struct.unpack_from("!H",
                                                                             self._buf, 2)[0]:
                chunk = self.sock.recv(65536)
                if not chunk:
                    raise ConnectionError("switch closed the connection")
                self._buf += chunk
            _v, msg_type, length, xid = struct.unpack_from("!BBHI", self._buf)
            msg, self._buf = self._buf[:length], self._buf[length:]
            if msg_type == OFPT_ECHO_REQUEST:
                self.sock.sendall(struct.pack("!BBHI", 4, 3, length, xid) + msg[8:])
                continue
            return msg_type, xid, msg

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def barrier(self) -> list[bytes]:
        """Send a barrier; returns the error messages that arrived before its reply."""
        x = self.xid()
        self.send(wire.barrier(x))
        errors = []
        while True:
            msg_type, xid, msg = self.recv()
            if msg_type == OFPT_ERROR:
                errors.append(msg)
            elif msg_type == OFPT_BARRIER_REPLY and xid == x:
                return errors

    def multipart(self, request: bytes) -> bytes:
        """The concatenated bodies of the replies to ``request`` (its xid is taken from it)."""
        x = struct.unpack_from("!I", request, 4)[0]
        self.send(request)
        body = b""
        while True:
            msg_type, xid, msg = self.recv()
            if msg_type == OFPT_ERROR and xid == x:
                raise RuntimeError(f"switch refused the request: {msg.hex()}")
            if msg_type != OFPT_MULTIPART_REPLY or xid != x:
                continue
            flags = struct.unpack_from("!H", msg, 10)[0]
            body += msg[16:]
            if not flags & 1:
                return body
