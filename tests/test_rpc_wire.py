"""``rkat-rpc`` at the wire: raw JSON lines into a real child process, strict checks on what comes out."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest

from rpc_process import RKAT_RPC, RpcProcess, child_env

SLOW = {"reply_words": 400, "token_delay_ms": 20}  # a turn that runs until interrupted


@pytest.fixture(scope="module")
def rpc(tmp_path_factory):
    """One server (memory realm) shared by the module's tests."""
    root = tmp_path_factory.mktemp("rpc")
    server = RpcProcess("--realm", "wire", "--realm-backend", "memory", state_root=root)
    yield server
    server.stop()
    server.assert_stdout_was_json_only()


def _canonical_uuid(text: str) -> bool:
    return isinstance(text, str) and str(uuid.UUID(text)) == text


def test_initialize_and_capabilities_have_what_the_published_sdk_checks(rpc):
    init = rpc.result("initialize", {})
    assert init["contract_version"] == "0.9.6"
    assert {"session/create", "turn/start", "turn/interrupt", "models/catalog"} <= set(init["methods"])
    caps = rpc.result("capabilities/get", {})["capabilities"]
    assert {c["id"] for c in caps} >= {"sessions", "streaming"}
    for entry in caps:
        assert entry["id"] and entry["description"], entry
        status = entry["status"]
        assert status == "Available" or (isinstance(status, dict) and next(iter(status))), entry


def test_bad_lines_get_clear_errors_and_the_server_keeps_serving(rpc):
    rpc.send_raw(b"this is not json\n")
    parse = rpc.read()
    assert parse["id"] is None and parse["error"]["code"] == -32700
    rpc.send_raw(b"\xff\xfe{}\n")  # not UTF-8
    assert rpc.read()["error"]["code"] == -32700
    rpc.send_raw(b'{"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"x": "\xff"}}\n')
    bad_string = rpc.read()
    assert bad_string["error"]["code"] == -32700 and "not UTF-8" in bad_string["error"]["message"]
    rpc.send_raw(b"[" * 100_000 + b"]" * 100_000 + b"\n")  # deeper than any decoder recursion limit
    nested = rpc.read()
    assert nested["id"] is None and nested["error"]["code"] == -32700 and "nested too deeply" in nested["error"]["message"]
    rpc.send_raw(b"   \n")  # blank lines carry nothing and get nothing
    rpc.send_raw(b"[1, 2]\n")
    batch = rpc.read()
    assert batch["id"] is None and batch["error"]["code"] == -32600 and "batch" in batch["error"]["message"]
    rpc.send_raw(b'{"jsonrpc": "2.0", "id": 5}\n')
    no_method = rpc.read()
    assert no_method["id"] == 5 and no_method["error"]["code"] == -32600 and "method" in no_method["error"]["message"]
    rpc.send_raw(b'{"id": 6, "method": "initialize"}\n')
    no_version = rpc.read()
    assert no_version["id"] == 6 and "jsonrpc" in no_version["error"]["message"]
    rpc.send_raw(b'{"jsonrpc": "2.0", "id": {"x": 1}, "method": "initialize"}\n')
    assert rpc.read()["error"]["code"] == -32600
    unknown = rpc.error("sessions/explode", {})
    assert unknown["code"] == -32601 and "sessions/explode" in unknown["message"]
    assert unknown["data"]["error_code"] == "METHOD_NOT_FOUND"
    # string ids come back as the same string, and the server still answers
    _, response = rpc.until_response(rpc.request("initialize", {}, request_id="abc"))
    assert response["id"] == "abc" and response["result"]["contract_version"] == "0.9.6"


