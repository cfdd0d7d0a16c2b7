"""etcd backend of the state store, through etcd's HTTP/JSON gateway (API path ``/v3/``).

Works in plain threads and under eventlet monkey-patching (everything goes through ``requests``
and looks ``threading``/``time``/``socket`` up at call time).

Several members of one cluster may be given; a call moves on to the next member when the one in
use does not answer, and a watch resumes on another member (see :mod:`intent.etcd_conn`, which
also holds the client TLS settings).

Unary calls go through :mod:`intent.etcd_http` (the standard library on kept connections).  The
watch is our own loop over the gateway's streaming ``/v3/watch`` (with ``requests``).  The loop
notices a closed or idle stream, reconnects with backoff and resumes from the last delivered
revision + 1, so no event is lost or repeated.  Each watch response carries
whole revisions (etcd never splits a revision across responses), so resuming at a revision boundary
is exact.  If the needed history was compacted, or etcd came back with less history than we had
seen (data loss), iterating raises ``WatchCompacted``: re-list with ``snapshot`` and watch again
from ``snapshot.revision + 1``.
"""

from __future__ import annotations

import base64
import json
import logging
import socket
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import requests

from intent.etcd_conn import DEFAULT_URL, Endpoints, EtcdTls, session
from intent.etcd_http import HttpError
from intent.store import (
    Compare,
    Delete,
    Event,
    KeyValue,
    Lease,
    LeaseExpired,
    Put,
    RevisionCompacted,
    Snapshot,
    Store,
    StoreError,
    TxnResult,
    WatchCompacted,
    Watcher,
)

LOG = logging.getLogger(__name__)

_OPS = {"=": "EQUAL", "!=": "NOT_EQUAL", "<": "LESS", ">": "GREATER"}
_TARGETS = {"value": ("VALUE", "value"), "version": ("VERSION", "version"),
            "create": ("CREATE", "create_revision"), "mod": ("MOD", "mod_revision")}
_BACKOFF_FIRST, _BACKOFF_MAX = 0.05, 2.0
PAGE = 5000  # keys per range request of a large snapshot
TXN_OPS = 128  # etcd's default --max-txn-ops


def _b64(text: str | bytes) -> str:
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def _unb64(data: str | None) -> str:
    return base64.b64decode(data or "").decode()


def prefix_range_end(prefix: str) -> bytes:
    """The smallest key after every key starting with ``prefix`` (``b"\\0"``: no upper bound)."""
    raw = bytearray(prefix.encode())
    while raw and raw[-1] == 0xFF:
        raw.pop()
    if not raw:
        return b"\0"
    raw[-1] += 1
    return bytes(raw)


def _range(key: str, prefix: bool) -> dict[str, str]:
    if prefix:
        return {"key": _b64(key or "\0"), "range_end": _b64(prefix_range_end(key))}
    return {"key": _b64(key)}


def _kv(raw: dict[str, Any]) -> KeyValue:
    return KeyValue(key=_unb64(raw["key"]), value=_unb64(raw.get("value")),
                    create_revision=int(raw.get("create_revision", 0)),
                    mod_revision=int(raw.get("mod_revision", 0)),
                    version=int(raw.get("version", 0)), lease=int(raw.get("lease", 0)))


def _event(raw: dict[str, Any]) -> Event:
    kv = raw["kv"]
    prev = raw.get("prev_kv")
    prev_value = _unb64(prev.get("value")) if prev else None
    if raw.get("type") == "DELETE":
        return Event("delete", _unb64(kv["key"]), None, int(kv["mod_revision"]), prev_value)
    return Event("put", _unb64(kv["key"]), _unb64(kv.get("value")), int(kv["mod_revision"]),
                 prev_value)


def _op(op: Put | Delete) -> dict[str, Any]:
    if isinstance(op, Put):
        body: dict[str, Any] = {"key": _b64(op.key), "value": _b64(op.value)}
        if op.lease:
            body["lease"] = op.lease
        return {"request_put": body}
    return {"request_delete_range": _range(op.key, op.prefix)}


def _compare(c: Compare) -> dict[str, Any]:
    if c.op not in _OPS or c.target not in _TARGETS:
        raise StoreError(f"bad compare {c.target!r} {c.op!r}")
    target, field_name = _TARGETS[c.target]
    value: str | int = _b64(str(c.value)) if c.target == "value" else int(c.value)
    return {"key": _b64(c.key), "result": _OPS[c.op], "target": target, field_name: value}


