"""What a write has read (:class:`Reads`) and what its planning still needs (:class:`Need`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from intent.store import KeyValue, Snapshot


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass
class Reads:
    """Every key a write has read: its values, and which keys were read and found absent."""

    items: dict[str, KeyValue] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    full: set[str] = field(default_factory=set)  # prefixes read whole
    requested: list[str] = field(default_factory=list)  # keys read by name (the CAS set)
    revision: int = 0  # the newest store revision read
    # planning may take an unread key as absent (assume_absent) when the write's compares
    # make it so: the small-transaction path sets this on its first try only
    optimistic: bool = False

    def add(self, snap: Snapshot, names: list[str] = (), prefixes: list[str] = ()) -> None:
        self.revision = max(self.revision, snap.revision)
        self.items.update(snap.items)
        for k in names:
            if k not in snap.items:
                self.absent.add(k)
            if k not in self._req:
                self._req.add(k)
                self.requested.append(k)
        self.full.update(prefixes)

    def __post_init__(self) -> None:
        self._req: set[str] = set(self.requested)

    def assume_absent(self, key: str) -> None:
        """Take unread ``key`` as absent: the write's compare-and-swap then requires it so."""
        self.absent.add(key)
        if key not in self._req:
            self._req.add(key)
            self.requested.append(key)

    def lookup(self, key: str) -> KeyValue | None:
        """The key's value (None: absent), or :data:`UNKNOWN` when it was not read."""
        kv = self.items.get(key)
        if kv is not None:
            return kv
        if key in self.absent or any(key.startswith(p) for p in self.full):
            return None
        return UNKNOWN

    def value(self, key: str) -> str | None:
        kv = self.items.get(key)
        return kv.value if kv else None

    def under(self, prefix: str) -> list[KeyValue]:
        return [kv for k, kv in self.items.items() if k.startswith(prefix)]


@dataclass
class Need:
    """What planning needs read before it can finish."""

    keys: set[str] = field(default_factory=set)
    prefixes: set[str] = field(default_factory=set)
    networks: set[str] = field(default_factory=set)  # add all their endpoints to the delta

    def __bool__(self) -> bool:
        return bool(self.keys or self.prefixes or self.networks)


@dataclass
class Plan:
    puts: dict[str, str]
    deletes: set[str]
    summary: list[str]


def load_json(reads: Reads, key: str, default: Any) -> Any:
    raw = reads.value(key)
    if raw is None:
        return default
    try:
        return json.loads(raw)
    except ValueError:
        return default


def owner_of(kv: KeyValue | None) -> str | None:
    """The owner an allocation key names (None: free; "?": unreadable, so taken)."""
    if kv is None:
        return None
    try:
        return json.loads(kv.value).get("owner")
    except (ValueError, AttributeError):
        return "?"
