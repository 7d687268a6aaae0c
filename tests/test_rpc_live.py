"""``rkat-rpc``'s live-session methods at the wire: notifications, stream framing, cursors, bad params."""

from __future__ import annotations

import pytest

from rpc_process import RpcProcess

SLOW = {"reply_words": 400, "token_delay_ms": 20}


@pytest.fixture(scope="module")
def rpc(tmp_path_factory):
    root = tmp_path_factory.mktemp("rpc-live")
    server = RpcProcess("--realm", "live", "--realm-backend", "sqlite", state_root=root)
    yield server
    server.stop()
    server.assert_stdout_was_json_only()


def _session(rpc) -> str:
    return rpc.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]


def test_initialized_notification_is_accepted_silently(rpc):
    rpc.send({"jsonrpc": "2.0", "method": "initialized"})
    rpc.send({"jsonrpc": "2.0", "method": "initialized", "params": {}})
    before, response = rpc.call("runtime/health", {})
    assert before == [] and response["result"]["status"] == "ok"


def test_initialize_lists_the_live_methods(rpc):
    methods = set(rpc.result("initialize", {})["methods"])
    assert {"session/stream_open", "session/stream_close", "events/list_since", "events/latest_cursor",
            "events/snapshot", "turn/stop_run", "session/inject_context", "session/input_status",
            "session/external_event", "realm/list", "realm/get", "runtime/host_info", "runtime/health",
            "runtime/capabilities"} <= methods


def test_cancel_notification_interrupts_a_turn_and_keeps_the_partial_answer(rpc):
    session_id = _session(rpc)
    request_id = rpc.request("turn/start", {"session_id": session_id, "prompt": "long", "provider_params": SLOW})
    deltas = 0
    while deltas < 3:
        message = rpc.read()
        if message.get("method") == "session/event" and message["params"]["event"]["payload"]["type"] == "text_delta":
            deltas += 1
    rpc.send({"jsonrpc": "2.0", "method": "cancel", "params": {"id": request_id}})
    _, response = rpc.until_response(request_id)
    assert response["error"]["code"] == -32005, response
    rows = rpc.result("session/history", {"session_id": session_id})["messages"]
    assert rows[-1]["stop_reason"] == "cancelled" and rows[-1]["blocks"][0]["data"]["text"].startswith("lorem")


def test_cancel_notification_interrupts_a_session_create(rpc):
    known = {s["session_id"] for s in rpc.result("session/list", {})["sessions"]}
    request_id = rpc.request("session/create", {"prompt": "long", "provider_params": SLOW, "session_events": False})
    session_id = None
    while session_id is None:  # the session exists (and its turn runs) once it is listed as active
        active = [s for s in rpc.result("session/list", {})["sessions"]
                  if s["is_active"] and s["session_id"] not in known]
        session_id = active[0]["session_id"] if active else None
    rpc.send({"jsonrpc": "2.0", "method": "cancel", "params": {"id": request_id}})
    _, response = rpc.until_response(request_id)
    assert response["error"]["code"] == -32005, response
    rows = rpc.result("session/history", {"session_id": session_id})["messages"]
    assert rows, (rpc.result("session/read", {"session_id": session_id}), response)
    assert rows[0]["content"] == "long" and rows[-1]["stop_reason"] == "cancelled"


def test_cancel_of_an_unknown_request_is_ignored(rpc):
    rpc.send({"jsonrpc": "2.0", "method": "cancel", "params": {"id": 999999}})
    rpc.send({"jsonrpc": "2.0", "method": "cancel", "params": "junk"})
    assert rpc.result("runtime/capabilities", {})["features"]["event_replay"] is True


def test_stream_open_delivers_numbered_events_and_ends_on_close(rpc):
    session_id = _session(rpc)
    opened = rpc.result("session/stream_open", {"session_id": session_id})
    stream_id = opened["stream_id"]
    assert opened == {"stream_id": stream_id, "session_id": session_id, "opened": True}
    before, done = rpc.call("turn/start", {"session_id": session_id, "prompt": "a b c", "session_events": False})
    assert "result" in done
    streamed = [m["params"] for m in before if m.get("method") == "session/stream_event"]
    while not streamed or streamed[-1]["event"]["payload"]["type"] != "run_completed":
        message = rpc.read()
        assert message.get("method") == "session/stream_event", message
        streamed.append(message["params"])
    assert [p["sequence"] for p in streamed] == list(range(1, len(streamed) + 1))
    assert {p["stream_id"] for p in streamed} == {stream_id}
    seqs = [p["event"]["seq"] for p in streamed]
    assert seqs == sorted(seqs) and streamed[0]["event"]["payload"]["type"] == "run_started"
    before, closed = rpc.call("session/stream_close", {"stream_id": stream_id})
    assert closed["result"] == {"stream_id": stream_id, "closed": True, "already_closed": False}
    ends = [m["params"] for m in before if m.get("method") == "session/stream_end"]
    assert ends == [{"stream_id": stream_id, "session_id": session_id, "reason": "closed"}]
    again = rpc.result("session/stream_close", {"stream_id": stream_id})
    assert again == {"stream_id": stream_id, "closed": False, "already_closed": True}
    # The log holds exactly what the stream carried.
    logged = rpc.result("events/list_since", {"scope": {"type": "session", "session_id": session_id},
                                              "cursor": {"sequence": seqs[0] - 1}})
    assert [e["event_id"] for e in logged["events"]] == [p["event"]["event_id"] for p in streamed]


