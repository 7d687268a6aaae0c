"""``rkat-rest`` routes through httpx2 against one real server process (sqlite realm).

Turns use the offline mock provider; ``provider_params`` slow it down
(``token_delay_ms``) or lengthen it (``reply_words``) where a test needs a turn
to be running while something else happens. Ordering is asserted, never time.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import httpx2
import pytest
import trio

from test_rest_server import RestServer, assert_documented, assert_matches

REALM = "rest-main"
SLOW = {"reply_words": 30, "token_delay_ms": 20}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-main")
    with RestServer("--realm", REALM, "--state-root", str(root), "--sse-keepalive", "0.2") as running:
        yield running


async def create(client: httpx2.AsyncClient, prompt: str = "hello", **fields: Any) -> dict[str, Any]:
    reply = await client.post("/sessions", json={"prompt": prompt, **fields})
    assert reply.status_code == 200, reply.text
    return reply.json()


async def test_create_continue_read_list_archive(server):
    document = server.openapi()

    async def call(method: str, path: str, **kwargs: Any) -> httpx2.Response:
        reply = await client.request(method, path, **kwargs)
        assert_documented(document, method, path, reply)
        return reply

    async with server.client() as client:
        created = (await call("POST", "/sessions", json={"prompt": "What is the capital of France?",
                                                          "labels": {"team": "alpha"}})).json()
        sid = created["session_id"]
        assert created["text"] == "Mock reply to: What is the capital of France?"
        assert created["session_ref"] == f"{REALM}:{sid}"
        assert created["turns"] == 1 and created["tool_calls"] == 0 and created["usage"]["total_tokens"] > 0

        turn = await call("POST", f"/sessions/{sid}/messages", json={"session_id": sid, "prompt": "And Spain?"})
        assert turn.status_code == 200 and turn.json()["text"] == "Mock reply to: And Spain?"
        by_ref = await call("POST", f"/sessions/{REALM}:{sid}/messages", json={"prompt": "tool:datetime"})
        assert by_ref.status_code == 200 and by_ref.json()["tool_calls"] == 1

        view = (await call("GET", f"/sessions/{sid}")).json()
        assert view["message_count"] == 8 and view["labels"] == {"team": "alpha"} and view["is_active"] is False
        assert datetime.fromisoformat(view["created_at"]).utcoffset().total_seconds() == 0

        listed = (await call("GET", "/sessions?label=team=alpha")).json()["sessions"]
        assert [s["session_id"] for s in listed] == [sid]
        assert isinstance(listed[0]["created_at"], int)
        assert (await client.get("/sessions", params={"label": "team=beta"})).json() == {"sessions": []}

        page = (await call("GET", f"/sessions/{sid}/history", params={"offset": 1, "limit": 2})).json()
        assert page["offset"] == 1 and page["has_more"] is True
        assert [m["role"] for m in page["messages"]] == ["block_assistant", "user"]
        whole = (await call("GET", f"/sessions/{sid}/history")).json()  # every role, tool rows included
        assert {m["role"] for m in whole["messages"]} == {"user", "block_assistant", "tool_results"}

        assert (await call("DELETE", f"/sessions/{sid}")).json() == {"session_id": sid, "archived": True}
        for method, path in (("GET", f"/sessions/{sid}"), ("DELETE", f"/sessions/{sid}"),
                             ("GET", f"/sessions/{sid}/events"), ("POST", f"/sessions/{sid}/interrupt")):
            gone = await call(method, path)
            assert gone.status_code == 404 and gone.json()["code"] == "SESSION_NOT_FOUND", (method, path)
        assert (await client.get(f"/sessions/{sid}/history")).json()["message_count"] == 8


async def test_deltas_stream_before_the_turn_answers(server):
    """SSE delivers the running turn's text deltas before its POST returns."""
    reply = "one two three four five six seven eight"
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        order: list[str] = []
        events: list[Any] = []

        async def turn() -> None:
            answer = await client.post(f"/sessions/{sid}/messages",
                                       json={"prompt": "count", "provider_params": {"reply": reply,
                                                                                   "token_delay_ms": 20}})
            assert answer.status_code == 200
            order.append("response")

        async with trio.open_nursery() as nursery:
            async with client.sse(f"/sessions/{sid}/events", params={"stop_after_run": "true"}) as source:
                async for event in source:
                    events.append(event)
                    if event.event == "session_loaded":
                        nursery.start_soon(turn)
                    elif event.event == "text_delta":
                        order.append("delta")
    assert "delta" in order and order.index("delta") < order.index("response")
    assert events[-1].event == "done" and events[-1].json() == {"reason": "run_ended"}
    deltas = [e.json()["payload"]["delta"] for e in events if e.event == "text_delta"]
    assert "".join(deltas) == reply
    for event in events[1:-1]:
        envelope = event.json()
        assert event.id == str(envelope["seq"]) and envelope["payload"]["type"] == event.event
    assert [e.event for e in events[1:3]] == ["run_started", "turn_started"]
    document = server.openapi()
    frames = document["paths"]["/sessions/{session_id}/events"]["get"]["responses"]["200"]["content"][
        "text/event-stream"]["x-sse-frames"]
    assert_matches(document, frames["session_loaded"], events[0].json())
    for event in events[1:-1]:
        assert_matches(document, frames["event"], event.json())
    assert_matches(document, frames["done"], events[-1].json())


