"""``netplugin-controller`` (and ``python -m ryu_apps``): ``ryu_apps.netplugin`` on os-ken, with
``ryu-manager``'s flags; one implementation with ``ryu-manager`` (see :mod:`ryu_apps.manager`)::

    netplugin-controller [--ofp-tcp-listen-port 6653] [--etcd URL[,URL...]] [--rest-port 9999]
                         [--rest-token TOKEN] [--config-file F] [--verbose] [MODULE ...]
                         [--etcd-ca CA --etcd-cert C --etcd-key K] [--rest-cert C --rest-key K]
                         [--ofp-ssl-listen-port 6653 --ctl-privkey K --ctl-cert C --ca-certs CA]

TLS: ``--ctl-privkey``/``--ctl-cert`` serve OpenFlow over TLS only (see :mod:`ryu_apps.tls`);
``--rest-cert``/``--rest-key`` serve the REST API over HTTPS only; the ``--etcd-*`` files are the
etcd client's.
"""

from __future__ import annotations

import sys

from ryu_apps.manager import controller_main as main

__all__ = ["main"]

if __name__ == "__main__":
    sys.exit(main())
