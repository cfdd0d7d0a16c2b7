"""``netplugin-controller`` (and ``python -m ryu_apps``): ``ryu_apps.netplugin`` on os-ken, with
``ryu-manager``'s flags; one implementation with ``ryu-manager`` (see :mod:`ryu_apps.manager`)::

    netplugin-controller [--ofp-tcp-listen-port 6653] [--etcd URL] [--rest-port 9999]
                         [--rest-token TOKEN] [--config-file F] [--verbose] [MODULE ...]
"""

from __future__ import annotations

import sys

from ryu_apps.manager import controller_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
