"""``netplugin-controller``: start the os-ken app manager with ``ryu_apps.netplugin`` on the
eventlet hub, with ``ryu-manager``-style flags::

    netplugin-controller [--ofp-tcp-listen-port 6653] [--etcd URL] [--rest-port 9999]
                         [--rest-token TOKEN] [--config-file F] [--verbose]
"""

from __future__ import annotations

import os
import sys

os.environ.setdefault("OSKEN_HUB_TYPE", "eventlet")


def main(argv: list[str] | None = None) -> int:
    """Parse flags, monkey-patch (etcd calls become cooperative), run until killed."""
    import eventlet

    eventlet.monkey_patch()
    import logging

    from ryu_apps import framework
    from ryu_apps import netplugin as app_module

    conf = framework.cfg.CONF
    # os-ken registers --ofp-tcp-listen-port when its controller module is imported.
    from ryu_apps.framework import app_manager  # noqa: F401

    __import__(f"{framework.FRAMEWORK}.controller.controller")
    for opt in (framework.cfg.BoolOpt("verbose", default=False, help="debug output"),
                framework.cfg.StrOpt("log-file", default=None, help="log to this file")):
        try:
            conf.register_cli_opt(opt)
        except Exception:  # noqa: BLE001 - registered already
            pass
    app_module.register_opts(conf)
    args = sys.argv[1:] if argv is None else argv
    conf(args=args, project="netplugin", prog="netplugin-controller")
    if conf.ofp_tcp_listen_port is None:
        conf.set_override("ofp_tcp_listen_port", 6653)
    logging.basicConfig(
        level=logging.DEBUG if conf.verbose else logging.INFO, filename=conf.log_file,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not conf.verbose:
        for noisy in ("os_ken.base.app_manager", "os_ken.controller.controller",
                      "os_ken.lib.hub", "ryu.base.app_manager"):
            logging.getLogger(noisy).setLevel(logging.WARNING)
    mgr = framework.app_manager.AppManager
    mgr.run_apps(["ryu_apps.netplugin", f"{framework.FRAMEWORK}.controller.ofp_handler"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