class EtcdLease(Lease):
    def __init__(self, store: EtcdStore, lease_id: int, ttl: int):
        self._store = store
        self.id = lease_id
        self.ttl = ttl

    def refresh(self) -> None:
        result = self._store._call("lease/keepalive", {"ID": self.id}).get("result", {})
        if int(result.get("TTL", 0)) <= 0:
            raise LeaseExpired(f"lease {self.id:x} has expired or was revoked")

    def revoke(self) -> None:
        try:
            self._store._call("lease/revoke", {"ID": self.id})
        except LeaseExpired:
            pass


_SAFE_TO_RESEND = frozenset({"kv/range", "lease/keepalive", "lease/revoke", "kv/compaction",
                             "maintenance/status"})


def _reads_only(path: str, payload: dict[str, Any]) -> bool:
    """Whether sending the request twice changes nothing more than sending it once."""
    if path in _SAFE_TO_RESEND:
        return True
    return path == "kv/txn" and all("request_range" in op for part in ("success", "failure")
                                    for op in payload.get(part, ()))


class EtcdStore(Store):
    """The store on an etcd cluster reached at ``url``: one client URL or several
    (``"http://h1:2379,http://h2:2379"`` or a list), ``https://`` with ``tls``.

    Every call is one HTTP request to the member in use; a member that does not answer is left
    for the next one (:mod:`intent.etcd_conn`), and ``StoreUnavailable`` (naming the URLs) comes
    when none answers.  A write that fails that way may still have landed: use a ``txn`` compare
    (e.g. create-only, ``version = 0``) or a write id where a retry must not write twice.
    """

    def __init__(self, url: str | Sequence[str] = DEFAULT_URL, timeout: float = 5.0,
                 connect_timeout: float = 2.0, watch_idle_timeout: float = 60.0,
                 tls: EtcdTls | None = None):
        self.endpoints = Endpoints(url, tls, timeout=timeout, connect_timeout=connect_timeout)
        self.connect_timeout = connect_timeout
        self.watch_idle_timeout = watch_idle_timeout

    @property
    def url(self) -> str:
        """The member in use."""
        return self.endpoints.url

    @property
    def urls(self) -> list[str]:
        return list(self.endpoints.urls)

    def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self.endpoints.post(path, payload, retry=_reads_only(path, payload))
        except HttpError as exc:
            detail = _error_text(exc)
            if "lease not found" in detail:
                raise LeaseExpired(f"etcd at {self.url}: {detail}") from exc
            if "compacted" in detail:
                raise RevisionCompacted(f"etcd at {self.url}: {detail}") from exc
            raise StoreError(f"etcd at {self.url} refused {path}: {detail}") from exc

    # -- KV ------------------------------------------------------------------------------------
    def revision(self) -> int:
        """The store's current revision."""
        resp = self._call("kv/range", {"key": _b64("\0"), "count_only": True})
        return int(resp["header"]["revision"])

    def get(self, key: str) -> KeyValue | None:
        kvs = self._call("kv/range", _range(key, False)).get("kvs", [])
        return _kv(kvs[0]) if kvs else None

    def put(self, key: str, value: str, lease: int = 0) -> int:
        body = _op(Put(key, value, lease))["request_put"]
        return int(self._call("kv/put", body)["header"]["revision"])

    def delete(self, key: str, prefix: bool = False) -> int:
        return int(self._call("kv/deleterange", _range(key, prefix)).get("deleted", 0))

    def snapshot(self, prefix: str, revision: int | None = None) -> Snapshot:
        items: dict[str, KeyValue] = {}
        rev = self._range_pages(prefix, revision, False, lambda kv: items.__setitem__(
            kv.key, kv))
        return Snapshot(revision=rev, items=items)

    def key_names(self, prefix: str, revision: int | None = None) -> tuple[int, list[str]]:
        names: list[str] = []
        rev = self._range_pages(prefix, revision, True, lambda kv: names.append(kv.key))
        return rev, names

    def _range_pages(self, prefix: str, revision: int | None, keys_only: bool, sink) -> int:
        """Read a prefix in pages of ``PAGE`` keys, all at one revision; returns it."""
        body = _range(prefix, True)
        end = body["range_end"]
        while True:
            req = dict(body, limit=PAGE, keys_only=keys_only)
            if revision:
                req["revision"] = revision
            resp = self._call("kv/range", req)
            revision = revision or int(resp["header"]["revision"])
            kvs = resp.get("kvs", [])
            for raw in kvs:
                sink(_kv(raw))
            if not resp.get("more") or not kvs:
                return revision
            body = {"key": _b64(base64.b64decode(kvs[-1]["key"]) + b"\0"), "range_end": end}

    def read(self, keys: Sequence[str] = (), prefixes: Sequence[str] = (),
             revision: int | None = None) -> Snapshot:
        """Keys in transactions of at most 128 range operations, prefixes in pages, all pinned
        to the revision of the first request."""
        items: dict[str, KeyValue] = {}
        names = list(dict.fromkeys(keys))
        for start in range(0, len(names), TXN_OPS):
            ops = []
            for k in names[start:start + TXN_OPS]:
                req = _range(k, False)
                if revision:
                    req["revision"] = revision
                ops.append({"request_range": req})
            resp = self._call("kv/txn", {"compare": [], "success": ops, "failure": []})
            revision = revision or int(resp["header"]["revision"])
            for r in resp.get("responses", []):
                for raw in r.get("response_range", {}).get("kvs", []):
                    kv = _kv(raw)
                    items[kv.key] = kv
        for p in dict.fromkeys(prefixes):
            revision = self._range_pages(p, revision, False,
                                         lambda kv: items.__setitem__(kv.key, kv))
        if revision is None:
            revision = self.revision()
        return Snapshot(revision=revision, items=items)

    def txn(self, compares: list[Compare], success: list[Put | Delete],
            failure: list[Put | Delete] | None = None) -> TxnResult:
        resp = self._call("kv/txn", {"compare": [_compare(c) for c in compares],
                                     "success": [_op(o) for o in success],
                                     "failure": [_op(o) for o in failure or []]})
        return TxnResult(bool(resp.get("succeeded", False)), int(resp["header"]["revision"]))

    def compact(self, revision: int) -> None:
        self._call("kv/compaction", {"revision": revision, "physical": True})

    def lease(self, ttl: int) -> Lease:
        resp = self._call("lease/grant", {"TTL": ttl, "ID": 0})
        return EtcdLease(self, int(resp["ID"]), int(resp.get("TTL", ttl)))

    def watch(self, prefix: str, start_revision: int | None = None) -> Watcher:
        if start_revision is None:
            current = self.revision()
            return EtcdWatcher(self, prefix, current + 1, seen=current)
        return EtcdWatcher(self, prefix, start_revision, seen=0)

    def close(self) -> None:
        self.endpoints.close()


