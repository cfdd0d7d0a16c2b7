"""Shared test helper: read a store watch in a thread so a test fails rather than hangs."""

from __future__ import annotations

import threading


def first_events(watcher, n: int, timeout: float) -> tuple[list, list]:
    """Up to ``n`` events of ``watcher`` within ``timeout`` seconds, and any exceptions raised."""
    got: list = []
    errors: list = []

    def run() -> None:
        try:
            for ev in watcher:
                got.append(ev)
                if len(got) == n:
                    return
        except Exception as exc:  # noqa: BLE001 - handed to the test
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(timeout)
    watcher.close()
    return got, errors
