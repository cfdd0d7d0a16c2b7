"""``netplugin-cni``: a CNI 1.0 plugin (ADD, DEL, CHECK, VERSION) that plugs a container's
endpoints with the agent's own plumbing.

Network config (stdin)::

    {"cniVersion": "1.0.0", "name": "np", "type": "netplugin-cni",
     "etcd": "http://127.0.0.1:2379", "host": "host1",
     "ovsdb": "unix:/var/run/openvswitch/db.sock", "containerArg": "NP_CONTAINER"}

``etcd`` may name several members of one cluster (``"https://a:2379,https://b:2379"`` or a
list); ``etcdCA``, ``etcdCert`` and ``etcdKey`` give client TLS (files).

The container's name in the intent is ``K8S_POD_NAME`` from ``CNI_ARGS``, else the ``CNI_ARGS`` key
named by ``containerArg``, else ``args.container`` of the config, else the container id (full or
its 12-character short form); an endpoint whose ``AttachUUID`` is the container's id (full, or a
prefix of at least 12 hex digits) is the container's too.  ADD records the container in the runtime
registry and plugs every endpoint whose netns owner it is; on failure it removes everything it made.
DEL takes everything it needs from the config and ``CNI_CONTAINERID`` (conmon's clean-up runs with
a trimmed environment).
"""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Mapping
from typing import IO

if __name__ == "__main__" or os.path.basename(sys.argv[0]) == "netplugin-cni":
    # ovs.poller and futurist import eventlet when they can: 0.3 s a short-lived plugin process
    # does not need (nothing here is green).  Only in the plugin process, never on import.
    sys.modules.setdefault("eventlet", None)  # type: ignore[arg-type]

from agent import plan as P
from agent.ipam import CniIpam, IpamError, give_back, read_leases
from agent.netlink import netns_exists
from agent.ovsdb import Ovsdb, OvsdbError
from agent.plumb import Plumber, host_lock, lock_path
from agent.reconcile import Report, read_inputs, read_runtime, reconcile
from intent import keys
from intent.store import Store, StoreError
from intent.version import version_text

LOG = logging.getLogger("netplugin.cni")
SUPPORTED = ["0.3.0", "0.3.1", "0.4.0", "1.0.0"]
DEFAULT_OVSDB = "unix:/var/run/openvswitch/db.sock"

# CNI spec error codes, and this plugin's own (>= 100)
INCOMPATIBLE_VERSION, UNSUPPORTED_FIELD, UNKNOWN_CONTAINER, INVALID_ENV = 1, 2, 3, 4
IO_FAILURE, DECODE_FAILURE, INVALID_CONFIG, TRY_AGAIN = 5, 6, 7, 11
NO_ENDPOINT, PLUG_FAILED, NOT_PLUGGED = 100, 101, 102


class CniError(Exception):
    def __init__(self, code: int, msg: str, details: str = "") -> None:
        super().__init__(msg)
        self.code, self.msg, self.details = code, msg, details


def parse_cni_args(text: str) -> dict[str, str]:
    """``IgnoreUnknown=1;K8S_POD_NAME=x`` -> dict."""
    out = {}
    for part in (text or "").split(";"):
        k, sep, v = part.partition("=")
        if sep:
            out[k.strip()] = v.strip()
    return out


def load_config(text: str) -> dict:
    try:
        conf = json.loads(text)
    except ValueError as e:
        raise CniError(DECODE_FAILURE, f"network config is not JSON: {e}") from e
    if not isinstance(conf, dict):
        raise CniError(DECODE_FAILURE, "network config is not a JSON object")
    version = conf.get("cniVersion", "")
    if version not in SUPPORTED:
        raise CniError(INCOMPATIBLE_VERSION, f"cniVersion {version!r} not supported",
                       f"supported: {', '.join(SUPPORTED)}")
    missing = [k for k in ("name", "etcd", "host") if not conf.get(k)]
    if missing:
        raise CniError(INVALID_CONFIG, f"network config {conf.get('name', '?')!r}: missing "
                                       + ", ".join(missing))
    return conf


def candidates(conf: Mapping, env: Mapping[str, str]) -> list[str]:
    """Names the container may have in the intent, most specific first."""
    args = parse_cni_args(env.get("CNI_ARGS", ""))
    names = [args.get("K8S_POD_NAME"), args.get(conf.get("containerArg", "NP_CONTAINER")),
             (conf.get("args") or {}).get("container")]
    cid = env.get("CNI_CONTAINERID", "")
    names += [cid, cid[:12]]
    seen: list[str] = []
    for n in names:
        if n and n not in seen:
            seen.append(n)
    return seen


def _require(env: Mapping[str, str], *names: str) -> None:
    missing = [n for n in names if not env.get(n)]
    if missing:
        raise CniError(INVALID_ENV, "missing environment variable " + ", ".join(missing))


def _open_store(conf: Mapping) -> Store:
    from intent.etcd_conn import EtcdTls
    from intent.store_etcd import open_store

    tls = EtcdTls(conf.get("etcdCA"), conf.get("etcdCert"), conf.get("etcdKey"))
    try:
        return open_store(conf["etcd"], tls)
    except StoreError as e:
        raise CniError(INVALID_CONFIG, f"network config {conf.get('name', '?')!r}: {e}") from e


