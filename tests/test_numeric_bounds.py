"""Every number a request can set has an upper bound, on every surface (issue 20, item 5).

``max_tokens`` is a u32 on the wire; token budgets and event cursors are kept by the
stores as signed 64-bit integers; config timeouts, delays and the mock's pacing have
bounds a person would still call a wait. Past a bound the answer is INVALID_PARAMS
naming the field, nothing is created or written, and the process goes on serving.
Before, ``max_tokens`` of 10**20 was accepted everywhere, an event cursor past 2**63
was a 500 from inside SQLite, and ``mock.token_delay_ms`` of 10**12 in the config made
every later mock turn hang.
"""

from __future__ import annotations

import json

import pytest
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from meerkat.validation import MAX_OUTPUT_TOKENS, MAX_STORED_INT

from cli_process import Cli
from rpc_process import RpcProcess
from test_mcp import RKAT_MCP, server_env
from test_rest_server import RestServer

TOO_MANY_TOKENS = [MAX_OUTPUT_TOKENS + 1, 10**20]
#: Config writes past a bound, and the key each must name.
CONFIG_PAST_BOUNDS = [
    ({"agent": {"max_tokens_per_turn": MAX_OUTPUT_TOKENS + 1}}, "agent.max_tokens_per_turn"),
    ({"limits": {"budget": MAX_STORED_INT + 1}}, "limits.budget"),
    ({"retry": {"first_byte_timeout_ms": 10**12}}, "retry.first_byte_timeout_ms"),
    ({"retry": {"multiplier": 1e300}}, "retry.multiplier"),
    ({"retry": {"max_retries": 10**9}}, "retry.max_retries"),
    ({"tools": {"default_timeout_secs": 1e12}}, "tools.default_timeout_secs"),
    ({"mock": {"token_delay_ms": 1e12}}, "mock.token_delay_ms"),
    ({"agent": {"temperature": 1e300}}, "agent.temperature"),
    ({"limits": {"max_turn_duration": "99999999999999999999999h"}}, "limits.max_turn_duration"),
    ({"limits": {"max_duration": "1e400"}}, "limits.max_duration"),  # a bare number of seconds: inf
    ({"budget": {"max_duration": "inf"}}, "budget.max_duration"),
]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RestServer("--realm", "bounds", "--state-root", str(tmp_path_factory.mktemp("bounds"))) as running:
        yield running


@pytest.mark.parametrize("body", [
    *({"max_tokens": n} for n in TOO_MANY_TOKENS),
    {"budget_max_tokens": MAX_STORED_INT + 1},
], ids=["max_tokens_u32_plus_1", "max_tokens_1e20", "budget_past_i64"])
async def test_rest_refuses_numbers_past_their_bound(server, body):
    (field,) = body
    async with server.client() as http:
        reply = await http.post("/sessions", json={"prompt": "x", "model": "mock", **body})
        assert reply.status_code == 400, reply.text
        assert reply.json()["code"] == "INVALID_PARAMS" and field in reply.json()["error"], reply.json()
        assert (await http.get("/sessions")).json()["sessions"] == []  # nothing was created
        session = (await http.post("/sessions", json={"prompt": "x", "model": "mock"})).json()["session_id"]
        turn = await http.post(f"/sessions/{session}/messages", json={"prompt": "y", "max_tokens": 10**20})
        assert turn.status_code == 400 and "max_tokens" in turn.json()["error"], turn.text
        await http.delete(f"/sessions/{session}")


async def test_rest_the_largest_max_tokens_still_runs(server):
    async with server.client() as http:
        reply = await http.post("/sessions", json={"prompt": "x", "model": "mock", "max_tokens": MAX_OUTPUT_TOKENS,
                                                   "budget_max_tokens": MAX_STORED_INT})
        assert reply.status_code == 200, reply.text
        await http.delete(f"/sessions/{reply.json()['session_id']}")


async def test_rest_event_cursor_past_the_store_range_is_invalid_params_not_500(server):
    async with server.client() as http:
        session = (await http.post("/sessions", json={"prompt": "x", "model": "mock"})).json()["session_id"]
        page = await http.get("/events", params={"session_id": session, "after": MAX_STORED_INT + 1})
        assert page.status_code == 400, page.text
        assert page.json()["code"] == "INVALID_PARAMS" and "after" in page.json()["error"]
        page = await http.get("/events", params={"session_id": session, "after": MAX_STORED_INT})
        assert page.status_code == 200, page.text
        await http.delete(f"/sessions/{session}")