@pytest.mark.parametrize("method, params, field", [
    ("session/create", {}, "prompt"),
    ("session/create", {"prompt": ""}, "prompt"),
    ("session/create", {"prompt": "hi", "max_tokens": "many"}, "max_tokens"),
    ("session/create", {"prompt": "hi", "labels": {"a": 1}}, "labels"),
    ("session/create", {"prompt": "hi", "model": 42}, "model"),
    ("session/create", {"prompt": "hi", "session_events": "no"}, "session_events"),
    ("session/create", [1, 2], "params"),
    ("turn/start", {"prompt": "hi"}, "session_id"),
    ("turn/start", {"session_id": 7, "prompt": "hi"}, "session_id"),
    ("session/list", {"limit": -1}, "limit"),
    ("session/list", {"offset": "x"}, "offset"),
    ("session/history", {}, "session_id"),
    ("tools/register", {}, "tools"),
    ("tools/register", {"tools": [{"description": "no name"}]}, "tools[0].name"),
    ("tools/register", {"tools": [{"name": "t", "input_schema": "x"}]}, "tools[0].input_schema"),
    ("config/set", {"config": {}, "expected_generation": "one"}, "expected_generation"),
    ("config/patch", {"patch": [1]}, "patch"),
])
def test_invalid_params_are_refused_naming_the_field(rpc, method, params, field):
    error = rpc.error(method, params)
    assert error["code"] == -32602, error
    assert field in error["message"], error
    assert error["data"]["error_code"] == "INVALID_PARAMS"


def test_streamed_turn_writes_every_event_before_its_response(rpc):
    before, response = rpc.call("session/create", {"prompt": "tell me a story"})
    result = response["result"]
    session_id = result["session_id"]
    assert _canonical_uuid(session_id) and result["text"] == "Mock reply to: tell me a story"
    assert all(m["method"] == "session/event" and m["params"]["session_id"] == session_id for m in before)
    envelopes = [m["params"]["event"] for m in before]
    types = [e["payload"]["type"] for e in envelopes]
    assert types[:2] == ["run_started", "turn_started"] and types[-3:] == ["text_complete", "turn_completed",
                                                                          "run_completed"]
    assert "".join(e["payload"]["delta"] for e in envelopes if e["payload"]["type"] == "text_delta") == result["text"]
    seqs = [e["seq"] for e in envelopes]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    for envelope in envelopes:
        assert _canonical_uuid(envelope["event_id"])
        assert envelope["source"] == {"type": "session", "session_id": session_id}
        assert isinstance(envelope["timestamp_ms"], int)
    # session_events: false turns the notifications off; the response is the next line
    quiet, response = rpc.call("turn/start", {"session_id": session_id, "prompt": "again", "session_events": False})
    assert quiet == [] and response["result"]["text"] == "Mock reply to: again"
    assert response["result"]["turns"] == 1 and response["result"]["usage"]["input_tokens"] > 0


def test_errors_carry_the_shared_table_codes(rpc):
    missing = rpc.error("session/read", {"session_id": str(uuid.uuid4())})
    assert missing["code"] == -32001 and missing["data"]["error_code"] == "SESSION_NOT_FOUND"
    not_a_uuid = rpc.error("turn/start", {"session_id": "../etc/passwd", "prompt": "x"})
    assert not_a_uuid["code"] == -32001
    generation = rpc.result("config/get", {})["generation"]
    rpc.result("config/patch", {"patch": {"agent": {"max_turns": 7}}, "expected_generation": generation})
    conflict = rpc.error("config/set", {"config": {}, "expected_generation": generation})
    assert conflict["code"] == -32602 and conflict["message"].startswith("Generation conflict")
    assert conflict["data"]["error_code"] == "CONFIG_GENERATION_CONFLICT"
    bare = rpc.result("config/set", {"agent": {"max_turns": 9}})  # RPC also takes a bare document
    assert bare["config"]["agent"]["max_turns"] == 9 and bare["generation"] == generation + 2


