"""Schemathesis fuzzes ``GET /openapi.json`` against a live ``rkat-rest``: the document and the server agree.

Two runs against one real server (hypercorn, on a free loopback port):

* every operation on its own: schemathesis's examples, coverage (boundary values) and
  fuzzing phases, valid and invalid requests alike;
* stateful: schemathesis follows the document's OpenAPI ``links`` (create a session,
  then fork it, rewrite it, read the revision the rewrite made, inject context and
  read that input back...), so calls reach real sessions, revisions and inputs.

Every answer is checked: no 5xx, a documented status, content type, headers and
body schema; a request the document calls valid must be accepted (2xx, or 404
for an id that names nothing) and one it calls invalid must be refused (4xx).
The exceptions are the rules a JSON schema cannot state: the ones that depend on
the server's state (a compare-and-set on the transcript head, a revision or realm
that does not exist, a model the catalog does not know, a config value out of its
range), each stated in prose in the document's 400 answer; see ``_STATE_RULES``.

A generated ``provider`` such as ``anthropic`` reaches the fake vendor server of
:mod:`meerkat.testing`. The event stream is left out: it only ends with its session
(``test_rest.py`` covers it).

Bounded for ``make test`` (and so CI), about 80 s on 2 cores: runs are derandomized (the
same requests every time); the operations one by one share a wall-clock budget
(``RKAT_FUZZ_BUDGET_SECS``, 60 s; each operation gets its share, and at least 10 examples,
then is reported skipped), of at most ``RKAT_FUZZ_EXAMPLES`` (300) examples each; the
stateful run is ``RKAT_FUZZ_SCENARIOS`` (40) scenarios of up to 12 linked calls. Deeper:
``RKAT_FUZZ_BUDGET_SECS=1200 RKAT_FUZZ_SCENARIOS=300``. ``make test-fast`` skips this module.
"""

from __future__ import annotations

import os
import time
from typing import Any

import httpx2
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation.stateful import run_state_machine_as_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from fake_vendor import fake_vendor_process, vendor_env
from surfaces.rest.openapi import openapi_document
from test_rest_server import RestServer

MAX_EXAMPLES = int(os.environ.get("RKAT_FUZZ_EXAMPLES", "300"))
SCENARIOS = int(os.environ.get("RKAT_FUZZ_SCENARIOS", "40"))
#: Wall-clock budget of the operations one by one (the stateful run is bounded by SCENARIOS: ~15 s here).
STATELESS_SECS = float(os.environ.get("RKAT_FUZZ_BUDGET_SECS", "60"))
#: Examples every operation gets even past the budget (so a slow machine still touches each one).
_PER_OPERATION_FLOOR = 10
REALM = "fuzzed"


@pytest.fixture(scope="module")
def vendor_url():
    """A fake Anthropic/OpenAI/Gemini server process on a free loopback port."""
    with fake_vendor_process("fuzzed") as url:
        yield url


@pytest.fixture(scope="module")
def server(tmp_path_factory, vendor_url):
    root = tmp_path_factory.mktemp("rest-fuzz")
    with RestServer("--realm", REALM, "--state-root", str(root), env=vendor_env(vendor_url)) as running:
        yield running


@pytest.fixture
def fresh_server(tmp_path, vendor_url):
    """A server of its own: the stateful run's scenarios then meet only the state they made, the same each
    time (the module's server holds whatever the time-bounded run before happened to create)."""
    with RestServer("--realm", REALM, "--state-root", str(tmp_path), env=vendor_env(vendor_url)) as running:
        yield running


#: Refusals of schema-valid requests that depend on the server's state, each stated in the document's
#: 400 description: (operation, a phrase of the error message). Anything else refused fails the run.
_MODEL_RULES = ("cannot infer provider from model", "belongs to provider", "self-hosted model", "is not accepted by")
_STATE_RULES: tuple[tuple[str, str], ...] = (
    *(("POST /sessions", phrase) for phrase in _MODEL_RULES),
    *(("POST /sessions/{session_id}/messages", phrase) for phrase in _MODEL_RULES),
    ("POST /sessions/{session_id}/messages", "Session ID mismatch"),
    ("POST /sessions/{session_id}/revisions", "transcript revision conflict"),
    ("POST /sessions/{session_id}/revisions", "is outside the transcript"),
    ("POST /sessions/{session_id}/revisions", "is before its start"),
    ("POST /sessions/{session_id}/fork", "out of range"),
    ("POST /sessions/{session_id}/fork", "is outside the transcript"),
    ("POST /sessions/{session_id}/fork", "missing field `message_index`"),  # needed with a replacement
    ("POST /sessions/{session_id}/fork", "is not a"),  # a block replacement aimed at a row of another kind
    ("POST /sessions/{session_id}/revisions/{revision}/restore", "transcript revision conflict"),
    ("POST /sessions/{session_id}/revisions/{revision}/restore", "has no transcript revision"),
    ("GET /sessions/{session_id}/revisions/{revision}", "has no transcript revision"),
    ("PUT /sessions/{session_id}/system_prompt", "transcript revision conflict"),
    ("PUT /sessions/{session_id}/system_prompt", "is at version"),
    ("PUT /sessions/{session_id}/system_prompt", "out of range"),
    ("PUT /sessions/{session_id}/system_prompt", "is not an unversioned system prompt row"),
    ("POST /sessions/{session_id}/fork", "instruction"),  # inherited_instructions "refuse" at a point that has some
    ("POST /sessions/{session_id}/instructions", "was already used"),
    ("POST /sessions/{session_id}/instructions", "is not the effective activation"),
    ("POST /sessions/{session_id}/instructions", "does not match the body's sha256"),
    ("POST /sessions/{session_id}/instructions", "effective is"),
    ("GET /realms/{realm_id}", "unknown realm"),
    ("PUT /config", "Invalid config: "),
    ("PATCH /config", "Invalid config: "),
)