def _ovsdb(conf: Mapping, what: str) -> Ovsdb:
    remote = conf.get("ovsdb") or DEFAULT_OVSDB
    try:
        return Ovsdb(remote, timeout=float(conf.get("timeout", 5)))
    except OvsdbError as e:
        raise CniError(TRY_AGAIN, f"{what}: {e}") from e


def _owner(store: Store, conf: Mapping, env: Mapping[str, str]) -> str:
    host = conf["host"]
    eps = read_inputs(store, host).endpoints
    names = candidates(conf, env)
    cid = env.get("CNI_CONTAINERID", "")
    given = [n for n in names if n not in (cid, cid[:12])]  # names the runtime passed
    by_name = [(n, [e for e in eps.values() if e.netns_owner == n]) for n in given]
    # then the endpoints that name this container by its id (AttachUUID of a pod's infra); the
    # registry entry takes the runtime's name, else the id as the intent writes it
    refs = [e for e in eps.values() if P.refers_to(e.netns_owner, "", cid)]
    by_id = [(given[0] if given else min(e.netns_owner for e in refs), refs)] if refs else []
    for name, mine in by_name + by_id:
        here = [e for e in mine if e.host == host]
        if here:
            return name
        if mine:
            where = ", ".join(f"{e.id} on {e.host or 'no host (unbound)'}" for e in mine)
            raise CniError(NO_ENDPOINT, f"container {name}: no endpoint on host {host} ({where})")
    raise CniError(NO_ENDPOINT, f"container {names[0]}: no endpoint in the intent "
                                f"(also tried {', '.join(names[1:]) or 'nothing else'})")


def _result(conf: Mapping, plumber: Plumber, report: Report, want: dict[str, P.Desired]) -> dict:
    interfaces, ips, routes = [], [], []
    for eid in sorted(want):
        w = want[eid]
        ifname = plumber.ifname_of(w.port_name)
        interfaces.append({"name": w.port_name})
        interfaces.append({"name": ifname, "mac": w.mac.lower(), "sandbox": w.netns})
        ip = {"address": f"{w.ip}/{w.prefixlen}", "interface": len(interfaces) - 1}
        if w.gateway:
            ip["gateway"] = w.gateway
            if not routes:
                routes.append({"dst": "0.0.0.0/0", "gw": w.gateway})
        ips.append(ip)
    return {"cniVersion": conf["cniVersion"], "interfaces": interfaces, "ips": ips,
            "routes": routes, "dns": {}}


def _wanted(store: Store, host: str, owner: str) -> dict[str, P.Desired]:
    inp = read_inputs(store, host)
    want, _ = P.desired_set(host, inp.endpoints, inp.networks, inp.runtime, netns_exists)
    return {k: w for k, w in want.items() if w.owner == owner}


def cmd_add(conf: dict, env: Mapping[str, str]) -> dict:
    _require(env, "CNI_CONTAINERID", "CNI_NETNS", "CNI_IFNAME")
    netns, host = env["CNI_NETNS"], conf["host"]
    if not netns_exists(netns):
        raise CniError(UNKNOWN_CONTAINER, f"netns {netns} of container "
                                          f"{env['CNI_CONTAINERID'][:12]} does not exist")
    store = _open_store(conf)
    owner = _owner(store, conf, env)
    ovs = _ovsdb(conf, f"container {owner}")
    rt_key = keys.runtime_container(host, owner)
    store.put(rt_key, json.dumps({"netns": netns, "id": env["CNI_CONTAINERID"]}, sort_keys=True))
    plumber = Plumber(ovs)
    lock = lock_path(ovs.remote, host)
    try:
        report = reconcile(store, plumber, host, lock, owner=owner,
                           preferred_ifname=env["CNI_IFNAME"], ipam=_ipam(conf, env))
        if not report.ok:
            raise CniError(PLUG_FAILED, f"container {owner}: " + "; ".join(report.problems))
        return _result(conf, plumber, report, _wanted(store, host, owner))
    except BaseException:
        _teardown(store, plumber, host, lock, owner, env["CNI_CONTAINERID"], _ipam(conf, env))
        raise
    finally:
        ovs.close()


def _ipam(conf: Mapping, env: Mapping[str, str]) -> CniIpam:
    """The runner of IPAM plugins: ``cniPath`` of the config, else ``CNI_PATH`` (a trimmed
    DEL environment has none: then the default path)."""
    return CniIpam(conf.get("cniPath") or env.get("CNI_PATH") or "")


