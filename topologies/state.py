"""The test bed's record of what it made (``<workdir>/bed.json``), written as it goes.

Every pid (with its kernel start time), namespace and container is recorded the moment it exists,
so ``down`` can undo exactly that even after ``up`` or a daemon crashed half-way.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from topologies import proc

STATE_FILE = "bed.json"
LOCK_FILE = ".bed.lock"


@dataclass
class BedState:
    """Mutable record; ``save()`` after every change."""

    path: Path
    plan: dict[str, Any] | None = None
    options: dict[str, Any] = field(default_factory=dict)
    pids: list[dict[str, Any]] = field(default_factory=list)  # {name, pid, start, host, launch}
    netns: list[str] = field(default_factory=list)
    containers: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {host, netns, id}
    # physical machines (``run-external``): name -> {netns, legs: [{ifname, vlan, cidr, port}],
    # gateway, forwarding}
    externals: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def load(cls, workdir: Path) -> BedState:
        path = workdir / STATE_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return cls(path=path)
        return cls(path=path, plan=data.get("plan"), options=data.get("options", {}),
                   pids=data.get("pids", []), netns=data.get("netns", []),
                   containers=data.get("containers", {}),
                   externals=data.get("externals", {}))

    @property
    def exists(self) -> bool:
        return self.path.exists()

    def save(self) -> None:
        data = {"plan": self.plan, "options": self.options, "pids": self.pids,
                "netns": self.netns, "containers": self.containers,
                "externals": self.externals}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
        os.replace(tmp, self.path)

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)

    def add_pid(self, name: str, pid: int, host: str | None = None,
                launch: dict[str, Any] | None = None) -> None:
        """Record a process; ``launch`` (cmd, env, cwd, log, or a daemon's pidfile) lets
        ``restart`` start it again the same way."""
        rec: dict[str, Any] = {"name": name, "pid": pid, "start": proc.start_time(pid),
                               "host": host}
        if launch is not None:
            rec["launch"] = launch
        self.pids.append(rec)
        self.save()

    def replace_pid(self, name: str, pid: int) -> None:
        """The process ``name`` now runs as ``pid`` (restarted); it keeps its place in the
        record, so ``down`` still stops things in reverse start order."""
        rec = self.pid_of(name)
        if rec is None:
            raise KeyError(name)
        rec["pid"], rec["start"] = pid, proc.start_time(pid)
        self.save()

    def add_netns(self, name: str) -> None:
        if name not in self.netns:
            self.netns.append(name)
            self.save()

    def pid_of(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.pids if p["name"] == name), None)


@contextlib.contextmanager
def locked(workdir: Path) -> Iterator[None]:
    """Serialise commands on one test bed (``run`` from two shells, ``down`` during ``up``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    with open(workdir / LOCK_FILE, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
