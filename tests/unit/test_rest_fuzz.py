"""schemathesis over the served OpenAPI document against the live REST API (the WSGI app on an
in-memory store, served on a loopback port): no 5xx, every error body is ``{"errors": [...]}``,
status codes and bodies as documented.  Bounded by ``MAX_EXAMPLES`` per operation and mode
(20: about 600 requests, a few seconds); ``NETPLUGIN_FUZZ_EXAMPLES=200`` for a deeper run.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from allocator import write as apply
from intent.loader import load_config
from intent.store_memory import MemoryStore
from tests.rest_fuzzing import CASES, fuzz_operation, load_schema, serve

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "two_hosts_multiple_vxlan_nets.json"
MAX_EXAMPLES = int(os.environ.get("NETPLUGIN_FUZZ_EXAMPLES", "20"))
SENT: Counter[str] = Counter()


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    store = MemoryStore()
    apply.apply_config(store, load_config(EXAMPLE), "desired")
    with serve(store) as url:
        yield url
    logging.getLogger(__name__).warning("schemathesis sent %d requests to the in-memory API",
                                        sum(SENT.values()))


@pytest.fixture(scope="module")
def api_schema(live_api: str):
    return load_schema(live_api)


@pytest.mark.parametrize(("method", "path", "mode"), CASES)
def test_rest_api_never_fails_and_answers_errors_as_documented(api_schema, live_api, method,
                                                               path, mode):
    fuzz_operation(api_schema, live_api, method, path, mode, MAX_EXAMPLES, SENT)
    assert SENT[f"{mode.value} {method} {path}"] >= 1