def test_capabilities_name_exactly_the_session_and_stream_methods_the_host_answers(rpc):
    """The sessions/streaming capabilities name every session, turn and event-log method (the
    history API too), and each method they name is answered, not METHOD_NOT_FOUND."""
    caps = {c["id"]: c for c in rpc.result("capabilities/get", {})["capabilities"]}
    named = set()
    for cap_id in ("sessions", "streaming"):
        assert caps[cap_id]["status"] == "Available"
        named |= set(caps[cap_id]["description"].split(": ", 1)[1].split(", "))  # "what: m1, m2, ..."
    listed = {m for m in rpc.result("initialize", {})["methods"] if m.split("/")[0] in ("session", "turn", "events")}
    assert named == listed, (sorted(listed - named), sorted(named - listed))
    for method in sorted(named):
        error = rpc.error(method, {"session_id": "not-a-session"}) if method != "session/list" else None
        assert error is None or error["code"] != -32601, (method, error)


@pytest.mark.parametrize("params", [None, {}, {"expected_generation": 0}])
def test_config_set_without_a_document_is_refused_and_keeps_the_config(rpc, params):
    before = rpc.result("config/patch", {"patch": {"agent": {"max_turns": 11}}})
    if params:
        params = {"expected_generation": before["generation"]}
    error = rpc.error("config/set", params)  # a missing or null params object is not a reset
    assert error["code"] == -32602 and error["data"]["error_code"] == "INVALID_PARAMS"
    assert "config" in error["message"], error
    after = rpc.result("config/get", {})
    assert after["generation"] == before["generation"] and after["config"]["agent"]["max_turns"] == 11
    null_document = rpc.error("config/set", {"config": None})
    assert null_document["data"]["error_code"] == "INVALID_PARAMS" and "config" in null_document["message"]
    assert rpc.result("config/get", {})["generation"] == before["generation"]


def test_busy_interrupt_and_the_cancelled_turn_keeps_its_partial_answer(rpc):
    session_id = rpc.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]
    long_turn = rpc.request("turn/start", {"session_id": session_id, "prompt": "go on", "provider_params": SLOW})
    first = rpc.read()  # the turn is running once its events flow
    assert first["method"] == "session/event"
    while first["params"]["event"]["payload"]["type"] != "text_delta":
        first = rpc.read()
    busy_id = rpc.request("turn/start", {"session_id": session_id, "prompt": "me too"})
    seen: dict = {}
    while busy_id not in seen:  # requests run concurrently: an interrupt sent now could overtake it
        message = rpc.read()
        if "id" in message:
            seen[message["id"]] = message
    interrupt_id = rpc.request("turn/interrupt", {"session_id": session_id})
    events_after_response = []
    while len(seen) < 3:
        message = rpc.read()
        if "id" in message:
            seen[message["id"]] = message
        elif long_turn in seen:
            events_after_response.append(message)
    busy = seen[busy_id]["error"]
    assert busy["code"] == -32002 and busy["data"]["details"]["session_id"] == session_id
    assert busy["data"]["details"]["running_run_id"]
    assert seen[interrupt_id]["result"] == {"session_id": session_id, "interrupted": True, "result": "interrupted"}
    cancelled = seen[long_turn]["error"]
    assert cancelled["code"] == -32005 and cancelled["data"]["error_code"] == "REQUEST_CANCELLED"
    assert events_after_response == []  # run_failed came before the error response
    rows = rpc.result("session/history", {"session_id": session_id})["messages"]
    assert rows[-2] == {**rows[-2], "role": "user", "content": "go on"}
    assert rows[-1]["role"] == "block_assistant" and rows[-1]["stop_reason"] == "cancelled"
    assert rows[-1]["blocks"][0]["data"]["text"].startswith("lorem")  # what the user saw is kept
    idle = rpc.result("turn/interrupt", {"session_id": session_id})
    assert idle["interrupted"] is True


