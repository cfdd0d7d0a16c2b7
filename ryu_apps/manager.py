"""``ryu-manager`` and ``netplugin-controller``: Ryu's application manager, on os-ken.

    ryu-manager [--ofp-tcp-listen-port 6653] [--ofp-listen-host ADDR] [--config-file FILE]
                [--verbose] [--log-file FILE] [--version] [APP OPTIONS] MODULE ...

os-ken dropped Ryu's ``ryu-manager``; this one does what it did: it loads the Ryu-API application
modules named on the command line and runs them (with the OpenFlow handler they need) until it is
stopped.  Options that an app module registers on ``cfg.CONF`` when it is imported (as
``ryu_apps.netplugin`` does: ``--etcd``, ``--rest-port`` …) are command-line options too, and every
option can come from ``--config-file`` (``[DEFAULT]`` section, names with ``_``).  App modules
written against ``ryu.*`` imports run as well: in this process only, ``ryu.X`` is ``os_ken.X`` and
``RyuApp`` is ``OSKenApp``.

**A real Ryu is never shadowed**: when the ``ryu`` package is importable, ``ryu-manager`` hands the
command line over, unchanged, to Ryu's own manager (``ryu.cmd.manager``).  ``netplugin-controller``
is the same manager with ``ryu_apps.netplugin`` as its default app; it always runs on os-ken.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import logging
import os
import re
import sys
import warnings
from collections.abc import Sequence
from types import ModuleType

DEFAULT_OFP_PORT = 6653
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
NOISY = ("os_ken.base.app_manager", "os_ken.controller.controller", "os_ken.lib.hub",
         "ryu.base.app_manager")
_MODULE_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")

EXAMPLES = """examples:
  ryu-manager ryu_apps.netplugin --etcd http://127.0.0.1:2379 --ofp-tcp-listen-port 6653
  ryu-manager --config-file /etc/netplugin.conf --log-file /var/log/netplugin.log \\
              ryu_apps.netplugin
  netplugin-controller --etcd http://127.0.0.1:2379 --rest-port 9999 --verbose
      OpenFlow on 127.0.0.1:6653, REST API on 127.0.0.1:9999 (no token needed on loopback)
  NETPLUGIN_REST_TOKEN=$(cat /etc/netplugin/token) netplugin-controller --rest-host 0.0.0.0
  netplugin-controller --ofp-listen-host 10.0.0.1 --rest-host 10.0.0.1 \\
      --rest-token-file /etc/netplugin/token   # clients send "Authorization: Bearer <token>"
  netplugin-controller --rest-host 0.0.0.0 --insecure   # open REST API: trusted networks only
  netplugin-controller --etcd https://10.0.0.1:2379,https://10.0.0.2:2379,https://10.0.0.3:2379 \\
      --etcd-ca ca.pem --etcd-cert ctl.pem --etcd-key ctl.key \\
      --ofp-ssl-listen-port 6653 --ctl-privkey ctl.key --ctl-cert ctl.pem --ca-certs ca.pem \\
      --rest-cert ctl.pem --rest-key ctl.key      # TLS everywhere (switches: ssl:IP:6653)
  netplugin-controller --etcd http://10.0.0.5:2379 --ofp-listen-host 10.0.0.6 \
      --controller-name ctl2 --master-lease-ttl 3   # one of several: they elect each
                                                    # switch's master through etcd
"""
HAND_OVER = ("When a real Ryu is importable, ryu-manager hands over to Ryu's own manager\n"
             "(ryu.cmd.manager), which then runs the same modules on Ryu.")


def real_ryu_available() -> bool:
    """Whether a genuine Ryu (with its manager) is importable here."""
    try:
        return importlib.util.find_spec("ryu") is not None and \
            importlib.util.find_spec("ryu.cmd.manager") is not None
    except (ImportError, ValueError):
        return False


def main(argv: Sequence[str] | None = None) -> int:
    """``ryu-manager``: Ryu's own manager when Ryu is installed, else this one on os-ken."""
    args = list(sys.argv[1:] if argv is None else argv)
    if real_ryu_available():
        from ryu.cmd import manager as ryu_manager  # type: ignore[import-not-found]

        return ryu_manager.main(args=args, prog="ryu-manager") or 0
    return run(args, prog="ryu-manager")


