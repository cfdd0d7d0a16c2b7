"""``python -m agent``: the per-host agent."""

from agent.main import main

raise SystemExit(main())