def test_archive_hides_the_session_but_keeps_its_history_readable(rpc):
    session_id = rpc.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]
    assert rpc.result("session/archive", {"session_id": session_id}) == {"archived": True}
    for method, params in [("session/read", {}), ("turn/start", {"prompt": "x"}), ("turn/interrupt", {}),
                           ("session/archive", {})]:
        assert rpc.error(method, {"session_id": session_id, **params})["code"] == -32001, method
    listed = rpc.result("session/list", {})["sessions"]
    assert session_id not in {s["session_id"] for s in listed}
    # Upstream keeps an archived session's history readable (events-and-turns.md 4.7).
    history = rpc.result("session/history", {"session_id": session_id, "offset": 0})
    assert [m["role"] for m in history["messages"]] == ["user", "block_assistant"]


def test_callback_tool_round_trip_while_other_requests_are_served(rpc):
    registered = rpc.result("tools/register", {"tools": [{"name": "lookup", "description": "Look things up",
                                                         "input_schema": {"type": "object"}}]})
    assert registered == {"registered": 1}
    session_id = rpc.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]
    turn = rpc.request("turn/start", {"session_id": session_id, "prompt": 'tool:lookup{"q": "otters"}',
                                      "session_events": False})
    call = rpc.read()
    assert call["method"] == "tool/execute" and isinstance(call["id"], str) and call["id"].startswith("srv-")
    params = call["params"]
    assert params["name"] == "lookup" and params["arguments"] == {"q": "otters"}
    key = params["dedupe_key"]
    assert key["call_id"] == params["tool_use_id"] and key["round"] == 0 and len(key["call_digest"]) == 64
    # the turn waits for us; other requests are still answered meanwhile
    listed = rpc.result("session/list", {})
    assert session_id in {s["session_id"] for s in listed["sessions"]}
    rpc.send({"jsonrpc": "2.0", "id": call["id"], "result": {"content": "otters hold hands", "is_error": False}})
    _, response = rpc.until_response(turn)
    assert response["result"]["text"] == "Tool lookup returned: otters hold hands"
    assert response["result"]["tool_calls"] == 1
    # an error answer becomes an error result the model sees; the turn still completes
    turn = rpc.request("turn/start", {"session_id": session_id, "prompt": "tool:lookup", "session_events": False})
    call = rpc.read()
    rpc.send({"jsonrpc": "2.0", "id": call["id"], "error": {"code": -32000, "message": "lookup is down"}})
    _, response = rpc.until_response(turn)
    assert "lookup is down" in response["result"]["text"]
    rows = rpc.result("session/history", {"session_id": session_id, "offset": 0})["messages"]
    tool_rows = [r for r in rows if r["role"] == "tool_results"]
    assert tool_rows[0]["results"][0]["content"] == "otters hold hands"
    assert tool_rows[1]["results"][0]["is_error"] is True


def test_models_catalog_and_seed_requests_without_params(rpc):
    catalog = rpc.result("models/catalog")
    assert catalog["contract_version"] == {"major": 0, "minor": 9, "patch": 6}
    assert all({"provider", "default_model_id", "models"} <= set(p) for p in catalog["providers"])
    assert "sessions" in rpc.result("session/list")  # the seed sends session/list with no params
    assert "generation" in rpc.result("config/get")


def test_oversized_lines_are_refused_without_a_crash(tmp_path):
    server = RpcProcess("--realm-backend", "memory", "--max-line-bytes", "4096", state_root=tmp_path)
    try:
        huge = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "session/create",
                           "params": {"prompt": "x" * 200_000}}).encode() + b"\n"
        server.send_raw(huge[:100_000])  # arrives in pieces, like a real pipe
        server.send_raw(huge[100_000:])
        refused = server.read()
        assert refused["id"] is None and refused["error"]["code"] == -32600
        assert "4096" in refused["error"]["message"] and str(len(huge) - 1) in refused["error"]["message"]
        assert server.result("session/create", {"prompt": "small", "session_events": False})["text"]
    finally:
        server.stop()
    server.assert_stdout_was_json_only()


