"""The example intent files, by kind: complete documents (``-cfg``), partial documents
(``-add-cfg`` / ``-del-cfg``, named ``*_add_del_ep.json`` as in the original) and bindings."""

from __future__ import annotations

from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def is_partial(path: Path) -> bool:
    return path.name.endswith("_add_del_ep.json")


def is_bindings(path: Path) -> bool:
    return path.name.endswith(".bindings.json")


def complete_examples() -> list[Path]:
    """Every complete intent document in examples/."""
    return sorted(p for p in EXAMPLES.glob("*.json") if not is_partial(p) and not is_bindings(p))


def partial_examples() -> list[Path]:
    return sorted(p for p in EXAMPLES.glob("*.json") if is_partial(p))
