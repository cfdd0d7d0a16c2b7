"""``python -m topologies``: the multi-host test bed (see ``topologies.cli``)."""

import sys

from topologies.cli import main

sys.exit(main())
