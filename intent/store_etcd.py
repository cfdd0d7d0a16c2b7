"""etcd backend of the state store, through etcd3gw (etcd's HTTP/JSON gateway, API path ``/v3/``).

Works in plain threads and under eventlet monkey-patching (everything goes through ``requests``
and looks ``threading``/``time``/``socket`` up at call time).

The watch is our own loop over the gateway's streaming ``/v3/watch``: etcd3gw's watch ends silently
when etcd restarts.  The loop notices a closed or idle stream, reconnects with backoff and resumes
from the last delivered revision + 1, so no event is lost or repeated.  Each watch response carries
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
import warnings
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import requests

with warnings.catch_warnings():  # etcd3gw -> futurist imports eventlet, which warns on stderr
    warnings.simplefilter("ignore")
    from etcd3gw import client as etcd3gw_client
    from etcd3gw import exceptions as etcd3gw_exc

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
    StoreUnavailable,
    TxnResult,
    WatchCompacted,
    Watcher,
)

LOG = logging.getLogger(__name__)

API_PATH = "/v3/"  # etcd >= 3.4 (3.4 also answers /v3beta/; /v3alpha/ is gone)
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


def _session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False  # never send etcd traffic through an HTTP proxy from the environment
    return s


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


class EtcdStore(Store):
    """The store on an etcd cluster member reached at ``url`` (``http://host:port``).

    Every call is one HTTP request; ``StoreUnavailable`` (naming the URL) when etcd cannot be
    reached.  A write that fails that way may still have landed: use a ``txn`` compare (e.g.
    create-only, ``version = 0``) where a retry must not write twice.
    """

    def __init__(self, url: str = "http://127.0.0.1:2379", timeout: float = 5.0,
                 connect_timeout: float = 2.0, watch_idle_timeout: float = 60.0):
        parts = urlsplit(url if "://" in url else "http://" + url)
        if not parts.hostname:
            raise StoreError(f"bad etcd URL {url!r}")
        self.url = f"{parts.scheme}://{parts.netloc}"
        self.connect_timeout = connect_timeout
        self.watch_idle_timeout = watch_idle_timeout
        self._client = etcd3gw_client(
            host=parts.hostname, port=parts.port or 2379, protocol=parts.scheme or "http",
            timeout=(connect_timeout, timeout),  # type: ignore[arg-type]  # requests takes a pair
            api_path=API_PATH, session=_session())

    def _call(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._client.post(self._client.get_url(path), json=payload)
        except (etcd3gw_exc.ConnectionFailedError, etcd3gw_exc.ConnectionTimeoutError) as exc:
            raise StoreUnavailable(f"etcd at {self.url} is unreachable") from exc
        except etcd3gw_exc.Etcd3Exception as exc:
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
        ranges = [_range(k, False) for k in dict.fromkeys(keys)]
        ranges += [_range(p, True) for p in dict.fromkeys(prefixes)]
        items: dict[str, KeyValue] = {}
        for start in range(0, max(len(ranges), 1), TXN_OPS):
            ops = []
            for r in ranges[start:start + TXN_OPS]:
                req = dict(r)
                if revision:
                    req["revision"] = revision
                ops.append({"request_range": req})
            resp = self._call("kv/txn", {"compare": [], "success": ops, "failure": []})
            revision = revision or int(resp["header"]["revision"])
            for r in resp.get("responses", []):
                for raw in r.get("response_range", {}).get("kvs", []):
                    kv = _kv(raw)
                    items[kv.key] = kv
        return Snapshot(revision=revision or 0, items=items)

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
        self._client.session.close()


def _error_text(exc: etcd3gw_exc.Etcd3Exception) -> str:
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
        self.reconnects = 0

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
                LOG.warning("watch %r on etcd at %s lost (%s): resuming from revision %d",
                            self._prefix, self._store.url, exc or type(exc).__name__,
                            self._next)
            self.reconnects += 1
            self._closed.wait(backoff)
            backoff = min(backoff * 2, _BACKOFF_MAX)

    def _stream(self) -> Iterator[list[Event]]:
        """One connection: yields event batches (whole revisions) until it ends."""
        request = {"create_request": {**_range(self._prefix, True), "prev_kv": True,
                                      "progress_notify": True, "start_revision": self._next}}
        session = _session()
        try:
            resp = session.post(self._store._client.get_url("watch"), json=request, stream=True,
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
            session.close()

    def _handle(self, result: dict[str, Any]) -> list[Event]:
        header_rev = int(result.get("header", {}).get("revision", 0))
        if result.get("canceled"):
            compact = int(result.get("compact_revision", 0))
            if compact:
                raise WatchCompacted(
                    f"watch {self._prefix!r} on etcd at {self._store.url}: revision {self._next} "
                    f"was compacted (oldest is {compact}); re-list and watch again", compact)
            raise StoreError(f"etcd at {self._store.url} cancelled watch {self._prefix!r}: "
                             f"{result.get('cancel_reason', 'no reason given')}")
        if result.get("created"):
            if header_rev < self._seen:
                raise WatchCompacted(
                    f"etcd at {self._store.url} is at revision {header_rev} but revision "
                    f"{self._seen} was seen: history lost; re-list and watch again")
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


def open_store(url: str) -> Store:
    """``memory://`` gives a fresh ``MemoryStore``; anything else an ``EtcdStore`` on that URL."""
    if url.startswith("memory:"):
        from intent.store_memory import MemoryStore

        return MemoryStore()
    return EtcdStore(url)