GC_THRESHOLD = (50_000, 20, 20)  # young-generation collections every 50k allocations


def tune_gc() -> None:
    """Fewer collector passes while the engine builds tables of 100k entries (immutable flow
    objects: nothing to collect, yet the default thresholds scan them ~2.5x the build time)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def controller_main(argv: Sequence[str] | None = None) -> int:
    """``netplugin-controller``: ``ryu_apps.netplugin`` (and any MODULE given) on os-ken."""
    tune_gc()
    return run(list(sys.argv[1:] if argv is None else argv), prog="netplugin-controller",
               default_apps=("ryu_apps.netplugin",))


# --------------------------------------------------------------------------- ryu.* on os-ken

class RyuOnOsKen(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Makes ``import ryu.X`` give the module ``os_ken.X`` (one module object, not a copy)."""

    RENAMED = {"os_ken.base.app_manager": {"RyuApp": "OSKenApp"},
               "os_ken.exception": {"RyuException": "OSKenException"}}

    def __init__(self) -> None:
        self._real_specs: dict[str, importlib.machinery.ModuleSpec | None] = {}

    def find_spec(self, fullname: str, path=None, target=None):  # noqa: ANN001 - importlib's
        if fullname != "ryu" and not fullname.startswith("ryu."):
            return None
        real = importlib.util.find_spec("os_ken" + fullname[3:])
        if real is None:
            return None
        return importlib.machinery.ModuleSpec(
            fullname, self, is_package=real.submodule_search_locations is not None)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        name = "os_ken" + spec.name[3:]
        module = importlib.import_module(name)
        self._real_specs[spec.name] = module.__spec__
        for old, new in self.RENAMED.get(name, {}).items():
            if not hasattr(module, old):
                setattr(module, old, getattr(module, new))
        return module

    def exec_module(self, module: ModuleType) -> None:
        # importlib gave the shared module the alias's spec: give it its own back
        module.__spec__ = self._real_specs.pop(module.__spec__.name, module.__spec__)


def install_ryu_alias() -> None:
    """Serve ``ryu.*`` imports from os-ken in this process (never when a real Ryu is here)."""
    if real_ryu_available() or any(isinstance(f, RyuOnOsKen) for f in sys.meta_path):
        return
    sys.meta_path.insert(0, RyuOnOsKen())


# --------------------------------------------------------------------------- the manager

def app_modules_in(args: Sequence[str]) -> list[str]:
    """Words of the command line that name importable modules (the apps, to import early)."""
    found = []
    for word in args:
        if word.startswith("-"):
            continue
        for name in word.split(","):
            if _MODULE_RE.match(name) and name not in found and _findable(name):
                found.append(name)
    return found


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


def check_apps(apps: Sequence[str], app_class: type) -> str | None:
    """A message if an app module cannot be imported or defines no app class, else None."""
    for name in apps:
        if os.path.exists(name):
            continue  # a module file: the app manager imports it by path
        try:
            module = importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
            return f"cannot import app module {name}: {type(exc).__name__}: {exc}"
        if not any(isinstance(v, type) and issubclass(v, app_class)
                   and v.__module__ == module.__name__ for v in vars(module).values()):
            return f"module {name} defines no Ryu application class"
    return None


def _register_manager_opts(conf) -> None:  # noqa: ANN001 - an oslo.config ConfigOpts
    from oslo_config import cfg

    for opt in (cfg.ListOpt("app-lists", default=[], help="application modules to run"),
                cfg.MultiStrOpt("app", positional=True, default=[], metavar="MODULE",
                                help="application module to run (a Ryu-API app)"),
                cfg.StrOpt("pid-file", default=None, help="write the process id to this file")):
        try:
            conf.register_cli_opt(opt)
        except cfg.DuplicateOptError:
            pass


def _listen_on_loopback(conf) -> None:  # noqa: ANN001 - an oslo.config ConfigOpts
    """OpenFlow on 127.0.0.1 unless ``--ofp-listen-host`` says otherwise (os-ken: 0.0.0.0)."""
    from oslo_config import cfg

    opt = cfg.StrOpt("ofp-listen-host", default="127.0.0.1",
                     help="address OpenFlow listens on (default 127.0.0.1: switches on this "
                          "machine only)")
    conf.unregister_opt(opt)  # os-ken's, found by name
    conf.register_cli_opt(opt)


