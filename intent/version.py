"""The version every console script prints for ``--version``."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version


def version_text(prog: str) -> str:
    """``"<prog> (netplugin X.Y.Z)"``; ``unknown`` when the package is not installed."""
    try:
        v = version("netplugin")
    except PackageNotFoundError:
        v = "unknown (not installed)"
    return f"{prog} (netplugin {v})"