@pytest.mark.parametrize("patch, key", CONFIG_PAST_BOUNDS, ids=[key for _, key in CONFIG_PAST_BOUNDS])
async def test_rest_config_writes_past_a_bound_are_refused(server, patch, key):
    async with server.client() as http:
        before = (await http.get("/config")).json()
        reply = await http.patch("/config", json={"patch": patch})
        assert reply.status_code == 400, reply.text
        assert reply.json()["code"] == "INVALID_PARAMS" and key.split(".")[1] in reply.json()["error"], reply.json()
        assert (await http.get("/config")).json()["generation"] == before["generation"]  # nothing written


async def test_openapi_documents_the_bounds(server):
    async with server.client() as http:
        document = (await http.get("/openapi.json")).json()
    options = document["components"]["schemas"]["CreateSessionRequest"]["properties"]
    assert options["max_tokens"]["maximum"] == MAX_OUTPUT_TOKENS
    assert options["budget_max_tokens"]["maximum"] == MAX_STORED_INT
    assert document["components"]["schemas"]["TurnRequest"]["properties"]["max_tokens"]["maximum"] == MAX_OUTPUT_TOKENS


def test_rpc_refuses_numbers_past_their_bound(tmp_path):
    rpc = RpcProcess(state_root=tmp_path)
    try:
        rpc.result("initialize", {})
        for params in ({"max_tokens": 10**20}, {"max_tokens": MAX_OUTPUT_TOKENS + 1},
                       {"budget_max_tokens": MAX_STORED_INT + 1}):
            error = rpc.error("session/create", {"prompt": "x", "model": "mock", **params})
            assert error["code"] == -32602 and next(iter(params)) in error["message"], error
        assert rpc.result("session/list", {})["sessions"] == []
        session = rpc.result("session/create", {"prompt": "x", "model": "mock"})["session_id"]
        error = rpc.error("turn/start", {"session_id": session, "prompt": "y", "max_tokens": 10**20})
        assert error["code"] == -32602 and "max_tokens" in error["message"], error
        error = rpc.error("config/patch", {"patch": {"agent": {"max_tokens_per_turn": 10**20}}})
        assert error["code"] == -32602 and "max_tokens_per_turn" in error["message"], error
        error = rpc.error("config/patch", {"patch": {}, "expected_generation": MAX_STORED_INT + 1})
        assert error["code"] == -32602 and "expected_generation" in error["message"], error
        assert rpc.result("turn/start", {"session_id": session, "prompt": "z"})["session_id"] == session
    finally:
        rpc.stop()


async def test_mcp_refuses_numbers_past_their_bound(tmp_path):
    target = StdioServerParameters(command=RKAT_MCP, args=["--realm", "bounds", "--state-root", str(tmp_path)],
                                   env=server_env())
    async with Client(target) as client:
        for arguments in ({"max_tokens": 10**20}, {"max_tokens": MAX_OUTPUT_TOKENS + 1},
                          {"budget_max_tokens": MAX_STORED_INT + 1}):
            with pytest.raises(MCPError) as caught:
                await client.call_tool("meerkat_run", {"prompt": "x", "model": "mock", **arguments})
            assert caught.value.error.code == -32602 and next(iter(arguments)) in caught.value.error.message
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert tools["meerkat_run"].input_schema["properties"]["max_tokens"]["maximum"] == MAX_OUTPUT_TOKENS
        result = await client.call_tool("meerkat_config", {"action": "patch",
                                                           "patch": {"mock": {"token_delay_ms": 1e12}}})
        assert result.is_error and json.loads(result.content[0].text)["code"] == "INVALID_PARAMS"
        listed = await client.call_tool("meerkat_sessions", {})
        assert json.loads(listed.content[0].text)["sessions"] == []


def test_cli_refuses_max_tokens_past_u32(tmp_path):
    cli = Cli(tmp_path / "state", tmp_path)
    refused = cli("run", "--model", "mock", "--max-tokens", str(10**20), "hi", expect=2)
    assert "max_tokens" in refused.err and str(MAX_OUTPUT_TOKENS) in refused.err, refused.err
    cli("run", "--model", "mock", "--max-tokens", str(MAX_OUTPUT_TOKENS), "hi")
    refused = cli("config", "patch", "--json", json.dumps({"retry": {"connect_timeout_ms": 10**15}}), expect=2)
    assert "retry.connect_timeout_ms" in refused.err, refused.err


