"""``netdcli``: the original netplugin CLI's flags, on our intent store.

Exit codes: 0 success, 1 store unreachable or other failure, 2 invalid input (nothing written),
3 not found, 4 conflict (duplicate, pool exhausted, lost race), 5 ``-wait`` timed out.
Every failure is reported in ``netdcli: ...`` lines on stderr, never as a traceback (set
``NETPLUGIN_DEBUG=1`` to see the traceback of an internal error).
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import sys
import threading
import time

from allocator import write as apply
from intent import keys
from intent.consistent import read_consistent
from intent.errors import IntentError, NotFoundError, ValidationError
from intent.loader import load_bindings, load_config, load_document
from intent.store import Store, StoreError
from netdcli.show import (
    show_endpoint,
    show_global,
    show_network,
    show_tenant,
)

DEFAULT_ETCD = "http://127.0.0.1:2379"
CONSTRUCTS = ("global", "tenant", "network", "endpoint", "host", "policy", "endpointgroup",
              "router", "qosprofile")
SCOPED = ("policy", "endpointgroup", "router", "qosprofile")  # named TENANT/NAME
EXIT_TIMEOUT = 5


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="netdcli",
        description="Write network intent (tenants, networks, endpoints) to etcd, or read it.",
        epilog="examples:\n"
               "  netdcli -cfg examples/two_hosts_vxlan.json      # make the store hold exactly "
               "this\n"
               "  netdcli -add-cfg more.json                       # add/update objects\n"
               "  netdcli -oper get -construct endpoint orange-myContainer1\n"
               "  netdcli -oper delete -construct network orange\n"
               "  netdcli -oper get -construct policy tenant-one/web-in\n"
               "  netdcli -oper get -construct endpointgroup tenant-one/web\n"
               "  netdcli -oper get -construct router tenant-one/r1\n"
               "  netdcli -oper get -construct qosprofile tenant-one/gold",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("-cfg", "--cfg", metavar="FILE",
                     help="desired state: add what is new, update what changed, delete what the "
                          "file no longer has")
    src.add_argument("-add-cfg", "--add-cfg", metavar="FILE", help="add or update the objects "
                     "in FILE, keep everything else")
    src.add_argument("-del-cfg", "--del-cfg", metavar="FILE", help="delete the objects FILE "
                     "names (a network listed without endpoints goes whole)")
    src.add_argument("-host-bindings-cfg", "--host-bindings-cfg", metavar="FILE",
                     help='bind endpoints to hosts late: [{"Container","Host","AttachUUID"}]')
    src.add_argument("-oper", "--oper", choices=("get", "delete"),
                     help="read or delete one object (with -construct)")
    p.add_argument("-construct", "--construct",
                   choices=CONSTRUCTS,
                   help="object kind for -oper")
    p.add_argument("name", nargs="?", help="object name for -oper (endpoint: <network>-"
                   "<container>)")
    p.add_argument("-etcd", "--etcd", default=os.environ.get("NETPLUGIN_ETCD", DEFAULT_ETCD),
                   help="etcd URL (default: $NETPLUGIN_ETCD or %(default)s)")
    p.add_argument("-wait", "--wait", action="store_true",
                   help="after a write, block until every registered host's switch realized it")
    p.add_argument("-wait-timeout", "--wait-timeout", type=float, default=30.0, metavar="SEC",
                   help="give up waiting after SEC seconds (default %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def open_store(url: str) -> Store:
    """The store for ``url`` (``memory://`` gives a throw-away in-memory store)."""
    from intent.store_etcd import open_store as _open

    return _open(url)


def wait_realized(store: Store, revision: int, timeout: float) -> list[str]:
    """Block until every registered host realized ``revision``; returns the hosts still behind.

    Event-driven: one read, then a watch of ``/netplugin/oper/`` (registrations and realized
    revisions) that re-checks on every change.
    """
    snap = store.read(prefixes=[keys.OPER_HOSTS, keys.OPER_REALIZED])
    hosts = {keys.last_segment(k) for k in snap.items if k.startswith(keys.OPER_HOSTS)}
    realized = {keys.last_segment(k): _revision(kv.value) for k, kv in snap.items.items()
                if k.startswith(keys.OPER_REALIZED)}

    def behind() -> list[str]:
        return sorted(h for h in hosts if realized.get(h, 0) < revision)

    if not behind():
        return []
    events: queue.Queue = queue.Queue()
    watcher = store.watch(keys.OPER, snap.revision + 1)

    def pump() -> None:
        try:
            for ev in watcher:
                events.put(ev)
        except StoreError as exc:
            events.put(exc)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + timeout
    try:
        while behind():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                ev = events.get(timeout=left)
            except queue.Empty:
                break
            if isinstance(ev, StoreError):
                raise ev
            name = keys.last_segment(ev.key)
            if ev.key.startswith(keys.OPER_HOSTS):
                (hosts.add if ev.type == "put" else hosts.discard)(name)
            elif ev.key.startswith(keys.OPER_REALIZED):
                realized[name] = _revision(ev.value) if ev.type == "put" else 0
        return behind()
    finally:
        watcher.close()


def _revision(value: str | None) -> int:
    try:
        return int(json.loads(value or "{}").get("revision", 0))
    except (ValueError, TypeError, AttributeError):
        return 0


def run(args: argparse.Namespace, store: Store, out=sys.stdout) -> int:
    """Carry out one parsed command; returns the exit code."""
    result = None
    if args.cfg or args.add_cfg or args.del_cfg:
        mode, path = (("desired", args.cfg) if args.cfg else ("add", args.add_cfg)
                      if args.add_cfg else ("delete", args.del_cfg))
        doc = load_config(path) if mode == "desired" else load_document(path)
        result = apply.apply_config(store, doc, mode)
    elif args.host_bindings_cfg:
        result = apply.apply_bindings(store, load_bindings(args.host_bindings_cfg))
    elif args.oper:
        if not args.construct:
            raise ValidationError(f"-oper needs -construct {'|'.join(CONSTRUCTS)}")
        if args.oper == "get":
            print(json.dumps(_get(store, args.construct, args.name), indent=2), file=out)
            return 0
        if args.construct == "global" or not args.name:
            raise ValidationError(f"-oper delete needs -construct "
                                  f"{'|'.join(CONSTRUCTS[1:])} and a NAME")
        if args.construct in SCOPED:
            result = _delete_scoped(store, args.construct, args.name)
        else:
            result = apply.delete_object(store, args.construct, args.name)
    else:
        raise ValidationError("nothing to do: give -cfg, -add-cfg, -del-cfg, "
                              "-host-bindings-cfg or -oper (see --help)")
    if not args.quiet:
        for line in result.summary:
            print(line, file=out)
        if result.changed:
            print(f"written at revision {result.revision}", file=out)
    if args.wait and result.changed:
        behind = wait_realized(store, result.revision, args.wait_timeout)
        if behind:
            print(f"netdcli: timed out after {args.wait_timeout:g}s waiting for hosts "
                  f"{', '.join(behind)} to realize revision {result.revision}", file=sys.stderr)
            return EXIT_TIMEOUT
    return 0


def _get(store: Store, construct: str, name: str | None) -> dict:
    if construct == "global":
        return show_global(store)
    if not name:
        raise ValidationError(f"-oper get -construct {construct} needs a NAME")
    if construct in SCOPED:
        return _show_scoped(store, construct, name)
    show = {"tenant": show_tenant, "network": show_network, "endpoint": show_endpoint,
            "host": _show_host}[construct]
    return show(store, name)


def _scoped_name(construct: str, name: str) -> tuple[str, str]:
    tenant, sep, obj = name.partition("/")
    if not sep or not tenant or not obj:
        raise ValidationError(f'-construct {construct} takes TENANT/NAME, got "{name}"')
    return tenant, obj


def _show_scoped(store: Store, construct: str, name: str) -> dict:
    from intent.codec import loads
    from intent.model import EndpointGroupConfig, PolicyConfig, RouterConfig
    from netdcli.show import group_view, policy_view, router_view

    tenant, obj = _scoped_name(construct, name)
    if construct == "qosprofile":
        from intent.model import QosProfileConfig
        from netdcli.show import profile_view

        value = read_consistent(store, keys=[keys.qos_profile(tenant, obj)]).value(
            keys.qos_profile(tenant, obj))
        if value is None:
            raise NotFoundError(f'QoS profile "{obj}" does not exist in tenant "{tenant}"')
        return profile_view(loads(QosProfileConfig, value))
    if construct == "router":
        names = [keys.router(tenant, obj), keys.state_router(tenant, obj),
                 keys.oper_gateway(tenant, obj)]
        snap = read_consistent(store, keys=names)
        value, spec, gateway = (snap.value(k) for k in names)
        if value is None:
            raise NotFoundError(f'router "{obj}" does not exist in tenant "{tenant}"')
        return router_view(loads(RouterConfig, value), json.loads(spec) if spec else None,
                           json.loads(gateway) if gateway else None)
    if construct == "policy":
        snap = read_consistent(store, keys=[keys.policy(tenant, obj)])
        value = snap.value(keys.policy(tenant, obj))
        if value is None:
            raise NotFoundError(f'policy "{obj}" does not exist in tenant "{tenant}"')
        return policy_view(loads(PolicyConfig, value))
    snap = read_consistent(store, keys=[keys.group(tenant, obj), keys.state_group(tenant, obj),
                                        keys.members(tenant, obj)])
    value = snap.value(keys.group(tenant, obj))
    if value is None:
        raise NotFoundError(f'endpoint group "{obj}" does not exist in tenant "{tenant}"')
    spec, members = snap.value(keys.state_group(tenant, obj)), snap.value(
        keys.members(tenant, obj))
    return group_view(loads(EndpointGroupConfig, value), json.loads(spec) if spec else None,
                      json.loads(members) if members else None)


def _delete_scoped(store: Store, construct: str, name: str):
    from intent.model import (
        Config,
        EndpointGroupConfig,
        PolicyConfig,
        QosProfileConfig,
        RouterConfig,
        TenantConfig,
    )

    tenant, obj = _scoped_name(construct, name)
    t = {"policy": TenantConfig(tenant, policies=(PolicyConfig(obj, tenant),)),
         "router": TenantConfig(tenant, routers=(RouterConfig(obj, tenant),)),
         "qosprofile": TenantConfig(tenant, qos_profiles=(QosProfileConfig(obj, tenant),)),
         "endpointgroup": TenantConfig(tenant, endpoint_groups=(
             EndpointGroupConfig(obj, tenant),))}[construct]
    return apply.apply_config(store, Config(tenants=(t,)), "delete", paths=False)


def _show_host(store: Store, name: str) -> dict:
    snap = read_consistent(store, keys=[keys.host_config(name), keys.oper_host(name),
                                        keys.realized(name)])
    config = snap.value(keys.host_config(name))
    oper = snap.value(keys.oper_host(name))
    if config is None and oper is None:
        raise NotFoundError(f'host "{name}" does not exist')
    realized = snap.value(keys.realized(name))
    return {"Name": name, "Config": json.loads(config) if config else None,
            "Registration": json.loads(oper) if oper else None,
            "RealizedRevision": json.loads(realized)["revision"] if realized else None}


_CONTROL = {c: f"\\x{c:02x}" for c in (*range(32), *range(127, 160))} | {
    10: "\\n", 13: "\\r", 9: "\\t", 0x2028: "\\u2028", 0x2029: "\\u2029"}


def one_line(message: str) -> str:
    """``message`` with control characters and line separators escaped: one problem, one line."""
    return message.translate(_CONTROL)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if len(sys.argv if argv is None else argv) == 0:
        parser.print_help()
        return 0
    try:
        store = open_store(args.etcd)
        try:
            return run(args, store)
        finally:
            store.close()
    except IntentError as exc:
        for problem in exc.problems:
            print(f"netdcli: {one_line(problem)}", file=sys.stderr)
        if isinstance(exc, ValidationError) and len(exc.problems) > 1:
            print(f"netdcli: {len(exc.problems)} problems; nothing was written", file=sys.stderr)
        elif isinstance(exc, ValidationError):
            print("netdcli: nothing was written", file=sys.stderr)
        return exc.exit_code
    except StoreError as exc:
        print(f"netdcli: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("netdcli: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # noqa: BLE001 - one line for the user, the traceback on request
        if os.environ.get("NETPLUGIN_DEBUG"):
            raise
        print(f"netdcli: internal error: {exc!r} (NETPLUGIN_DEBUG=1 shows the traceback)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
