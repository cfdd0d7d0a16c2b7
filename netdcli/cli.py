"""``netdcli``: the original netplugin CLI's flags, on our intent store.

Exit codes: 0 success, 1 store unreachable or other failure, 2 invalid input (nothing written),
3 not found, 4 conflict (duplicate, pool exhausted, lost race), 5 ``-wait`` timed out,
6 ``-audit`` found inconsistencies.
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
from intent.etcd_conn import ENV_CA, ENV_CERT, ENV_KEY, EtcdTls
from intent.loader import load_bindings, load_config, load_document
from intent.realized import realized_hosts, realized_in
from intent.store import Store, StoreError
from intent.version import version_text
from netdcli.audit import RestClient, audit_store, audit_switches
from netdcli.show import (
    show_endpoint,
    show_global,
    show_network,
    show_tenant,
)
from netdcli.trace import run_trace

DEFAULT_ETCD = "http://127.0.0.1:2379"
DEFAULT_REST = "http://127.0.0.1:9999"
CONSTRUCTS = ("global", "tenant", "network", "endpoint", "host", "policy", "endpointgroup",
              "router", "qosprofile")
SCOPED = ("policy", "endpointgroup", "router", "qosprofile")  # named TENANT/NAME
EXIT_TIMEOUT = 5
EXIT_INCONSISTENT = 6
REST_TOKEN_ENV = "NETPLUGIN_REST_TOKEN"


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
               "  netdcli -etcd https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 "
               "\\\n      -etcd-ca ca.pem -etcd-cert me.pem -etcd-key me.key -cfg net.json\n"
               "  netdcli -audit -rest http://127.0.0.1:9999   # exit 0 only when all is "
               "consistent\n"
               "  netdcli -oper get -construct qosprofile tenant-one/gold\n"
               "  netdcli -trace -from orange-myContainer1 -to 11.1.0.3 -proto tcp -dport 80\n"
               "  netdcli -trace -from orange-myContainer1 -to blue-myContainer4 -json",
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
    src.add_argument("-audit", "--audit", action="store_true",
                     help="check intent against allocations, oper keys and realized revisions, "
                          "and every registered host's switch against what it should hold (via "
                          "the controller's REST API); prints every inconsistency, exit 0 only "
                          "when there is none (else 6)")
    src.add_argument("-trace", "--trace", action="store_true",
                     help="walk a packet from -from to -to through the tables the controller "
                          "computed (its REST API, see -rest): every entry it matches with its "
                          "owner, and where it is delivered or dropped")
    p.add_argument("-from", "--from", dest="trace_from", metavar="ENDPOINT",
                   help="-trace: the sending endpoint (<network>-<container>)")
    p.add_argument("-to", "--to", dest="trace_to", metavar="ADDRESS|ENDPOINT",
                   help="-trace: the destination IPv4 address, or an endpoint (its address "
                        "and MAC, as with a static ARP entry)")
    p.add_argument("-proto", "--proto", dest="trace_proto", choices=("icmp", "tcp", "udp"),
                   help="-trace: protocol (default icmp echo)")
    p.add_argument("-dport", "--dport", dest="trace_dport", type=int, metavar="PORT",
                   help="-trace: destination port (tcp/udp; default 80)")
    p.add_argument("-sport", "--sport", dest="trace_sport", type=int, metavar="PORT",
                   help="-trace: source port (tcp/udp; default 40000)")
    p.add_argument("-host", "--host", dest="trace_host", metavar="HOST",
                   help="-trace: the host whose switch the packet enters (default: the "
                        "source endpoint's)")
    p.add_argument("-json", "--json", action="store_true",
                   help="-trace: print the controller's JSON answer")
    p.add_argument("-version", "--version", action="version", version=version_text("netdcli"))
    p.add_argument("-construct", "--construct",
                   choices=CONSTRUCTS,
                   help="object kind for -oper")
    p.add_argument("name", nargs="?", help="object name for -oper (endpoint: <network>-"
                   "<container>)")
    p.add_argument("-etcd", "--etcd", default=os.environ.get("NETPLUGIN_ETCD", DEFAULT_ETCD),
                   metavar="URL[,URL...]",
                   help="etcd client URL, or several members of one cluster separated by commas "
                        "(default: $NETPLUGIN_ETCD or %(default)s)")
    p.add_argument("-etcd-ca", "--etcd-ca", metavar="FILE",
                   help=f"CA certificate that signed etcd's (https:// URLs; or ${ENV_CA})")
    p.add_argument("-etcd-cert", "--etcd-cert", metavar="FILE",
                   help=f"client certificate for etcd (or ${ENV_CERT})")
    p.add_argument("-etcd-key", "--etcd-key", metavar="FILE",
                   help=f"private key of the client certificate (or ${ENV_KEY})")
    p.add_argument("-rest", "--rest", default=os.environ.get("NETPLUGIN_REST", DEFAULT_REST),
                   metavar="URL", help="controller REST API for -audit and -trace (default: "
                                       "$NETPLUGIN_REST or %(default)s)")
    p.add_argument("-rest-ca", "--rest-ca", metavar="FILE",
                   default=os.environ.get("NETPLUGIN_REST_CA") or None,
                   help="CA certificate that signed the REST API's (https://; or "
                        "$NETPLUGIN_REST_CA)")
    p.add_argument("-rest-token-file", "--rest-token-file", metavar="FILE",
                   help=f"file with the REST API's bearer token (or ${REST_TOKEN_ENV})")
    p.add_argument("-wait", "--wait", action="store_true",
                   help="after a write, block until every registered host's switch realized it")
    p.add_argument("-wait-timeout", "--wait-timeout", type=float, default=30.0, metavar="SEC",
                   help="give up waiting after SEC seconds (default %(default)s)")
    p.add_argument("-q", "--quiet", action="store_true", help="print nothing on success")
    return p


def open_store(url: str, tls: EtcdTls | None = None) -> Store:
    """The store for ``url`` (one URL or several, comma-separated; ``memory://`` gives a
    throw-away in-memory store)."""
    from intent.store_etcd import open_store as _open

    return _open(url, tls)


def wait_realized(store: Store, revision: int, timeout: float) -> list[str]:
    """Block until every registered host realized ``revision``; returns the hosts still behind.

    Event-driven: one read, then a watch of ``/netplugin/oper/`` (registrations and realized
    revisions) that re-checks on every change.
    """
    snap = store.read(prefixes=[keys.OPER_HOSTS, keys.OPER_REALIZED, keys.OPER_APPLIED])
    hosts = {keys.last_segment(k) for k in snap.items if k.startswith(keys.OPER_HOSTS)}
    marks = {k: kv.value for k, kv in snap.items.items()  # realized and applied keys
             if k.startswith((keys.OPER_REALIZED, keys.OPER_APPLIED))}

    def behind() -> list[str]:
        realized = realized_hosts(marks)
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
            elif ev.key.startswith((keys.OPER_REALIZED, keys.OPER_APPLIED)):
                if ev.type == "put":
                    marks[ev.key] = ev.value
                else:
                    marks.pop(ev.key, None)
        return behind()
    finally:
        watcher.close()


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
    elif args.audit:
        return audit(args, store, out)
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
                              "-host-bindings-cfg, -oper or -audit (see --help)")
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


def audit(args: argparse.Namespace, store: Store, out=sys.stdout) -> int:
    """``-audit``: every inconsistency on one line; 0 when there is none, else 6."""
    snap = read_consistent(store, prefixes=[keys.ROOT])
    problems = audit_store(snap)
    problems += audit_switches(RestClient(args.rest, rest_token(args), args.rest_ca), snap)
    for line in problems:
        print(f"audit: {one_line(line)}", file=out)
    if problems:
        print(f"audit: {len(problems)} inconsistencies", file=out)
        return EXIT_INCONSISTENT
    if not args.quiet:
        objects = sum(1 for k in snap.items if k.startswith(keys.CONFIG))
        print(f"audit: consistent ({objects} intent keys at revision {snap.revision}, "
              "every registered switch as it should be)", file=out)
    return 0


def rest_token(args: argparse.Namespace) -> str | None:
    """The REST API's bearer token: ``-rest-token-file`` or ``$NETPLUGIN_REST_TOKEN``."""
    token = os.environ.get(REST_TOKEN_ENV, "").strip() or None
    if args.rest_token_file:
        try:
            with open(args.rest_token_file, encoding="utf-8") as fh:
                token = fh.read().strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"-rest-token-file {args.rest_token_file}: cannot read: "
                                  f"{getattr(exc, 'strerror', None) or 'not UTF-8'}") from None
    return token


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
    if construct == "router":
        names = [keys.router(tenant, obj), keys.state_router(tenant, obj),
                 keys.oper_gateway(tenant, obj)]
        snap = read_consistent(store, keys=names)
        value, spec, gateway = (snap.value(k) for k in names)
        if value is None:
            raise NotFoundError(f'router "{obj}" does not exist in tenant "{tenant}"')
        return router_view(loads(RouterConfig, value), json.loads(spec) if spec else None,
                           json.loads(gateway) if gateway else None)
    if construct == "qosprofile":
        from intent.model import QosProfileConfig
        from netdcli.show import profile_view

        value = read_consistent(store, keys=[keys.qos_profile(tenant, obj)]).value(
            keys.qos_profile(tenant, obj))
        if value is None:
            raise NotFoundError(f'QoS profile "{obj}" does not exist in tenant "{tenant}"')
        return profile_view(loads(QosProfileConfig, value))
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
                                        keys.realized(name)], prefixes=[keys.OPER_APPLIED])
    config = snap.value(keys.host_config(name))
    oper = snap.value(keys.oper_host(name))
    if config is None and oper is None:
        raise NotFoundError(f'host "{name}" does not exist')
    realized = realized_in(snap).get(name)
    return {"Name": name, "Config": json.loads(config) if config else None,
            "Registration": json.loads(oper) if oper else None,
            "RealizedRevision": realized}


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
    if args.trace:
        try:
            return run_trace(args, RestClient(args.rest, rest_token(args), args.rest_ca))
        except ValidationError as exc:
            print(f"netdcli: {one_line(exc.problems[0])}", file=sys.stderr)
            return exc.exit_code
    try:
        store = open_store(args.etcd, EtcdTls.from_options(args.etcd_ca, args.etcd_cert,
                                                           args.etcd_key))
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