def _fail(prog: str, message: str) -> int:
    print(f"{prog}: {message}", file=sys.stderr)
    return 2


def _keep_line_breaks_in_help(conf) -> None:  # noqa: ANN001 - an oslo.config ConfigOpts
    """Let ``--help`` print the description and examples as written (not re-wrapped)."""
    setup = conf._pre_setup

    def pre_setup(*args, **kwargs):  # noqa: ANN002,ANN003,ANN202 - oslo.config's signature
        out = setup(*args, **kwargs)
        conf._oparser.formatter_class = argparse.RawDescriptionHelpFormatter
        return out

    conf._pre_setup = pre_setup


def _setup_logging(conf, init_log) -> None:  # noqa: ANN001 - oslo.config and os-ken's init_log
    init_log()
    for handler in logging.getLogger().handlers:
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
    if not conf.verbose:
        for noisy in NOISY:
            logging.getLogger(noisy).setLevel(logging.WARNING)


def run(args: list[str], prog: str, default_apps: Sequence[str] = ()) -> int:
    """Parse the command line, load the app modules and run them until stopped."""
    os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")
    with warnings.catch_warnings():  # eventlet announces its deprecation on import
        warnings.simplefilter("ignore")
        import eventlet

    eventlet.monkey_patch()  # etcd and REST calls become cooperative
    install_ryu_alias()
    from oslo_config import cfg

    from ryu_apps import framework

    fw = framework.FRAMEWORK
    conf = framework.cfg.CONF
    log = importlib.import_module(f"{fw}.log")  # Ryu's logging flags: --verbose, --log-file …
    importlib.import_module(f"{fw}.controller.controller")  # --ofp-tcp-listen-port …
    _register_manager_opts(conf)
    _listen_on_loopback(conf)
    for name in dict.fromkeys([*default_apps, *app_modules_in(args)]):
        try:
            importlib.import_module(name)  # registers the app's own options
        except Exception as exc:  # noqa: BLE001 - any import failure is the user's to see
            return _fail(prog, f"cannot import app module {name}: {type(exc).__name__}: {exc}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        versions = f"netplugin {version('netplugin')}, {fw} {version(fw.replace('_', '-'))}"
    except PackageNotFoundError:
        versions = fw
    description = (f"Load the given Ryu-API application modules and run them on "
                   f"{fw.replace('_', '-')}.\n" +
                   (HAND_OVER if prog == "ryu-manager" else
                    "Runs ryu_apps.netplugin unless other modules are given."))
    _keep_line_breaks_in_help(conf)
    try:
        conf(args=args, project="netplugin", prog=prog, version=f"{prog} ({versions})",
             description=description, epilog=EXAMPLES)
    except cfg.Error as exc:
        return _fail(prog, str(exc))
    apps = list(conf.app_lists) + list(conf.app) or list(default_apps) or \
        [f"{fw}.controller.ofp_handler"]
    problem = check_apps(apps, framework.RyuApp)
    if problem:
        return _fail(prog, problem)
    if "ryu_apps.netplugin" in apps:
        from ryu_apps import netplugin

        try:
            netplugin.rest_token_of(conf)  # REST off loopback needs a token (or --insecure)
            netplugin.rest_tls(conf.rest_cert, conf.rest_key)
        except netplugin.StartupError as exc:
            return _fail(prog, str(exc))
    from ryu_apps import tls

    try:
        openflow_tls = tls.openflow_tls(conf)
    except ValueError as exc:
        return _fail(prog, str(exc))
    if conf.ofp_tcp_listen_port is None and conf.ofp_ssl_listen_port is None:
        conf.set_override("ofp_tcp_listen_port", DEFAULT_OFP_PORT)
    _setup_logging(conf, log.init_log)
    if openflow_tls:
        tls.install_refusal_filter()
        if not conf.ca_certs:
            logging.getLogger("netplugin").warning(
                "OpenFlow over TLS without --ca-certs: any switch may connect")
    if conf.pid_file:
        with open(conf.pid_file, "w") as f:
            f.write(f"{os.getpid()}\n")
    try:
        framework.app_manager.AppManager.run_apps(apps)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
