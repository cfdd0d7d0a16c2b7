"""``netplugin-docker``: Docker's remote network driver and IPAM driver for netplugin.

Serves Docker's plugin protocol (HTTP POST, JSON) on the unix socket ``PLUGIN_DIR/NAME.sock``,
where dockerd finds it (``docker network create -d NAME --ipam-driver NAME …``).  Run one per
host, next to the agent, in the network namespace of the host's OVS and dockerd (and in dockerd's
mount namespace, so that both see the same plugin directory and container sandboxes).

examples:
  netplugin-docker --host host1 --etcd http://127.0.0.1:2379
  netplugin-docker --host host1 --name netplugin --plugin-dir /run/docker/plugins \\
      --ovsdb unix:/var/run/openvswitch/db.sock --docker-host unix:///var/run/docker.sock

then, on every host:
  docker network create -d netplugin --ipam-driver netplugin \\
      --ipam-opt netplugin.tenant=T --ipam-opt netplugin.network=NET \\
      -o netplugin.tenant=T -o netplugin.network=NET NET
  docker run --network NET --name web busybox …
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socketserver
import sys
import threading
import time
from collections.abc import Callable, Iterable
from wsgiref.simple_server import ServerHandler, WSGIRequestHandler

from webob import Request, Response

from agent.docker_api import DockerAPI, DockerUnavailable
from agent.docker_driver import Driver
from agent.docker_plumb import OvsPlumbing
from agent.docker_reconcile import reconcile
from agent.ipam import DEFAULT_CNI_PATH, CniIpam
from agent.ovsdb import OvsdbError
from intent.store import StoreError
from intent.version import version_text

LOG = logging.getLogger("netplugin.docker")
CONTENT_TYPE = "application/vnd.docker.plugins.v1.2+json"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="netplugin-docker", description=__doc__.split("\n\n")[0],
                                epilog=__doc__[__doc__.index("examples:"):],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--host", required=True, help="this host's name (as in the intent)")
    p.add_argument("--etcd", default=os.environ.get("NETPLUGIN_ETCD", "http://127.0.0.1:2379"),
                   metavar="URL[,URL...]",
                   help="etcd client URL, or several members of one cluster separated by commas "
                        "(default: $NETPLUGIN_ETCD or %(default)s)")
    p.add_argument("--etcd-ca", help="CA certificate that signed etcd's (or $NETPLUGIN_ETCD_CA)")
    p.add_argument("--etcd-cert", help="client certificate for etcd (or $NETPLUGIN_ETCD_CERT)")
    p.add_argument("--etcd-key", help="private key of --etcd-cert (or $NETPLUGIN_ETCD_KEY)")
    p.add_argument("--name", default="netplugin", help="plugin name: the driver name Docker "
                   "is given (-d NAME, --ipam-driver NAME); default %(default)s")
    p.add_argument("--plugin-dir", default="/run/docker/plugins",
                   help="where dockerd looks for plugin sockets (default %(default)s)")
    p.add_argument("--ovsdb", default="unix:/var/run/openvswitch/db.sock", help="OVSDB remote")
    p.add_argument("--bridge", default="br-int", help="integration bridge (default %(default)s)")
    p.add_argument("--docker-host", default=os.environ.get("DOCKER_HOST",
                                                           "unix:///var/run/docker.sock"),
                   help="dockerd's API socket, to learn container names "
                        "(default: $DOCKER_HOST or %(default)s)")
    p.add_argument("--cni-path", default=os.environ.get("CNI_PATH", DEFAULT_CNI_PATH),
                   metavar="DIR[:DIR...]", help="where networks' CNI IPAM plugins are found "
                                                "(default: $CNI_PATH or %(default)s)")
    p.add_argument("--log-level", default="INFO")
    p.add_argument("--version", action="version", version=version_text("netplugin-docker"))
    return p.parse_args(argv)


# ----------------------------------------------------------------------------- HTTP edge


def make_app(driver: Driver) -> Callable:
    """The WSGI app: POST /<Method> with a JSON body -> the driver's JSON answer."""
    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        req = Request(environ)
        if req.method != "POST":
            resp = Response(status=405, content_type=CONTENT_TYPE,
                            body=json.dumps({"Err": "POST only"}).encode())
            return resp(environ, start_response)
        try:
            body = json.loads(req.body or b"{}")
        except ValueError as e:
            resp = Response(status=400, content_type=CONTENT_TYPE,
                            body=json.dumps({"Err": f"netplugin: body is not JSON: {e}"}).encode())
            return resp(environ, start_response)
        started = time.monotonic()
        result = driver.handle(req.path, body)
        took = (time.monotonic() - started) * 1000
        if result is None:
            resp = Response(status=404, content_type=CONTENT_TYPE,
                            body=json.dumps({"Err": f"netplugin: unknown method {req.path}"})
                            .encode())
        else:
            resp = Response(status=200, content_type=CONTENT_TYPE,
                            body=json.dumps(result).encode())
        LOG.debug("%s %s -> %s (%.1f ms)", req.path, body, result, took)
        return resp(environ, start_response)

    return app


