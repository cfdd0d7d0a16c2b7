"""Stable 64-bit hashes of the engine's inputs, of which a host's input digest is a sum.

:func:`h64` is the same in every process (unlike ``hash``).  :func:`h64_memo` remembers it for
the parts a digest hashes over and over (network specs, tunnel peers, port numbers): a host's
digest is recomputed per send, and over many hosts and wide networks hashing the same parts
again dominated it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

MASK64 = (1 << 64) - 1
_MEMO: dict[tuple, int] = {}
_MEMO_MAX = 1 << 16  # a bound: a full memo is emptied and starts again


def h64(*parts: object) -> int:
    """A stable 64-bit hash (the same in every process, unlike ``hash``)."""
    text = "\x1f".join(map(str, parts)).encode()
    return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big")


def h64_memo(*parts: object) -> int:
    """``h64(*parts)``, remembered.  Only for parts whose equality implies equal text: str,
    int (not bool), None and the frozen intent specs."""
    h = _MEMO.get(parts)
    if h is None:
        if len(_MEMO) >= _MEMO_MAX:
            _MEMO.clear()
        h = _MEMO[parts] = h64(*parts)
    return h


def code_version() -> int:
    """A hash of the pipeline's code: a new version never trusts an old marker."""
    here = Path(__file__).resolve().parent
    h = hashlib.blake2b(digest_size=8)
    for path in sorted(here.glob("*.py")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return int.from_bytes(h.digest(), "big")


CODE_VERSION = code_version()
CODE_HASH = h64("code", CODE_VERSION)