async def _read_stream(client: httpx2.AsyncClient, path: str, *, stop_after: int | None = None,
                       runs: int | None = None, headers: dict[str, str] | None = None,
                       params: dict[str, str] | None = None, on_loaded: Any = None) -> list[dict[str, Any]]:
    """Envelopes from an event stream: until ``done``, ``stop_after`` text deltas or ``runs`` run ends."""
    seen: list[dict[str, Any]] = []
    deltas = ends = 0
    async with client.sse(path, headers=headers, params=params) as source:
        async for event in source:
            if event.event == "session_loaded":
                if on_loaded is not None:
                    on_loaded()
                continue
            if event.event == "done":
                break
            seen.append(event.json())
            deltas += event.event == "text_delta"
            ends += event.event in ("run_completed", "run_failed")
            if (stop_after is not None and deltas >= stop_after) or (runs is not None and ends >= runs):
                break
    return seen


async def test_resume_with_last_event_id_loses_and_repeats_nothing(server):
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        path = f"/sessions/{sid}/events"
        results: list[dict[str, Any]] = []

        async def turn() -> None:
            answer = await client.post(f"/sessions/{sid}/messages", json={"prompt": "go", "provider_params": SLOW})
            results.append(answer.json())

        async with trio.open_nursery() as nursery:
            first = await _read_stream(client, path, stop_after=5, on_loaded=lambda: nursery.start_soon(turn))
            # Disconnected mid-turn; reconnect from the last id the client saw (the header wins over ?after=).
            rest = await _read_stream(client, path, headers={"Last-Event-ID": str(first[-1]["seq"])},
                                      params={"stop_after_run": "1", "after": "0"})
        seqs = [e["seq"] for e in first + rest]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
        assert rest[-1]["payload"]["type"] == "run_completed"
        text = "".join(e["payload"]["delta"] for e in first + rest if e["payload"]["type"] == "text_delta")
        assert text == results[0]["text"] and len(text.split()) == SLOW["reply_words"]

        # ?after=0 replays everything the ring holds: the first turn too.
        replay = await _read_stream(client, path, params={"after": "0"}, runs=2)
        assert [e["seq"] for e in replay] == list(range(1, seqs[-1] + 1))
        assert sum(e["payload"]["type"] == "run_completed" for e in replay) == 2


