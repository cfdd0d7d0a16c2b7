"""The state store interface.  Backends: ``intent.store_memory`` (tests) and ``intent.store_etcd``.

Keys and values are ``str``.  Revisions are etcd's: one store-wide counter bumped by every write.
A transaction checks all ``Compare``s and then applies either the success or the failure ops,
atomically.  ``watch`` yields events in revision order and, for the etcd backend, survives an etcd
restart without losing or repeating an event.

When a watch cannot continue without a gap (its next revision was compacted away, or the store
lost history), iterating it raises ``WatchCompacted``.  The consumer then re-lists and re-watches::

    snap = store.snapshot(prefix)            # rebuild local state from snap.items
    watcher = store.watch(prefix, snap.revision + 1)
"""

from __future__ import annotations

import abc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field


class StoreError(Exception):
    """The store cannot be reached or refused a request."""


class StoreUnavailable(StoreError):
    """The store cannot be reached (connection refused, timeout)."""


class WatchCompacted(StoreError):
    """A watch cannot resume without a gap: re-list (``snapshot``) and watch again from there.

    ``revision`` is the oldest revision the store can still replay (0 when unknown).
    """

    def __init__(self, message: str, revision: int = 0):
        super().__init__(message)
        self.revision = revision


class RevisionCompacted(StoreError):
    """A read at a past revision that the store no longer has."""


class LeaseExpired(StoreError):
    """The lease no longer exists (expired or revoked); its keys are gone."""


@dataclass(frozen=True)
class KeyValue:
    key: str
    value: str
    create_revision: int = 0
    mod_revision: int = 0
    version: int = 0
    lease: int = 0


@dataclass(frozen=True)
class Compare:
    """One condition of a transaction.

    ``target`` is ``"value"``, ``"version"``, ``"create"`` (create revision) or ``"mod"`` (mod
    revision); ``op`` is one of ``= != < >``.  A missing key has version, create and mod revision 0;
    a ``"value"`` compare on a missing key is always false, whatever the op (etcd's rule).
    """

    key: str
    target: str
    op: str
    value: str | int


@dataclass(frozen=True)
class Put:
    key: str
    value: str
    lease: int = 0


@dataclass(frozen=True)
class Delete:
    key: str
    prefix: bool = False


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int


@dataclass(frozen=True)
class Event:
    """A change seen by a watch.  ``type`` is ``"put"`` or ``"delete"``."""

    type: str
    key: str
    value: str | None
    mod_revision: int
    prev_value: str | None = None


@dataclass(frozen=True)
class Snapshot:
    """All keys under a prefix at one revision.

    ``intent_revision`` is set (non-zero) by :func:`intent.consistent.read_consistent` when a
    large write was under way: intent keys were then read as of that earlier revision.
    """

    revision: int
    items: dict[str, KeyValue] = field(default_factory=dict)
    intent_revision: int = 0

    def value(self, key: str) -> str | None:
        kv = self.items.get(key)
        return kv.value if kv else None


class Lease(abc.ABC):
    id: int
    ttl: int

    @abc.abstractmethod
    def refresh(self) -> None:
        """Keep the lease alive for another ``ttl`` seconds; ``LeaseExpired`` if it is gone."""

    @abc.abstractmethod
    def revoke(self) -> None:
        """End the lease now: its keys are deleted."""


class Watcher(abc.ABC):
    """An iterator of events; ``close()`` ends it from another thread/greenlet."""

    @abc.abstractmethod
    def __iter__(self) -> Iterator[Event]: ...

    def batches(self) -> Iterator[list[Event]]:
        """The same events in lists that each end on a revision boundary (every event of a
        revision is in one list), so that a consumer knows when a revision is complete."""
        for ev in self:
            yield [ev]

    @abc.abstractmethod
    def close(self) -> None: ...


class Store(abc.ABC):
    """What every backend provides."""

    @abc.abstractmethod
    def get(self, key: str) -> KeyValue | None: ...

    @abc.abstractmethod
    def put(self, key: str, value: str, lease: int = 0) -> int:
        """Write a key; returns the new store revision."""

    @abc.abstractmethod
    def delete(self, key: str, prefix: bool = False) -> int:
        """Delete a key (or every key under a prefix); returns how many were deleted."""

    @abc.abstractmethod
    def snapshot(self, prefix: str, revision: int | None = None) -> Snapshot:
        """Every key under ``prefix`` and the store revision they were read at (``revision``:
        as the store was then; ``RevisionCompacted`` if it no longer knows)."""

    @abc.abstractmethod
    def read(self, keys: Sequence[str] = (), prefixes: Sequence[str] = (),
             revision: int | None = None) -> Snapshot:
        """Several keys and whole prefixes, all at one revision (missing keys are absent)."""

    @abc.abstractmethod
    def key_names(self, prefix: str, revision: int | None = None) -> tuple[int, list[str]]:
        """(revision, sorted names of the keys under ``prefix``) without their values."""

    def list(self, prefix: str) -> list[KeyValue]:
        """Every key under ``prefix``, sorted by key."""
        snap = self.snapshot(prefix)
        return [snap.items[k] for k in sorted(snap.items)]

    @abc.abstractmethod
    def txn(self, compares: list[Compare], success: list[Put | Delete],
            failure: list[Put | Delete] | None = None) -> TxnResult: ...

    @abc.abstractmethod
    def lease(self, ttl: int) -> Lease: ...

    @abc.abstractmethod
    def watch(self, prefix: str, start_revision: int | None = None) -> Watcher:
        """Events under ``prefix`` from ``start_revision`` (default: the next write) on."""

    def compact(self, revision: int) -> None:
        """Forget history before ``revision`` (watches from earlier raise ``WatchCompacted``)."""
        raise NotImplementedError

    def close(self) -> None:  # noqa: B027 - optional: most backends hold nothing
        """Release connections."""
