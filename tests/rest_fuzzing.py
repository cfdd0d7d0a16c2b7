"""Shared test helper: serve the REST API on a loopback port and run schemathesis against it.

``serve(store)`` runs the WSGI app (:class:`ryu_apps.rest.RestApi`) in a thread (wsgiref);
``fuzz_operation`` sends ``max_examples`` generated requests to one documented operation and
asserts what a client relies on: no 5xx, every error is ``{"errors": [non-empty strings]}``, and
status code, content type and body as the OpenAPI document says.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from intent.store import Store
from ryu_apps.rest import PREFIX, ROUTES, RestApi

TOKEN = "fuzz-token"
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, negative_data_rejection]
# negative cases only where there is something to get wrong (a parameter or a body)
CASES = [pytest.param(r.method, PREFIX + r.path, mode, id=f"{r.method} {r.path} {mode.value}")
         for r in ROUTES for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
         if mode == GenerationMode.POSITIVE or r.body or r.query or "{" in r.path]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base's signature
        pass


@contextmanager
def serve(store: Store) -> Iterator[str]:
    """The API over ``store`` (bearer token ``TOKEN``) on 127.0.0.1; yields its base URL."""
    server = make_server("127.0.0.1", 0, RestApi(store, token=TOKEN), server_class=WSGIServer,
                         handler_class=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def load_schema(base_url: str):
    """The OpenAPI document as the live API serves it."""
    return schemathesis.openapi.from_url(f"{base_url}{PREFIX}/openapi.json")


def error_body(response) -> None:
    """Every non-2xx answer is ``{"errors": [str, ...]}`` with at least one message."""
    if response.status_code < 300:
        return
    body = response.json()
    assert isinstance(body, dict) and set(body) == {"errors"}, body
    assert body["errors"] and all(isinstance(e, str) and e for e in body["errors"]), body


def fuzz_operation(api_schema, base_url: str, method: str, path: str, mode: GenerationMode,
                   max_examples: int, sent: Counter[str]) -> None:
    """Send generated requests to one operation; ``sent`` counts them per operation."""
    operation = api_schema[path][method]

    # the token as a fixed header: negative cases then vary what the request says, not its auth
    auth = {"Authorization": f"Bearer {TOKEN}"}

    @given(case=operation.as_strategy(generation_mode=mode, headers=auth))
    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    def one(case) -> None:
        response = case.call(base_url=base_url)
        sent[f"{mode.value} {method} {path}"] += 1
        assert response.status_code < 500, response.text
        error_body(response)
        case.validate_response(response, checks=CHECKS)

    one()