async def test_two_concurrent_turns_one_wins_one_is_busy(server):
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        replies: list[httpx2.Response] = []

        async def turn(prompt: str) -> None:
            replies.append(await client.post(f"/sessions/{sid}/messages",
                                             json={"prompt": prompt, "provider_params": SLOW}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(turn, "first")
            nursery.start_soon(turn, "second")
        assert sorted(r.status_code for r in replies) == [200, 409]
        for reply in replies:
            assert_documented(server.openapi(), "POST", f"/sessions/{sid}/messages", reply)
        busy = next(r for r in replies if r.status_code == 409).json()
        assert busy["code"] == "SESSION_BUSY" and busy["details"]["session_id"] == sid
        history = (await client.get(f"/sessions/{sid}/history")).json()["messages"]
        assert busy["details"]["running_run_id"] == history[-1]["run_id"]
        assert history[-1]["stop_reason"] == "end_turn" and history[-2]["run_id"] == history[-1]["run_id"]


async def test_interrupt_ends_the_turn_and_keeps_what_was_seen(server):
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        outcome: list[httpx2.Response] = []

        async def long_turn() -> None:
            outcome.append(await client.post(f"/sessions/{sid}/messages", json={
                "prompt": "talk", "provider_params": {"reply_words": 1000, "token_delay_ms": 20}}))

        async with trio.open_nursery() as nursery:
            async with client.sse(f"/sessions/{sid}/events", params={"stop_after_run": "true"}) as source:
                kinds = []
                async for event in source:
                    kinds.append(event.event)
                    if event.event == "session_loaded":
                        nursery.start_soon(long_turn)
                    elif event.event == "text_delta" and kinds.count("text_delta") == 3:
                        stopped = await client.post(f"/sessions/{sid}/interrupt")
                        assert stopped.json() == {"session_id": sid, "interrupted": True, "result": "interrupted"}
                    elif event.event == "run_failed":
                        assert event.json()["payload"]["error_report"]["class"] == "cancelled"
        assert kinds[-2:] == ["run_failed", "done"]
        assert outcome[0].status_code == 499 and outcome[0].json()["code"] == "REQUEST_CANCELLED"
        assert_documented(server.openapi(), "POST", f"/sessions/{sid}/messages", outcome[0])
        last = (await client.get(f"/sessions/{sid}/history")).json()["messages"][-1]
        assert last["stop_reason"] == "cancelled" and last["blocks"][0]["data"]["text"]
        idle = await client.post(f"/sessions/{sid}/interrupt")
        assert idle.status_code == 200
        again = await client.post(f"/sessions/{sid}/messages", json={"prompt": "still there?"})
        assert again.status_code == 200 and again.json()["text"] == "Mock reply to: still there?"


async def test_config_compare_and_swap(server):
    async with server.client() as client:
        start = (await client.get("/config")).json()
        assert start["realm_id"] == REALM and start["backend"] == "sqlite"
        gen = start["generation"]
        put = await client.put("/config", json={"config": {**start["config"], "budget": {"max_tool_calls": 7}},
                                                "expected_generation": gen})
        assert put.status_code == 200 and put.json()["generation"] == gen + 1
        assert put.json()["config"]["budget"]["max_tool_calls"] == 7
        stale = await client.patch("/config", json={"patch": {"budget": {"max_tool_calls": 8}},
                                                     "expected_generation": gen})
        assert stale.status_code == 409
        for method, reply in (("PUT", put), ("PATCH", stale)):
            assert_documented(server.openapi(), method, "/config", reply)
        assert stale.json()["code"] == "CONFIG_GENERATION_CONFLICT"
        assert stale.json()["details"] == {"expected_generation": gen, "current_generation": gen + 1}
        bare = await client.patch("/config", json={"budget": {"max_tool_calls": None}})
        assert bare.status_code == 200 and bare.json()["generation"] == gen + 2
        assert bare.json()["config"]["budget"]["max_tool_calls"] is None
        invalid = await client.patch("/config", json={"patch": {"agent": {"max_turns": "many"}}})
        assert invalid.status_code == 400 and "agent.max_turns" in invalid.json()["error"]
        typo = await client.patch("/config", json={"agnet": {"model": "mock"}})
        assert typo.status_code == 400 and typo.json()["code"] == "INVALID_PARAMS"
        assert typo.json()["details"]["key"] == "agnet" and "did you mean 'agent'" in typo.json()["error"]
        deep = await client.patch("/config", json={"patch": {"agent": {"max_tokens_pertur": 1}}})
        assert deep.status_code == 400 and deep.json()["details"]["key"] == "agent.max_tokens_pertur"
        wrapper = await client.patch("/config", json={"patch": {}, "expected_generaton": 1})
        assert wrapper.status_code == 400 and "expected_generaton" in wrapper.json()["error"]
        model = await client.put("/config", json={"config": {"agent": {"model": "no-such-model"}}})
        assert model.status_code == 400 and model.json()["details"]["key"] == "agent.model"
        not_object = await client.put("/config", json={"config": [1, 2]})
        assert not_object.status_code == 400 and "config must be an object" in not_object.json()["error"]
        assert (await client.get("/config")).json()["generation"] == gen + 2


async def test_keepalive_comments_then_done_when_archived(server):
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        head = await client.head(f"/sessions/{sid}/events")
        assert head.status_code == 200 and head.headers["content-type"] == "text/event-stream"
        received = b""
        async with client.stream("GET", f"/sessions/{sid}/events") as response:
            assert response.headers["content-type"] == "text/event-stream"
            assert_documented(server.openapi(), "GET", f"/sessions/{sid}/events", response)
            assert response.headers["cache-control"] == "no-cache"
            archived = False
            async for chunk in response.aiter_raw():
                received += chunk
                if b": keep-alive\n\n" in received and not archived:
                    archived = True
                    assert (await client.delete(f"/sessions/{sid}")).status_code == 200
        assert received.startswith(b"event: session_loaded\n")
        assert received.endswith(b'event: done\ndata: {"reason":"archived"}\n\n')


async def test_models_catalog_health_and_openapi(server):
    async with server.client() as client:
        document = (await client.get("/openapi.json")).json()
        for path in ("/models/catalog", "/health", "/openapi.json", "/config", "/sessions", "/metrics", "/",
                     "/console", "/console/assets/console.js", "/console/assets/no-such.js", "/console/api/providers"):
            assert_documented(document, "GET", path, await client.get(path))
        catalog = (await client.get("/models/catalog")).json()
        assert set(catalog["contract_version"]) == {"major", "minor", "patch"}
        assert {p["provider"] for p in catalog["providers"]} >= {"anthropic", "openai"}
        health = await client.get("/health")
        assert health.text == "ok" and health.headers["content-type"].startswith("text/plain")
    assert document["openapi"] == "3.1.0"
    routes = {(path, method) for path, item in document["paths"].items() for method in item if method != "parameters"}
    assert routes == {
        ("/sessions", "post"), ("/sessions", "get"), ("/sessions/{session_id}", "get"),
        ("/sessions/{session_id}", "delete"), ("/sessions/{session_id}/messages", "post"),
        ("/sessions/{session_id}/history", "get"), ("/sessions/{session_id}/interrupt", "post"),
        ("/sessions/{session_id}/events", "get"), ("/config", "get"), ("/config", "put"), ("/config", "patch"),
        ("/models/catalog", "get"), ("/health", "get"), ("/openapi.json", "get"),
        # history (tests/test_rest_history.py)
        ("/sessions/{session_id}/fork", "post"), ("/sessions/{session_id}/revisions", "get"),
        ("/sessions/{session_id}/revisions", "post"), ("/sessions/{session_id}/revisions/{revision}", "get"),
        ("/sessions/{session_id}/revisions/{revision}/restore", "post"),
        ("/sessions/{session_id}/system_prompt", "put"), ("/sessions/{session_id}/instructions", "post"),
        ("/sessions/{session_id}/instructions", "get"), ("/sessions/{session_id}/export", "get"),
        # live sessions (tests/test_rest_live.py)
        ("/events", "get"), ("/events/latest_cursor", "get"), ("/events/snapshot", "get"),
        ("/sessions/{session_id}/stop_run", "post"), ("/sessions/{session_id}/inject_context", "post"),
        ("/sessions/{session_id}/external_events", "post"), ("/sessions/{session_id}/inputs", "get"),
        ("/sessions/{session_id}/inputs/{input_id}", "get"), ("/requests/{request_id}/cancel", "post"),
        ("/realms", "get"), ("/realms/{realm_id}", "get"), ("/runtime/host_info", "get"),
        ("/runtime/health", "get"), ("/runtime/capabilities", "get"),
        # console and metrics (tests/test_rest_console.py, tests/test_metrics.py)
        ("/", "get"), ("/console", "get"), ("/console/assets/{name}", "get"), ("/console/api/providers", "get"),
        ("/metrics", "get"),
    }


UNKNOWN = "01936f8a-7b2c-7000-8000-000000000001"
JSON = {"Content-Type": "application/json"}

BAD_REQUESTS = [
    # (method, path, headers, body, status, code, words in the message)
    ("POST", "/sessions", JSON, b"{not json", 400, "PARSE_ERROR", "malformed JSON"),
    ("POST", "/sessions", JSON, b"", 400, "PARSE_ERROR", "empty"),
    ("POST", "/sessions", JSON, b'{"prompt": "\xff"}', 400, "PARSE_ERROR", "not UTF-8"),
    ("PATCH", "/config", JSON, b'{"\xc3": 1}', 400, "PARSE_ERROR", "not UTF-8"),
    ("POST", "/sessions", JSON, b'{"prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", 400, "PARSE_ERROR",
     "nested too deeply"),
    ("POST", "/sessions", {"Content-Type": "text/plain"}, b'{"prompt": "hi"}', 415, "UNSUPPORTED_MEDIA_TYPE",
     "application/json"),
    ("POST", "/sessions", {}, b'{"prompt": "hi"}', 415, "UNSUPPORTED_MEDIA_TYPE", "application/json"),
    ("POST", "/sessions", JSON, b"[1, 2]", 400, "INVALID_PARAMS", "must be an object"),
    ("POST", "/sessions", JSON, b'{"model": "mock"}', 400, "INVALID_PARAMS", "prompt"),
    ("POST", "/sessions", JSON, b'{"prompt": 42}', 400, "INVALID_PARAMS", "prompt"),
    ("POST", "/sessions", JSON, b'{"prompt": "   "}', 400, "INVALID_PARAMS", "prompt"),
    ("POST", "/sessions", JSON, b'{"prompt": "hi", "max_tokens": "10"}', 400, "INVALID_PARAMS", "max_tokens"),
    ("POST", "/sessions", JSON, b'{"prompt": "hi", "labels": {"a": 1}}', 400, "INVALID_PARAMS", "labels"),
    ("POST", "/sessions", JSON, b'{"prompt": "hi", "provider": "acme"}', 400, "INVALID_PARAMS", "acme"),
    ("POST", "/sessions", JSON, b'{"prompt": "hi", "provider_params": {"bogus": 1}}', 400, "INVALID_PARAMS",
     "bogus"),
    ("POST", "/sessions", JSON, b'{"prompt": "' + b"x" * 3_000_000 + b'"}', 413, "PAYLOAD_TOO_LARGE", "limit"),
    ("POST", f"/sessions/{UNKNOWN}/messages", JSON, b'{"prompt": "hi"}', 404, "SESSION_NOT_FOUND", UNKNOWN),
    ("POST", "/sessions/not-a-uuid/messages", JSON, b'{"prompt": "hi"}', 400, "INVALID_PARAMS", "not-a-uuid"),
    ("GET", f"/sessions/other-realm:{UNKNOWN}", {}, b"", 400, "INVALID_PARAMS", "other-realm"),
    ("GET", f"/sessions/{UNKNOWN}", {}, b"", 404, "SESSION_NOT_FOUND", UNKNOWN),
    ("POST", f"/sessions/{UNKNOWN}/interrupt", {}, b"", 404, "SESSION_NOT_FOUND", UNKNOWN),
    ("GET", f"/sessions/{UNKNOWN}/events", {}, b"", 404, "SESSION_NOT_FOUND", UNKNOWN),
    ("GET", f"/sessions/{UNKNOWN}/events", {"Last-Event-ID": "soon"}, b"", 400, "INVALID_PARAMS", "Last-Event-ID"),
    ("GET", "/sessions?limit=many", {}, b"", 400, "INVALID_PARAMS", "limit"),
    ("GET", "/sessions?limit=-1", {}, b"", 400, "INVALID_PARAMS", "limit"),
    ("GET", "/sessions?offset=99999999", {}, b"", 400, "INVALID_PARAMS", "offset"),
    ("GET", "/sessions?label=novalue", {}, b"", 400, "INVALID_PARAMS", "key=value"),
    ("PUT", "/config", JSON, b'{"config": {}, "expected_generation": "3"}', 400, "INVALID_PARAMS",
     "expected_generation"),
    ("GET", "/no/such/route", {}, b"", 404, "NOT_FOUND", "/no/such/route"),
    ("DELETE", "/config", {}, b"", 405, "METHOD_NOT_ALLOWED", "DELETE"),
    ("POST", "/health", {}, b"", 405, "METHOD_NOT_ALLOWED", "POST"),
    ("DELETE", f"/sessions/{UNKNOWN}", JSON, b"x" * 3_000_000, 413, "PAYLOAD_TOO_LARGE", "limit"),
    ("POST", f"/sessions/{UNKNOWN}/interrupt", JSON, b"x" * 3_000_000, 413, "PAYLOAD_TOO_LARGE", "limit"),
]


async def test_bad_input_gets_a_json_error_and_the_server_keeps_serving(server):
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        mismatched = await client.post(f"/sessions/{sid}/messages", json={"session_id": UNKNOWN, "prompt": "hi"})
        assert mismatched.status_code == 400 and "mismatch" in mismatched.json()["error"]
        for method, path, headers, body, status, code, words in BAD_REQUESTS:
            reply = await client.request(method, path, headers=headers, content=body)
            assert reply.status_code == status, (method, path, reply.text)
            assert_documented(server.openapi(), method, path, reply)
            assert reply.headers["content-type"] == "application/json", (method, path)
            error = json.loads(reply.content)
            assert error["code"] == code and words in error["error"], (method, path, error)
            assert set(error) <= {"error", "code", "details"}
        wrong_method = await client.put("/sessions")
        assert wrong_method.headers["allow"] == "GET, HEAD, OPTIONS, POST"
        assert (await client.get("/health")).text == "ok"
        assert (await create(client, "still serving"))["text"] == "Mock reply to: still serving"


async def test_agent_failure_is_a_documented_500(server):
    """A turn the agent cannot finish (turn limit) answers 500 AGENT_ERROR, as the document says."""
    async with server.client() as client:
        generation = (await client.patch("/config", json={"agent": {"max_turns": 1}})).json()["generation"]
        try:
            reply = await client.post("/sessions", json={"prompt": "tool:datetime"})
        finally:
            await client.patch("/config", json={"patch": {"agent": {"max_turns": None}},
                                                "expected_generation": generation})
        assert reply.status_code == 500 and reply.json()["code"] == "AGENT_ERROR"
        assert "turn limit" in reply.json()["error"]
        assert_documented(server.openapi(), "POST", "/sessions", reply)


async def test_a_client_leaving_never_interrupts_its_turn(server):
    """Decision 4: the waiting POST's client disconnects mid-turn; the turn still runs to its end."""
    async with server.client() as client:
        sid = (await create(client))["session_id"]
        async with server.client() as leaver:
            kinds: list[str] = []
            deltas: list[str] = []
            async with trio.open_nursery() as nursery:
                waiting = trio.CancelScope()

                async def turn() -> None:
                    with waiting:
                        await leaver.post(f"/sessions/{sid}/messages",
                                          json={"prompt": "keep going", "provider_params": SLOW})

                async with client.sse(f"/sessions/{sid}/events", params={"stop_after_run": "true"}) as source:
                    async for event in source:
                        kinds.append(event.event)
                        if event.event == "session_loaded":
                            nursery.start_soon(turn)
                        elif event.event == "text_delta":
                            deltas.append(event.json()["payload"]["delta"])
                            waiting.cancel()  # the client gives up and closes its connection
        assert "run_failed" not in kinds and kinds[-2:] == ["run_completed", "done"]
        assert len("".join(deltas).split()) == SLOW["reply_words"]
        last = (await client.get(f"/sessions/{sid}/history")).json()["messages"][-1]
        assert last["stop_reason"] == "end_turn" and last["blocks"][0]["data"]["text"] == "".join(deltas)