def test_stdin_eof_exits_promptly_and_sessions_survive_a_restart(tmp_path):
    server = RpcProcess("--realm", "keep", state_root=tmp_path)
    session_id = server.result("session/create", {"prompt": "remember me", "session_events": False})["session_id"]
    server.close_stdin()
    assert server.wait() == 0
    server.stop()
    again = RpcProcess("--realm", "keep", state_root=tmp_path)
    try:
        view = again.result("session/read", {"session_id": session_id})
        assert view["last_assistant_text"] == "Mock reply to: remember me" and view["message_count"] == 2
    finally:
        again.stop()


def test_stdin_eof_mid_turn_interrupts_it_after_the_grace_period(tmp_path):
    server = RpcProcess("--realm", "eof", "--eof-grace", "0.2", state_root=tmp_path)
    session_id = server.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]
    server.request("turn/start", {"session_id": session_id, "prompt": "long one", "provider_params": SLOW})
    while server.read()["params"]["event"]["payload"]["type"] != "text_delta":
        pass
    server.close_stdin()  # the 400-word turn would take 8 s; the grace period ends it long before
    assert server.wait() == 0
    server.stop()
    again = RpcProcess("--realm", "eof", state_root=tmp_path)
    try:
        rows = again.result("session/history", {"session_id": session_id})["messages"]
        assert rows[2]["content"] == "long one" and rows[3]["stop_reason"] == "cancelled"
    finally:
        again.stop()


def test_sigterm_mid_turn_commits_the_turn_as_interrupted(tmp_path):
    server = RpcProcess("--realm", "term", state_root=tmp_path)
    session_id = server.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]
    server.request("turn/start", {"session_id": session_id, "prompt": "long one", "provider_params": SLOW})
    while server.read()["params"]["event"]["payload"]["type"] != "text_delta":
        pass
    server.terminate()
    assert server.wait() == 0
    server.stop()
    server.assert_stdout_was_json_only()
    again = RpcProcess("--realm", "term", state_root=tmp_path)
    try:
        rows = again.result("session/history", {"session_id": session_id})["messages"]
        assert [r["role"] for r in rows] == ["user", "block_assistant", "user", "block_assistant"]
        assert rows[2]["content"] == "long one" and rows[3]["stop_reason"] == "cancelled"
        assert again.result("session/read", {"session_id": session_id})["is_active"] is False
    finally:
        again.stop()


def test_logs_go_to_stderr_only(tmp_path):
    server = RpcProcess("--realm-backend", "memory", "--log-level", "debug", state_root=tmp_path)
    try:
        server.result("session/create", {"prompt": "hi", "external_tools": [], "enable_shell": True})
        server.send({"jsonrpc": "2.0", "method": "initialized"})  # a notification: no answer
        assert server.result("initialize", {})["contract_version"] == "0.9.6"
    finally:
        server.stop()
    server.assert_stdout_was_json_only()
    assert b"fresh realm" in server.stderr and b"enable_shell" in server.stderr


@pytest.mark.parametrize("args, message", [
    (["--realm", "../escape"], "realm"),
    (["--realm", "a", "--isolated"], "--isolated"),
    (["--realm-backend", "floppy"], "floppy"),
])
def test_bad_command_lines_exit_2_with_a_message(tmp_path, args, message):
    done = subprocess.run([RKAT_RPC, *args], capture_output=True, env=child_env(tmp_path), timeout=30, stdin=subprocess.DEVNULL)
    assert done.returncode == 2 and done.stdout == b""
    assert message in done.stderr.decode()


def test_help_shows_examples(tmp_path):
    done = subprocess.run([RKAT_RPC, "--help"], capture_output=True, text=True, env=child_env(tmp_path), timeout=30)
    assert done.returncode == 0 and "--realm" in done.stdout and "examples:" in done.stdout
