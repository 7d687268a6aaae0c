"""Schemathesis fuzzes ``GET /openapi.json`` against a live ``rkat-rest``: no 5xx, nothing off-schema.

Each operation gets a few generated requests, valid and invalid ones, plus the
coverage phase's edge cases; every answer must have a documented status, the
documented content type, and a body that matches its schema. The only 5xx
allowed is 502 PROVIDER_ERROR: a generated ``provider`` such as ``anthropic``
reaches a provider that has no key here, and the model provider (not this
server) failing is what 502 documents. The event stream is left out: it is a
stream that only ends with its session (``test_rest.py`` covers it).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from surfaces.rest.openapi import openapi_document
from test_rest_server import RestServer

#: Generated requests per operation (a bound on run time; the coverage phase adds its edge cases).
MAX_EXAMPLES = 25


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-fuzz")
    with RestServer("--realm", "fuzzed", "--state-root", str(root)) as running:
        yield running


def no_server_error(ctx, response, case) -> bool | None:
    """Fail on any 5xx but a provider's own failure (502 PROVIDER_ERROR)."""
    if response.status_code < 500:
        return None
    if response.status_code == 502 and response.json().get("code") == "PROVIDER_ERROR":
        return None
    raise AssertionError(f"server error {response.status_code}: {response.text[:500]}")


# The document as the server builds it; test_served_document_is_the_fuzzed_one checks the server serves it.
DOCUMENT = openapi_document(auth=False)
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/sessions/{session_id}/events")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate], derandomize=True, database=None)
def test_openapi_fuzz(server, case):
    case.call_and_validate(base_url=server.url, checks=[no_server_error, status_code_conformance, content_type_conformance,
                                   response_schema_conformance], timeout=30)


def test_served_document_is_the_fuzzed_one(server):
    import httpx2

    assert httpx2.get(f"{server.url}/openapi.json").json() == DOCUMENT