async def test_a_cursor_past_the_store_range_is_named_as_the_client_sent_it(server, tmp_path):
    # The range error named `after_seq`, a name none of these requests uses.
    async with server.client() as http:
        session = (await http.post("/sessions", json={"prompt": "x", "model": "mock"})).json()["session_id"]
        for path, params, headers, name in [
            ("/events", {"session_id": session, "after": MAX_STORED_INT + 1}, {}, "`after`"),
            (f"/sessions/{session}/events", {"after": MAX_STORED_INT + 1}, {}, "`after`"),
            (f"/sessions/{session}/events", {}, {"Last-Event-ID": str(MAX_STORED_INT + 1)}, "Last-Event-ID"),
        ]:
            reply = await http.get(path, params=params, headers=headers)
            assert reply.status_code == 400 and reply.json()["code"] == "INVALID_PARAMS", reply.text
            assert name in reply.json()["error"] and "after_seq" not in reply.json()["error"], reply.json()
        await http.delete(f"/sessions/{session}")
    rpc = RpcProcess(state_root=tmp_path)
    try:
        rpc.result("initialize", {})
        session = rpc.result("session/create", {"prompt": "x", "model": "mock"})["session_id"]
        scope = {"type": "session", "session_id": session}
        error = rpc.error("events/list_since", {"scope": scope, "cursor": {"scope": scope,
                                                                           "sequence": MAX_STORED_INT + 1}})
        assert error["code"] == -32602 and "cursor.sequence" in error["message"], error
        assert "after_seq" not in error["message"], error
        page = rpc.result("events/list_since", {"scope": scope, "cursor": {"scope": scope,
                                                                           "sequence": MAX_STORED_INT}})
        assert page["events"] == []
    finally:
        rpc.stop()


@pytest.mark.parametrize("model, param, value", [
    ("claude-sonnet-4-6", "max_output_tokens", MAX_OUTPUT_TOKENS + 1),
    ("claude-sonnet-4-6", "thinking_budget_tokens", 10**20),
    ("gemini-3-flash-preview", "top_k", MAX_OUTPUT_TOKENS + 1),
    ("gpt-5.5", "max_output_tokens", 10**20),
])
async def test_provider_params_of_hosted_models_have_upper_bounds_too(server, model, param, value):
    # Before, these were stored on the session and sent on to the vendor whatever their size.
    async with server.client() as http:
        reply = await http.post("/sessions", json={"prompt": "x", "model": model, "provider_params": {param: value}})
        assert reply.status_code == 400, reply.text
        assert reply.json()["code"] == "INVALID_PARAMS" and param in reply.json()["error"], reply.json()
        catalog = (await http.get("/models/catalog")).json()
    schemas = [entry["profile"]["params_schema"]["properties"] for provider in catalog["providers"]
               for entry in provider["models"] if entry["id"] == model]
    assert schemas and schemas[0][param]["maximum"] == MAX_OUTPUT_TOKENS, schemas


def test_rpc_answers_a_number_too_large_to_decode_to_its_request_id(tmp_path):
    # Valid JSON with a 5,000-digit integer or 1e400 was a parse error to id null: the client,
    # waiting on its own id, never got an answer.
    rpc = RpcProcess(state_root=tmp_path)
    try:
        rpc.result("initialize", {})
        big = "9" * 5000
        for request_id, params in ((7, f'{{"limit": {big}}}'), ("call-8", '{"limit": 1e400}')):
            rpc.send_raw(f'{{"jsonrpc": "2.0", "id": {json.dumps(request_id)}, "method": "session/list", '
                         f'"params": {params}}}\n'.encode())
            _, answer = rpc.until_response(request_id)
            assert answer["error"]["code"] == -32602 and "out of range" in answer["error"]["message"], answer
        assert rpc.result("session/list", {})["sessions"] == []  # still serving
    finally:
        rpc.stop()


async def test_rest_a_number_too_large_to_decode_is_invalid_params(server):
    # Valid JSON, a value out of range: INVALID_PARAMS as rkat-rpc answers it, not "malformed JSON body".
    async with server.client() as http:
        for number in ("9" * 5000, "1e400"):
            reply = await http.post("/sessions", content=f'{{"prompt": "x", "model": "mock", "max_tokens": {number}}}',
                                    headers={"Content-Type": "application/json"})
            assert reply.status_code == 400 and reply.json()["code"] == "INVALID_PARAMS", reply.text
            assert "malformed" not in reply.json()["error"], reply.text
