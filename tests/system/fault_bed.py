"""What the fault tests need around a test bed: a continuous ping, intent churn with a record of
what was acknowledged, kill -9 / restart of recorded processes, and ``netdcli -audit``.

Every measurement is a positive event: the ping's replies (their sequence numbers show what was
lost, and the longest gap how long the data plane was down), the audit's exit 0 (the switches
hold exactly what they should and the store is consistent), the churn's acknowledged answers.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# imported here, in the main thread: should one of these pull eventlet in, a thread that first
# imports eventlet can never be joined (its end is not signalled)
from allocator.write import apply_config, delete_object
from intent import keys
from intent.errors import IntentError
from intent.etcd_conn import EtcdTls
from intent.loader import load_document
from intent.store import StoreError, StoreUnavailable
from intent.store_etcd import EtcdStore
from tests.system.scenario_bed import ROOT, ScenarioBed

PING_INTERVAL = 0.02  # seconds: 50 pings a second, so one lost ping is a 20 ms outage
ROWS: list[dict[str, Any]] = []  # the fault matrix, filled by the tests, printed at the end


class FaultBed(ScenarioBed):
    """A :class:`ScenarioBed` with extra ``up`` flags (``--etcd-members``, ``--tls``), whose
    clients get the bed's own environment (every etcd member, TLS files)."""

    def __init__(self, workdir: Path, etcd_port: int, ofp_port: int, rest_port: int,
                 up_args: tuple[str, ...] = ()) -> None:
        super().__init__(workdir, etcd_port, ofp_port, rest_port)
        self.up_args = up_args
        self.env: dict[str, str] = {}

    def up(self, config: Path | None = None) -> None:
        from tests.system.scenario_bed import BED_CONFIG

        self.cli("down", check=False)
        self.cli("up", "--config", str(config or BED_CONFIG), *self.ports, *self.up_args,
                 timeout=180)
        for line in self.cli("env").stdout.splitlines():
            k, _, v = line.removeprefix("export ").partition("=")
            self.env[k] = v
        self.etcd, self.rest = self.env["NETPLUGIN_ETCD"], self.env["NETPLUGIN_REST"]

    def netdcli(self, *args: str, check: bool = True,
                timeout: float = 90) -> subprocess.CompletedProcess[str]:
        res = subprocess.run([sys.executable, "-m", "netdcli.cli", *args], capture_output=True,
                             text=True, cwd=ROOT, timeout=timeout, env={**os.environ,
                                                                        **self.env})
        if check and res.returncode != 0:
            raise AssertionError(f"netdcli {' '.join(args)}: exit {res.returncode}\n"
                                 f"{res.stdout}\n{res.stderr}")
        return res

    def tls(self) -> EtcdTls | None:
        tls = EtcdTls(self.env.get("NETPLUGIN_ETCD_CA"), self.env.get("NETPLUGIN_ETCD_CERT"),
                      self.env.get("NETPLUGIN_ETCD_KEY"))
        return tls if tls.enabled else None

    def store(self) -> EtcdStore:
        """An EtcdStore on every member, with the bed's client certificate."""
        return EtcdStore(self.etcd, timeout=3.0, tls=self.tls())

    def _context(self) -> ssl.SSLContext | None:
        ca = self.env.get("NETPLUGIN_REST_CA")
        return ssl.create_default_context(cafile=ca) if ca else None

    def rest_get(self, path: str) -> Any:
        with urllib.request.urlopen(self.rest + "/api/v1" + path, timeout=30,
                                    context=self._context()) as resp:
            return json.loads(resp.read())

    def rest_call(self, method: str, path: str, body: Any = None) -> tuple[int, str]:
        """(status, body text) of one REST request; status 0 when there was no answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.rest + "/api/v1" + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=60, context=self._context()) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except OSError as exc:
            return 0, str(exc)

    # ------------------------------------------------------------------ processes
    def record(self, name: str) -> dict[str, Any]:
        pids = json.loads((self.workdir / "bed.json").read_text())["pids"]
        rec = next((p for p in pids if p["name"] == name), None)
        assert rec is not None, f"no recorded process {name}"
        return rec

    def kill9(self, name: str) -> int:
        pid = self.record(name)["pid"]
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 5
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            try:
                if Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] in "ZX":
                    break
            except OSError:
                break
            time.sleep(0.01)
        return pid

    def started_ago(self, name: str) -> float:
        """Seconds since the recorded process ``name`` started (from its kernel start time)."""
        ticks = self.record(name)["start"]
        return time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")

    def restart(self, name: str, host: str | None = None) -> None:
        self.cli("restart", name, *(["--host", host] if host else []), timeout=120)

    def leader(self) -> str:
        """The recorded name of the etcd member that is the raft leader."""
        from topologies.bed import etcd_client, load_plan
        from topologies.etcd import member_name
        from topologies.state import BedState

        plan = load_plan(BedState.load(self.workdir))
        client = etcd_client(plan, timeout=2)
        deadline = time.monotonic() + 15
        while (url := client.leader()) is None:
            assert time.monotonic() < deadline, "no etcd leader"
            time.sleep(0.1)
        return member_name(client.urls.index(url), len(client.urls))

    # ------------------------------------------------------------------ checks
    def audit_until_ok(self, timeout: float = 40.0) -> tuple[bool, float, str]:
        """Run ``netdcli -audit`` until it passes: (passed, seconds it took, last output)."""
        t0 = time.monotonic()
        while True:
            res = self.netdcli("-audit", check=False)
            if res.returncode == 0 or time.monotonic() - t0 > timeout:
                return res.returncode == 0, time.monotonic() - t0, res.stdout + res.stderr
            time.sleep(0.2)

    def switch_matches(self, host: str) -> bool:
        try:
            return self.rest_get(f"/hosts/{host}/audit")["differences"] == []
        except OSError:
            return False


@dataclass
class PingResult:
    sent: int  # pings up to the last answered one
    lost: int
    longest_gap: float  # seconds without an answer
    max_rtt: float  # seconds: a stalled (not dead) data plane answers late


class Pinger:
    """``ping -i 0.02`` from a container, running until :meth:`stop`."""

    def __init__(self, netns: str, ip: str) -> None:
        self.proc = subprocess.Popen(["ip", "netns", "exec", netns, "ping", "-n",
                                      "-i", str(PING_INTERVAL), "-W", "1", ip],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.first_reply = threading.Event()
        self.seqs: list[int] = []
        self.rtts: list[float] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            m = re.search(r"icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms", line)
            if m:
                self.seqs.append(int(m.group(1)))
                self.rtts.append(float(m.group(2)) / 1000)
                self.first_reply.set()

    def stop(self) -> PingResult:
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(10)
        self._reader.join(5)
        got = sorted(set(self.seqs))
        assert got, "the ping never got a reply"
        first, last = got[0], got[-1]
        gaps = [b - a - 1 for a, b in zip(got, got[1:], strict=False)]
        return PingResult(sent=last - first + 1, lost=(last - first + 1) - len(got),
                          longest_gap=(max(gaps, default=0) + 1) * PING_INTERVAL
                          if max(gaps, default=0) else 0.0, max_rtt=max(self.rtts))


class CountingStore(EtcdStore):
    """An EtcdStore that counts commits whose answer was lost (the writer then looks for its
    write id, ``allocator.write.Writer._landed``)."""

    lost_answers = 0

    def txn(self, compares, success, failure=None):  # noqa: ANN001 - Store's signature
        try:
            return super().txn(compares, success, failure)
        except StoreUnavailable:
            if success:
                type(self).lost_answers += 1
            raise


class _Refused(Exception):
    """A write path answered with a failure whose outcome is unknown (etcd unreachable)."""


@dataclass
class Churn:
    """Intent operations (add an endpoint, delete it) from threads, each writing through
    ``allocator.write`` in this process (``"store"``), the REST API (``"rest"``) or ``netdcli``
    (``"netdcli"``); remembers what each acknowledged answer said."""

    bed: FaultBed
    network: str = "orange"
    tenant: str = "tenant-one"
    target: int = 200
    vias: tuple[str, ...] = ("store", "store")
    acked: int = 0
    failed: int = 0
    by_via: dict[str, int] = field(default_factory=dict)
    last_ack: dict[str, bool] = field(default_factory=dict)  # endpoint id -> present?
    uncertain: set[str] = field(default_factory=set)  # last op failed: either outcome is fine
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._workers: list[threading.Thread] = []

    def start(self) -> None:
        for k, via in enumerate(self.vias):
            t = threading.Thread(target=self._run, args=(k, via), daemon=True)
            t.start()
            self._workers.append(t)

    def _doc(self, container: str, host: str) -> dict:
        return {"Tenants": [{"Name": self.tenant, "Networks": [{
            "Name": self.network, "Endpoints": [{"Container": container, "Host": host}]}]}]}

    def _op(self, via: str, store: Any, container: str, host: str, adding: bool,
            retry: bool) -> None:
        """One write; raises _Refused when its outcome is unknown."""
        eid = f"{self.network}-{container}"
        if via == "store":
            try:
                if adding:
                    apply_config(store, load_document(self._doc(container, host)), "add")
                else:
                    delete_object(store, "endpoint", eid)
            except StoreError as exc:
                raise _Refused(str(exc)) from exc
            except IntentError as exc:
                if not (retry and type(exc).__name__ == "NotFoundError"):
                    raise
        elif via == "rest":
            path = f"/networks/{self.network}/endpoints" if adding else f"/endpoints/{eid}"
            body = {"Container": container, "Host": host} if adding else None
            code, text = self.bed.rest_call("POST" if adding else "DELETE", path, body)
            if code in (201, 200) or (retry and code in (404, 409)):
                return
            if code in (502, 503, 504, 0):
                raise _Refused(f"HTTP {code}: {text}")
            raise AssertionError(f"REST {path}: HTTP {code}: {text}")
        else:
            if adding:
                f = self.bed.workdir / f"churn-{container}.json"
                f.write_text(json.dumps(self._doc(container, host)))
                res = self.bed.netdcli("-add-cfg", str(f), "-q", check=False)
            else:
                res = self.bed.netdcli("-oper", "delete", "-construct", "endpoint", eid, "-q",
                                       check=False)
            if res.returncode == 0 or (retry and res.returncode == 3):
                return
            if res.returncode == 1:
                raise _Refused(res.stderr.strip())
            raise AssertionError(f"netdcli: exit {res.returncode}: {res.stderr}")

    def _run(self, k: int, via: str) -> None:
        store = CountingStore(self.bed.store().urls, timeout=3.0, tls=self.bed.tls()) \
            if via == "store" else None
        i = 0
        deadline = time.monotonic() + 120
        try:
            while self.acked < self.target and time.monotonic() < deadline:
                container = f"churn{k}x{i // 2}"
                eid = f"{self.network}-{container}"
                adding = i % 2 == 0
                try:
                    self._op(via, store, container, f"host{1 + i // 2 % 2}", adding,
                             eid in self.uncertain)
                except _Refused as exc:
                    with self._lock:
                        self.failed += 1
                        self.uncertain.add(eid)
                        if len(self.errors) < 50:
                            self.errors.append(f"{eid} via {via}: {exc}")
                    time.sleep(0.05)
                    continue  # the same operation again
                with self._lock:
                    self.acked += 1
                    self.by_via[via] = self.by_via.get(via, 0) + 1
                    self.last_ack[eid] = adding
                    self.uncertain.discard(eid)
                i += 1
        finally:
            if store is not None:
                store.close()

    def wait(self, timeout: float = 150) -> None:
        for t in self._workers:
            t.join(timeout)
        assert self.acked >= self.target, f"churn: only {self.acked} acknowledged operations " \
                                          f"({self.failed} failed: {self.errors[:3]})"

    def check(self) -> list[str]:
        """Acknowledged writes that the store does not show (empty: all there)."""
        store = self.bed.store()
        try:
            snap = store.read(prefixes=[keys.CONFIG_ENDPOINTS, keys.STATE_ENDPOINTS])
        finally:
            store.close()
        wrong = []
        for eid, present in sorted(self.last_ack.items()):
            if eid in self.uncertain:
                continue
            has = keys.endpoint(eid) in snap.items and keys.state_endpoint(eid) in snap.items
            if has != present:
                wrong.append(f"{eid}: acknowledged {'add' if present else 'delete'}, store "
                             f"{'has' if has else 'lacks'} it")
        return wrong


def row(fault: str, phase: str, ping: PingResult, recovery: float, audit: bool,
        note: str = "") -> None:
    ROWS.append({"fault": fault, "phase": phase, "lost": ping.lost, "sent": ping.sent,
                 "gap": ping.longest_gap, "rtt": ping.max_rtt, "recovery": recovery,
                 "audit": audit, "note": note})


def format_rows() -> list[str]:
    out = ["| fault | phase | lost pings (of sent) | longest gap | max RTT | recovery | audit "
           "| note |", "|---|---|---|---|---|---|---|---|"]
    for r in ROWS:
        out.append(f"| {r['fault']} | {r['phase']} | {r['lost']} ({r['sent']}) | "
                   f"{r['gap']:.2f} s | {r['rtt'] * 1000:.0f} ms | {r['recovery']:.2f} s | "
                   f"{'pass' if r['audit'] else 'FAIL'} | {r['note']} |")
    return out