def test_stream_ends_when_the_session_is_archived(rpc):
    session_id = _session(rpc)
    stream_id = rpc.result("session/stream_open", {"session_id": session_id})["stream_id"]
    before, _ = rpc.call("session/archive", {"session_id": session_id})
    ends = [m for m in before if m.get("method") == "session/stream_end"]
    if not ends:
        ends = [rpc.read()]
    assert ends[0]["params"] == {"stream_id": stream_id, "session_id": session_id, "reason": "session_ended"}


@pytest.mark.parametrize("method, params, fragment", [
    ("session/stream_open", {}, "session_id"),
    ("events/list_since", {"scope": "x"}, "scope"),
    ("events/list_since", {"scope": {"type": "session", "session_id": "s"}, "cursor": {"sequence": -1}},
     "cursor.sequence"),
    ("events/list_since", {"scope": {"type": "session", "session_id": "s"}, "limit": 0}, "limit"),
    ("turn/stop_run", {"session_id": "s"}, "run_id"),
    ("session/inject_context", {"session_id": "s", "content": "text"}, "content"),
    ("session/input_status", {"session_id": "s", "selector": {"by": "other", "value": "x"}}, "selector"),
    ("session/external_event", {"session_id": "s", "event_type": "e", "kind": "peer"}, "kind"),
    ("session/external_event", {"session_id": "s", "event_type": "e"}, "payload"),
    ("realm/get", {}, "realm_id"),
])
def test_bad_params_are_named(rpc, method, params, fragment):
    error = rpc.error(method, params)
    assert error["code"] == -32602 and fragment in error["message"], error


def test_unknown_sessions_are_not_found(rpc):
    ghost = "01936f8a-7b2c-7000-8000-000000000099"
    scope = {"type": "session", "session_id": ghost}
    for method, params in [("events/list_since", {"scope": scope}), ("events/latest_cursor", {"scope": scope}),
                           ("turn/stop_run", {"session_id": ghost, "run_id": "r", "reason": ""}),
                           ("session/inject_context", {"session_id": ghost, "content": {"type": "text", "text": "x"}}),
                           ("session/input_status", {"session_id": ghost,
                                                     "selector": {"by": "input_id", "value": "x"}}),
                           ("session/stream_open", {"session_id": "../etc"})]:
        assert rpc.error(method, params)["code"] == -32001, method


def test_an_external_event_waits_for_another_processs_turn_then_runs(tmp_path):
    import time

    args = ("--realm", "two", "--realm-backend", "sqlite")
    a, b = RpcProcess(*args, state_root=tmp_path), RpcProcess(*args, state_root=tmp_path)
    try:
        session_id = a.result("session/create", {"prompt": "hi", "session_events": False})["session_id"]
        running = a.request("turn/start", {"session_id": session_id, "prompt": "long", "session_events": False,
                                           "provider_params": {"reply_words": 60, "token_delay_ms": 10}})
        time.sleep(0.2)
        queued = b.result("session/external_event", {"session_id": session_id, "kind": "generic_json",
                                                     "event_type": "ping", "payload": {"n": 1},
                                                     "idempotency_key": "x"})
        assert queued["outcome_type"] == "accepted" and queued["state"]["current_state"] == "queued"
        _, done = a.until_response(running)
        assert "result" in done, done
        selector = {"session_id": session_id, "selector": {"by": "idempotency_key", "value": "x"}}
        deadline = time.monotonic() + 20
        while (state := b.result("session/input_status", selector)["state"])["current_state"] != "consumed":
            assert time.monotonic() < deadline, state
            time.sleep(0.05)
        rows = a.result("session/history", {"session_id": session_id})["messages"]
        assert rows[-2]["role"] == "user" and "[external event: ping]" in rows[-2]["content"]
    finally:
        a.stop()
        b.stop()
