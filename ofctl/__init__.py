"""Pure pipeline: intent -> per-host flow tables, diff, OpenFlow 1.3 encoding, simulator."""

from ofctl.textform import ofctl_text

__all__ = ["ofctl_text"]