def _teardown(store: Store | None, plumber: Plumber | None, host: str, lock: str,
              owner: str | None, cid: str, ipam: CniIpam | None = None) -> list[str]:
    """Drop this container's registry entry, unplug every port of it (by name or id) and give
    back the addresses its IPAM plugins gave it.

    The registry entry goes first: an agent pass that runs meanwhile then no longer wants the
    container's endpoints, so it never plugs one again nor asks the plugin for a new address
    for an endpoint whose address was just given back (it gives back what is left itself)."""
    if store is not None and owner:
        kv = store.get(keys.runtime_container(host, owner))
        if kv is not None and json.loads(kv.value).get("id", cid) == cid:
            store.delete(kv.key)
    removed = []
    if plumber is not None:
        with host_lock(lock):
            for a in plumber.actual():
                if (owner and a.container == owner) or (cid and a.container_id == cid):
                    plumber.unplug(a.port_name)
                    removed.append(a.endpoint_id)
    if store is not None:
        for eid in removed:
            store.delete(keys.oper_endpoint(eid))
        if owner and ipam is not None:
            problems: list[str] = []
            give_back(store, ipam, [x for x in read_leases(store, host)
                                    if not x.driver and x.container == owner], problems)
            for p in problems:
                print(f"netplugin-cni: {p}", file=sys.stderr)
    return removed


def cmd_del(conf: dict, env: Mapping[str, str]) -> None:
    _require(env, "CNI_CONTAINERID")
    host, cid = conf["host"], env["CNI_CONTAINERID"]
    store_err: Exception | None = None
    owners: list[str | None] = []
    store: Store | None = None
    try:
        store = _open_store(conf)
        owners = [n for n, rt in read_runtime(store, host).items() if rt.id == cid]
    except StoreError as e:
        store_err, store = e, None
    try:
        ovs = Ovsdb(conf.get("ovsdb") or DEFAULT_OVSDB, timeout=float(conf.get("timeout", 5)))
    except OvsdbError as e:  # the agent removes the port once the registry entry is gone
        print(f"netplugin-cni DEL {cid[:12]}: {e}; the agent will clean up", file=sys.stderr)
        ovs = None
    plumber = Plumber(ovs) if ovs is not None else None
    lock = lock_path(conf.get("ovsdb") or DEFAULT_OVSDB, host)
    try:
        for owner in owners or [None]:
            _teardown(store, plumber, host, lock, owner, cid, _ipam(conf, env))
    finally:
        if ovs is not None:
            ovs.close()
    if store_err is not None:
        raise CniError(TRY_AGAIN, f"container {cid[:12]}: etcd at {conf['etcd']}: {store_err}")


def cmd_check(conf: dict, env: Mapping[str, str]) -> None:
    _require(env, "CNI_CONTAINERID", "CNI_NETNS")
    host = conf["host"]
    store = _open_store(conf)
    owner = _owner(store, conf, env)
    want = _wanted(store, host, owner)
    if not want:
        raise CniError(NOT_PLUGGED, f"container {owner}: not in the runtime registry of {host}")
    ovs = _ovsdb(conf, f"container {owner}")
    try:
        actual = {a.endpoint_id: a for a in Plumber(ovs).actual()}
    finally:
        ovs.close()
    for eid, w in sorted(want.items()):
        a = actual.get(eid)
        if a is None or not a.healthy or a.sig != w.sig:
            state = "missing" if a is None else ("broken" if not a.healthy else "outdated")
            raise CniError(NOT_PLUGGED, f"endpoint {eid} of container {owner}: port {state}")


def run(env: Mapping[str, str], stdin: IO[str], stdout: IO[str]) -> int:
    """Run one CNI command; writes the result or error JSON; returns the exit code."""
    cmd = env.get("CNI_COMMAND", "")
    version = "1.0.0"
    try:
        if cmd == "VERSION":
            json.dump({"cniVersion": "1.0.0", "supportedVersions": SUPPORTED}, stdout)
            return 0
        conf = load_config(stdin.read())
        version = conf["cniVersion"]
        if cmd == "ADD":
            json.dump(cmd_add(conf, env), stdout)
        elif cmd == "DEL":
            cmd_del(conf, env)
        elif cmd == "CHECK":
            cmd_check(conf, env)
        else:
            raise CniError(INVALID_ENV, f"unknown CNI_COMMAND {cmd!r}")
        return 0
    except CniError as e:
        err = e
    except StoreError as e:
        err = CniError(TRY_AGAIN, f"etcd: {e}")
    except OvsdbError as e:
        err = CniError(TRY_AGAIN, str(e))
    except IpamError as e:
        err = CniError(PLUG_FAILED, str(e))
    except OSError as e:
        err = CniError(IO_FAILURE, str(e))
    out = {"cniVersion": version, "code": err.code, "msg": err.msg}
    if err.details:
        out["details"] = err.details
    json.dump(out, stdout)
    print(f"netplugin-cni {cmd}: {err.msg}", file=sys.stderr)
    return 1


def main() -> int:
    if sys.argv[1:] in (["--version"], ["-V"]):  # for people; the runtime uses CNI_COMMAND
        print(version_text("netplugin-cni"))
        return 0
    logging.basicConfig(level=os.environ.get("NETPLUGIN_CNI_LOG", "WARNING"), stream=sys.stderr)
    return run(os.environ, sys.stdin, sys.stdout)


if __name__ == "__main__":
    raise SystemExit(main())
