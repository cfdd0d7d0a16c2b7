"""``python -m ryu_apps``: the controller launcher."""

import sys

from ryu_apps.launcher import main

sys.exit(main())