def _state_rule(case: Any, response: Any) -> bool:
    """True when ``response`` refuses ``case`` by one of :data:`_STATE_RULES` (never an unknown key)."""
    if response.status_code != 400:
        return False
    try:
        body = response.json()
    except ValueError:
        return False
    message = str(body.get("error", ""))
    if "unknown key" in message or "unknown field" in message:
        return False  # the document lists every key: refusing one it lists is a real mismatch
    operation = f"{case.method.upper()} {case.path}"
    return any(operation == where and phrase in message for where, phrase in _STATE_RULES)


def valid_data_accepted(ctx, response, case) -> bool | None:
    """schemathesis's positive_data_acceptance, minus the state-dependent refusals of :data:`_STATE_RULES`."""
    if _state_rule(case, response):
        return None
    return positive_data_acceptance(ctx, response, case)


CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance,
          response_headers_conformance, negative_data_rejection, valid_data_accepted]

# The document as the server builds it; test_served_document_is_the_fuzzed_one checks the server serves it.
DOCUMENT = openapi_document(auth=False, realm_id=REALM)
schema = schemathesis.openapi.from_dict(DOCUMENT).exclude(path="/sessions/{session_id}/events")

_examples_run: dict[str, int] = {}
_started: dict[str, float] = {}
#: Each operation's share of the stateless budget (the first ones would otherwise spend it all).
_OPERATION_SECS = STATELESS_SECS / sum(1 for _ in schema.get_all_operations())


def _over_budget(run: str, budget: float) -> bool:
    started = _started.setdefault(run, time.monotonic())
    return time.monotonic() - started > budget


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck),
          phases=[Phase.explicit, Phase.generate], derandomize=True, database=None)
def test_openapi_fuzz(server, case):
    operation = f"{case.method} {case.path}"
    done = _examples_run.get(operation, 0)
    if _over_budget(operation, _OPERATION_SECS) and done >= _PER_OPERATION_FLOOR:
        # Past the budget: stop this operation now (returning would still generate its other examples).
        pytest.skip(f"fuzz time budget spent after {done} examples (RKAT_FUZZ_BUDGET_SECS goes deeper)")
    _examples_run[operation] = done + 1
    case.call_and_validate(base_url=server.url, timeout=30, checks=CHECKS)


def test_openapi_stateful(fresh_server):
    """Chains of linked calls (POST /sessions -> its id in every session route -> revisions, inputs...)."""
    steps: list[str] = []

    class Workflow(schema.as_state_machine()):  # type: ignore[misc]
        def step(self, input):
            steps.append(f"{input.case.method} {input.case.path}")
            return super().step(input)

        def get_call_kwargs(self, case):
            return {"base_url": fresh_server.url, "timeout": 30}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=CHECKS, transport_kwargs=kwargs)

    # Bounded by its size, not the clock: a step that stopped on a deadline would change what Hypothesis
    # draws between runs of a scenario, which it reports as flaky data (tried: reject() and an exception).
    run_state_machine_as_test(Workflow, settings=settings(
        max_examples=SCENARIOS, stateful_step_count=12, deadline=None, derandomize=True, database=None,
        suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink]))
    # The links made the chains: beyond creating sessions, the run reached routes that need a real one.
    assert "POST /sessions" in steps and "POST /sessions/{session_id}/fork" in steps, sorted(set(steps))


def test_served_document_is_the_fuzzed_one(server):
    # A fresh copy: schemathesis may add what it infers to the dict it was given.
    assert httpx2.get(f"{server.url}/openapi.json").json() == openapi_document(auth=False, realm_id=REALM)