class _Handler(WSGIRequestHandler):
    def address_string(self) -> str:
        return "docker"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's name
        LOG.debug("http: " + format, *args)

    def handle(self) -> None:  # wsgiref's, minus its TCP-only environ bits
        self.raw_requestline = self.rfile.readline(65537)
        if len(self.raw_requestline) > 65536 or not self.parse_request():
            return
        handler = ServerHandler(self.rfile, self.wfile, self.get_stderr(), self.get_environ(),
                                multithread=True)
        handler.request_handler = self
        handler.run(self.server.app)  # type: ignore[attr-defined]


class UnixWSGIServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A threaded WSGI server on a unix socket."""

    daemon_threads = True

    def __init__(self, path: str, app: Callable) -> None:
        self.app = app
        self.base_environ = {"SERVER_NAME": "netplugin", "SERVER_PORT": "0",
                             "GATEWAY_INTERFACE": "CGI/1.1", "SCRIPT_NAME": ""}
        super().__init__(path, _Handler)

    def get_request(self):  # noqa: ANN201 - socketserver's
        conn, _ = self.socket.accept()
        return conn, ("docker", 0)


def serve(path: str, app: Callable) -> UnixWSGIServer:
    """Listen on ``path`` (a stale socket is replaced) in a background thread."""
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    if os.path.exists(path):
        os.unlink(path)
    server = UnixWSGIServer(path, app)
    os.chmod(path, 0o660)
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    return server


# ----------------------------------------------------------------------------- Docker's API


class NameWatcher:
    """Learns container names from Docker: a full look on every (re)connection, then the
    ``network connect`` events of this driver's networks."""

    def __init__(self, driver: Driver, api: DockerAPI, stop: threading.Event) -> None:
        self.driver = driver
        self.api = api
        self.stop = stop
        self.cleaned = False

    def run(self) -> None:
        delay = 0.2
        while not self.stop.is_set():
            try:
                self._session()
                delay = 0.2
            except DockerUnavailable as e:
                LOG.info("%s; retrying", e)
            except (StoreError, OvsdbError) as e:
                LOG.warning("reconcile with Docker: %s; retrying", e)
            except Exception:  # noqa: BLE001 - the watcher must outlive a bug
                LOG.exception("name watcher failed; retrying")
            self.stop.wait(delay)
            delay = min(delay * 2, 5.0)

    def _session(self) -> None:
        if not self.api.ping():
            raise DockerUnavailable(f"Docker at {self.api.url} does not answer")
        events = self.api.events({"type": ["container", "network"],
                                  "event": ["start", "connect"]})
        view = self.api.view([n.docker_id for n in self.driver.state.networks()])
        reconcile(self.driver, view, cleanup=not self.cleaned)
        self.cleaned = True
        LOG.info("watching Docker at %s for container names", self.api.url)
        for ev in events:
            if self.stop.is_set():
                return
            if ev.get("Type") == "network":  # docker network connect (and most docker runs)
                nids = [(ev.get("Actor") or {}).get("ID", "")]
            else:  # docker start of a stopped container: no connect event
                nids = [n.docker_id for n in self.driver.state.networks()]
            for nid in nids:
                if self.driver.state.network(nid) is None:
                    continue
                for eid, dep in (self.api.network_endpoints(nid) or {}).items():
                    self.driver.learn(eid, dep.container)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("pyroute2", "urllib3", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.INFO, logging.root.level))
    from intent.etcd_conn import EtcdTls
    from intent.store_etcd import open_store

    try:
        store = open_store(args.etcd, EtcdTls.from_options(args.etcd_ca, args.etcd_cert,
                                                           args.etcd_key))
        plumbing = OvsPlumbing(args.ovsdb, args.bridge)
        driver = Driver(store, args.host, plumbing, CniIpam(args.cni_path))
        reconcile(driver, None)
    except (StoreError, OvsdbError, OSError) as e:
        print(f"netplugin-docker: {e}", file=sys.stderr)
        return 1
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    path = os.path.join(args.plugin_dir, f"{args.name}.sock")
    server = serve(path, make_app(driver))
    LOG.info("netplugin-docker for host %s on %s", args.host, path)
    watcher = NameWatcher(driver, DockerAPI(args.docker_host), stop)
    threading.Thread(target=watcher.run, name="docker-names", daemon=True).start()
    stop.wait()
    server.shutdown()
    server.server_close()
    if os.path.exists(path):
        os.unlink(path)
    LOG.info("netplugin-docker for host %s stopped", args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