def _error_text(exc: HttpError) -> str:
    text = exc.detail_text or ""
    try:
        return str(json.loads(text).get("error", text))
    except (ValueError, AttributeError):
        return text or repr(exc)


class _StreamEnded(Exception):
    """The watch stream closed or went idle; reconnect."""


class EtcdWatcher(Watcher):
    """Events under a prefix, across reconnects; see the module docstring."""

    def __init__(self, store: EtcdStore, prefix: str, start_revision: int, seen: int):
        self._store = store
        self._prefix = prefix
        self._next = start_revision  # the first revision not yet delivered
        self._seen = seen  # highest revision known to exist in the store
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._resp: requests.Response | None = None
        self._member = store.endpoints.index()  # the member this watch streams from
        self._behind = 0  # members in a row found behind what we have seen
        self.reconnects = 0

    @property
    def url(self) -> str:
        return self._store.endpoints.urls[self._member]

    def close(self) -> None:
        self._closed.set()
        with self._lock:
            resp = self._resp
        if resp is not None:
            _abort(resp)

    def __iter__(self) -> Iterator[Event]:
        for batch in self.batches():
            yield from batch

    def batches(self) -> Iterator[list[Event]]:
        backoff = _BACKOFF_FIRST
        while not self._closed.is_set():
            try:
                for batch in self._stream():
                    backoff = _BACKOFF_FIRST
                    if batch:
                        yield batch
                    if batch:
                        self._next = batch[-1].mod_revision + 1
                        self._seen = max(self._seen, batch[-1].mod_revision)
            except (_StreamEnded, requests.RequestException, OSError, ValueError) as exc:
                if self._closed.is_set():
                    return
                lost = self.url
                self._member = (self._member + 1) % len(self._store.endpoints.urls)
                LOG.warning("watch %r on etcd at %s lost (%s): resuming from revision %d%s",
                            self._prefix, lost, exc or type(exc).__name__, self._next,
                            f" on {self.url}" if self.url != lost else "")
            self.reconnects += 1
            self._closed.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _stream(self) -> Iterator[list[Event]]:
        """One connection: yields event batches (whole revisions) until it ends."""
        request = {"create_request": {**_range(self._prefix, True), "prev_kv": True,
                                      "progress_notify": True, "start_revision": self._next}}
        http = session(self._store.endpoints.tls)
        try:
            # hasleader: the member cancels the watch when it loses its leader (a member cut
            # off from the cluster would otherwise stream nothing, silently)
            resp = http.post(self._store.endpoints.watch_url(self._member), json=request,
                             stream=True, headers={"Grpc-Metadata-hasleader": "true"},
                             timeout=(self._store.connect_timeout,
                                      self._store.watch_idle_timeout))
            with self._lock:
                self._resp = resp
            if self._closed.is_set():
                return
            if resp.status_code != 200:
                raise _StreamEnded(f"HTTP {resp.status_code}")
            for msg in _json_lines(resp):
                result = msg.get("result")
                if result is None:
                    raise _StreamEnded(str(msg.get("error", msg)))
                yield self._handle(result)
            raise _StreamEnded("stream closed")
        finally:
            with self._lock:
                resp, self._resp = self._resp, None
            if resp is not None:
                resp.close()
            http.close()

    def _handle(self, result: dict[str, Any]) -> list[Event]:
        header_rev = int(result.get("header", {}).get("revision", 0))
        if result.get("canceled"):
            compact = int(result.get("compact_revision", 0))
            if compact:
                raise WatchCompacted(
                    f"watch {self._prefix!r} on etcd at {self.url}: revision {self._next} "
                    f"was compacted (oldest is {compact}); re-list and watch again", compact)
            raise _StreamEnded(f"etcd at {self.url} cancelled watch {self._prefix!r}: "
                               f"{result.get('cancel_reason', 'no reason given')}")
        if result.get("created"):
            if header_rev < self._seen:
                members = len(self._store.endpoints.urls)
                if self._behind < 3 * members - 1 and members > 1:
                    self._behind += 1  # a member still catching up: try another one
                    raise _StreamEnded(f"member at revision {header_rev}, behind {self._seen}")
                raise WatchCompacted(
                    f"etcd at {self.url} is at revision {header_rev} but revision "
                    f"{self._seen} was seen: history lost; re-list and watch again")
            self._behind = 0
            return []
        events = [e for e in map(_event, result.get("events", [])) if e.mod_revision >= self._next]
        if not result.get("events") and header_rev:
            # progress notification: every event up to header_rev has been sent
            self._next = max(self._next, header_rev + 1)
            self._seen = max(self._seen, header_rev)
        return events


def _json_lines(resp: requests.Response) -> Iterator[dict[str, Any]]:
    buf = b""
    for chunk in resp.iter_content(chunk_size=None):
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)


def _abort(resp: requests.Response) -> None:
    """Wake a reader blocked on ``resp`` from another thread/greenlet."""
    try:
        fd = resp.raw._fp.fileno()  # type: ignore[union-attr]
        dup = socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM)
        try:
            dup.shutdown(socket.SHUT_RDWR)
        finally:
            dup.close()
    except Exception:  # noqa: BLE001 - already closed or not a socket: nothing to wake
        pass


def open_store(url: str | Sequence[str], tls: EtcdTls | None = None) -> Store:
    """``memory://`` gives a fresh ``MemoryStore``; anything else an ``EtcdStore`` on that URL
    (or those URLs: ``"URL1,URL2,URL3"``, members of one cluster), with client ``tls``."""
    if isinstance(url, str) and url.startswith("memory:"):
        from intent.store_memory import MemoryStore

        return MemoryStore()
    return EtcdStore(url, tls=tls)
