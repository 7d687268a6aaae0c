"""Where the schemathesis run found ``rkat-rest`` and its OpenAPI document disagreeing, one request each.

Each case is a plain request to a real server; the assertions are what the
document says (and what it said wrongly, or what the server did wrongly, before).
The deep run itself is ``test_rest_fuzz.py``.
"""

from __future__ import annotations

import re

import httpx2
import jsonschema
import pytest

from meerkat.validation import MAX_STORED_INT
from test_rest_server import RestServer

REALM = "contract"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RestServer("--realm", REALM, "--state-root", str(tmp_path_factory.mktemp("rest-contract"))) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx2.Client(base_url=server.url, timeout=30) as http:
        yield http


@pytest.fixture(scope="module")
def document(client):
    return client.get("/openapi.json").json()


@pytest.fixture(scope="module")
def sid(client):
    created = client.post("/sessions", json={"prompt": "hello", "model": "mock"})
    assert created.status_code == 200, created.text
    return created.json()["session_id"]


def _refused(response, phrase: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "INVALID_PARAMS" and phrase in body["error"], body


def _component(document, name: str):
    """A validator of one component schema of the served document (its $refs resolved in it)."""
    schema = {**document["components"]["schemas"][name], "components": document["components"]}
    return jsonschema.Draft202012Validator(schema)


def test_an_empty_export_format_is_refused_not_read_as_atif(client, sid):
    # Accepted with 200 (the ATIF default) although the document's enum has no "".
    _refused(client.get(f"/sessions/{sid}/export", params={"format": ""}), "format must be one of")
    assert client.get(f"/sessions/{sid}/export").status_code == 200


def test_stop_run_reason_must_be_a_string(client, sid):
    # {"reason": {}} was accepted (read as no reason); the document says string or null.
    _refused(client.post(f"/sessions/{sid}/stop_run", json={"run_id": "r", "reason": {}}), "reason must be a string")
    ok = client.post(f"/sessions/{sid}/stop_run", json={"run_id": "r", "reason": None})
    assert ok.status_code == 200 and ok.json()["receipt"]["outcome"] == "not_current"


def test_inject_context_content_null_and_text_of_another_type_are_refused(client, sid):
    # {"content": null, "text": ""} and {"content": {...}, "text": {}} were applied.
    _refused(client.post(f"/sessions/{sid}/inject_context", json={"content": None, "text": "x"}), "content must be")
    _refused(client.post(f"/sessions/{sid}/inject_context",
                         json={"content": {"type": "text", "text": "x"}, "text": {}}), "text must be a string")
    applied = client.post(f"/sessions/{sid}/inject_context", json={"content": {"type": "text", "text": "x"}})
    assert applied.status_code == 200 and applied.json()["status"] == "applied"


def test_an_event_cursor_past_64_bits_is_invalid_params_not_a_500(client, sid):
    # after=921339901206586327040 reached SQLite and came back as 500 INTERNAL_ERROR.
    _refused(client.get("/events", params={"session_id": sid, "after": MAX_STORED_INT + 1}), "query parameter `after`")
    assert client.get("/events", params={"session_id": sid, "after": MAX_STORED_INT}).status_code == 200


def test_integer_fields_take_whole_numbers_written_as_floats(client, sid):
    # JSON Schema's "integer" includes 2.0; the server answered "must be a positive integer, got 2.0".
    created = client.post("/sessions", content=b'{"prompt": "hi", "model": "mock", "budget_max_tokens": 5000.0, '
                                                b'"max_tokens": 64.0}', headers={"Content-Type": "application/json"})
    assert created.status_code == 200, created.text
    fork = client.post(f"/sessions/{sid}/fork", content=b'{"message_index": 1.0}',
                       headers={"Content-Type": "application/json"})
    assert fork.status_code == 201 and fork.json()["message_count"] == 1, fork.text
    _refused(client.post(f"/sessions/{sid}/fork", json={"message_index": 1.5}), "message_index")


def test_integer_query_parameters_given_empty_or_twice_are_refused(client):
    # ?offset=&offset=x read as absent (200); the document's offset is one integer.
    _refused(client.get("/sessions?offset="), "`offset` must be an integer")
    _refused(client.get("/sessions?offset=1&offset=2"), "given 2 times")
    assert client.get("/sessions?offset=0&limit=5").status_code == 200


def test_session_ids_match_the_documented_pattern_and_only_those_are_accepted(client, document, sid):
    # The document took any string as a session id, the server refused all but UUIDs (400), and it
    # accepted spellings Python's uuid parser takes ("+", "_", hyphens anywhere) that no UUID grammar has.
    parameter = document["paths"]["/sessions/{session_id}"]["parameters"][0]
    pattern = re.compile(parameter["schema"]["pattern"])
    spellings = [sid, sid.upper(), sid.replace("-", ""), "{" + sid + "}", f"{REALM}:{sid}"]
    for spelling in spellings:
        assert pattern.search(spelling), spelling
        assert client.get(f"/sessions/{spelling}").status_code == 200, spelling
    for wrong in ["COM1", sid[:8] + "_" + sid[9:], "+" + sid.replace("-", "")[1:], f"other:{sid}", sid[:-1]]:
        assert not pattern.search(wrong), wrong
        _refused(client.get(f"/sessions/{wrong}"), "")
    query = document["paths"]["/events/latest_cursor"]["get"]["parameters"][0]
    assert query["name"] == "session_id" and query["schema"]["pattern"] == parameter["schema"]["pattern"]


@pytest.mark.parametrize("schema, body, refusal", [
    # Each body is invalid by the document now; before, the document allowed it and the server refused it.
    ("CreateSessionRequest", {"prompt": "x", "model": ""}, "model must be a non-empty string"),
    ("CreateSessionRequest", {"prompt": "x", "modle": "mock"}, "unknown field"),
    ("CreateSessionRequest", {"prompt": "\x1e\x1e"}, "prompt must not be empty"),
    ("SystemPromptRequest", {"key": "", "content": "c"}, "key must be a non-empty string"),
    ("InjectContextRequest", {"text": "t", "source": ""}, "source must not be empty"),
    ("InjectContextRequest", {}, "give `text`"),
    ("ForkRequest", {"message_index": 0, "replacement": {}}, "replacement.type"),
    ("ForkRequest", {"message_index": 0, "replacement": {"type": "message"}}, "replacement.message"),
    ("RewriteRequest", {"selection": {"type": "message_range"}}, "selection.start"),
    ("RewriteRequest", {"selection": {"type": "message_range", "start": 0, "end": 0},
                        "replacement": [{"role": "tool_results"}]}, "results"),
    ("InstructionActivationRequest", {"revision": {"namespace": "", "key": "k", "revision_id": "1",
                                                   "content_sha256": "x"}, "activation_id": "a", "body": "b",
                                      "expectation": {"kind": "absent"}}, "namespace must be a non-empty"),
    ("ConfigPut", {"agnet": {}}, "unknown key"),
    ("ConfigPatch", {"patch": {"agent": {"modle": "x"}}}, "unknown key"),
])
def test_the_document_refuses_what_the_server_refuses(client, document, sid, schema, body, refusal):
    assert not _component(document, schema).is_valid(body)
    where = {"CreateSessionRequest": ("POST", "/sessions"), "SystemPromptRequest": ("PUT", f"/sessions/{sid}/system_prompt"),
             "InjectContextRequest": ("POST", f"/sessions/{sid}/inject_context"),
             "ForkRequest": ("POST", f"/sessions/{sid}/fork"), "RewriteRequest": ("POST", f"/sessions/{sid}/revisions"),
             "InstructionActivationRequest": ("POST", f"/sessions/{sid}/instructions"),
             "ConfigPut": ("PUT", "/config"), "ConfigPatch": ("PATCH", "/config")}[schema]
    _refused(client.request(*where, json=body), refusal)


def test_a_row_may_leave_out_or_null_what_the_server_fills_in(client, document, sid):
    # created_at: null was accepted (a null reads as left out) while the document called it invalid.
    row = {"role": "user", "content": "replaced", "created_at": None, "run_id": None}
    assert _component(document, "RowInput").is_valid(row)
    fork = client.post(f"/sessions/{sid}/fork", json={"message_index": 0, "replacement": {"type": "message",
                                                                                         "message": row}})
    assert fork.status_code == 201, fork.text
    assert not _component(document, "RowInput").is_valid({**row, "content": None})
    _refused(client.post(f"/sessions/{sid}/fork", json={"message_index": 0, "replacement": {
        "type": "message", "message": {**row, "content": None}}}), "content")


def test_the_document_links_a_created_session_to_its_routes(document):
    links = document["paths"]["/sessions"]["post"]["responses"]["200"]["links"]
    assert links["ForkSession"] == {"operationId": "forkSession",
                                    "parameters": {"path.session_id": "$response.body#/session_id"}}
    assert links["ListEventsSince"]["parameters"] == {"query.session_id": "$response.body#/session_id"}
    rewrite = document["paths"]["/sessions/{session_id}/revisions"]["post"]["responses"]["200"]["links"]
    assert rewrite["ReadRevision"]["parameters"] == {"path.session_id": "$request.path.session_id",
                                                     "path.revision": "$response.body#/revision"}


def test_a_gemini_model_id_with_a_control_character_is_a_provider_answer_not_a_500(tmp_path):
    # model "\x00" went raw into Gemini's URL path: httpx refused the URL and the turn was a 500.
    from fake_vendor import fake_vendor_process, vendor_env

    with fake_vendor_process("fuzzed") as url, \
            RestServer("--realm", REALM, "--state-root", str(tmp_path), env=vendor_env(url)) as running:
        answer = httpx2.post(f"{running.url}/sessions", timeout=60,
                             json={"prompt": "hi", "provider": "gemini", "model": "x\x00/../y"})
        assert answer.status_code in (200, 502), answer.text
        assert answer.json().get("code") != "INTERNAL_ERROR"
