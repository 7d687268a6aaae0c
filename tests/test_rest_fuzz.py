"""Schemathesis fuzzes ``GET /openapi.json`` against a live ``rkat-rest``: no 5xx, nothing off-schema.

Each operation gets up to 300 generated requests, valid and invalid ones (within a
time budget); every
answer must have a documented status, the documented content type, and a body
that matches its schema, and none may be a 5xx. A generated ``provider`` such as
``anthropic`` or ``gemini`` reaches the fake vendor server of
:mod:`meerkat.testing` (a process on loopback, given to the server through fake
keys and base URLs), so hosted models answer too. The event stream is left out:
it is a stream that only ends with its session (``test_rest.py`` covers it).
"""

from __future__ import annotations

import os
import time

import pytest

from fake_vendor import fake_vendor_process, vendor_env
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from surfaces.rest.openapi import openapi_document
from test_rest_server import RestServer

#: Generated requests per operation (RKAT_FUZZ_EXAMPLES overrides): 300 take about a minute
#: on 2 cores; FUZZ_BUDGET_SECS bounds the whole run on a slower machine, the examples past
#: it are skipped (each operation still gets its first ones).
MAX_EXAMPLES = int(os.environ.get("RKAT_FUZZ_EXAMPLES", "300"))
FUZZ_BUDGET_SECS = float(os.environ.get("RKAT_FUZZ_BUDGET_SECS", "240"))
_started: list[float] = []  # when the first example ran
_PER_OPERATION_FLOOR = 25


@pytest.fixture(scope="module")
def vendor_url():
    """A fake Anthropic/OpenAI/Gemini server process on a free loopback port."""
    with fake_vendor_process("fuzzed") as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory, vendor_url):
    root = tmp_path_factory.mktemp("rest-fuzz")
    with RestServer("--realm", "fuzzed", "--state-root", str(root), env=vendor_env(vendor_url)) as running:
        yield running


def no_server_error(ctx, response, case) -> bool | None:
    """Fail on any 5xx."""
    if response.status_code >= 500:
        raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")
    return None


# The document as the server builds it; test_served_document_is_the_fuzzed_one checks the server serves it.
DOCUMENT = openapi_document(auth=False)
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/sessions/{session_id}/events")


_examples_run: dict[str, int] = {}


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate], derandomize=True, database=None)
def test_openapi_fuzz(server, case):
    operation = f"{case.method} {case.path}"
    done = _examples_run.get(operation, 0)
    if not _started:
        _started.append(time.monotonic())
    if done >= _PER_OPERATION_FLOOR and time.monotonic() - _started[0] > FUZZ_BUDGET_SECS:
        return  # over the time budget: the rest of this operation's examples are skipped
    _examples_run[operation] = done + 1
    case.call_and_validate(base_url=server.url, timeout=30, checks=[
        no_server_error, status_code_conformance, content_type_conformance, response_schema_conformance])


def test_served_document_is_the_fuzzed_one(server):
    import httpx2

    assert httpx2.get(f"{server.url}/openapi.json").json() == DOCUMENT
