"""``rkat-rest``'s live-session routes, curl-style with httpx2 against real daemons.

SSE resume from the durable log after a daemon restart, the event log and its
stale cursors, run-fenced stop, injected context reaching the model, external
events, inputs, realms and runtime info, and request cancellation by id.
"""

from __future__ import annotations

from typing import Any

import httpx2
import trio

from test_rest_server import RestServer, assert_documented

SLOW = {"reply_words": 300, "token_delay_ms": 20}


async def _frames(client: httpx2.AsyncClient, path: str, count: int, **kwargs: Any) -> list[tuple[str, dict]]:
    """The first ``count`` event frames (session_loaded left out) of an SSE stream."""
    seen: list[tuple[str, dict]] = []
    with trio.fail_after(30):
        async with client.sse(path, **kwargs) as source:
            async for event in source:
                if event.event == "session_loaded":
                    continue
                seen.append((event.event, event.json()))
                if len(seen) >= count:
                    break
    return seen


async def _create(client: httpx2.AsyncClient, prompt: str = "hello") -> str:
    reply = await client.post("/sessions", json={"prompt": prompt})
    assert reply.status_code == 200, reply.text
    return reply.json()["session_id"]


async def test_sse_resumes_from_the_durable_log_after_a_daemon_restart(tmp_path):
    args = ("--realm", "resume", "--state-root", str(tmp_path), "--realm-backend", "sqlite")
    with RestServer(*args) as server:
        async with server.client() as client:
            sid = await _create(client, "one two")
            assert (await client.post(f"/sessions/{sid}/messages", json={"prompt": "three four"})).status_code == 200
            logged = (await client.get("/events", params={"session_id": sid})).json()["events"]
    assert len(logged) > 10 and [e["seq"] for e in logged] == list(range(1, len(logged) + 1))
    with RestServer(*args) as server:  # a new process: its ring is empty, only the log knows
        async with server.client() as client:
            cut = 4
            frames = await _frames(client, f"/sessions/{sid}/events", len(logged) - cut,
                                   headers={"Last-Event-ID": str(cut)})
            assert [f[1]["event_id"] for f in frames] == [e["event_id"] for e in logged[cut:]]
            assert [f[0] for f in frames] == [e["payload"]["type"] for e in logged[cut:]]
            page = await client.get("/events", params={"session_id": sid, "after": str(cut), "limit": "3"})
            assert_documented(server.openapi(), "GET", "/events", page)
            body = page.json()
            assert [e["seq"] for e in body["events"]] == [cut + 1, cut + 2, cut + 3] and body["has_more"] is True
            latest = (await client.get("/events/latest_cursor", params={"session_id": sid})).json()
            assert latest["cursor"] == {"scope": {"type": "session", "session_id": sid}, "sequence": len(logged)}


async def test_stale_cursor_is_410_on_json_and_sse(tmp_path):
    args = ("--realm", "stale", "--state-root", str(tmp_path))
    with RestServer(*args) as server:
        async with server.client() as client:
            config = (await client.get("/config")).json()
            patched = await client.patch("/config", json={"patch": {"limits": {"event_retention": 8}},
                                                          "expected_generation": config["generation"]})
            assert patched.status_code == 200, patched.text
            sid = await _create(client)
            for n in range(3):  # ~45 events each: past the retention and its pruning slack (64)
                await client.post(f"/sessions/{sid}/messages", json={"prompt": f"turn {n}",
                                                                     "provider_params": {"reply_words": 40}})
            stale = await client.get("/events", params={"session_id": sid, "after": "1"})
            assert stale.status_code == 410 and stale.json()["code"] == "STALE_CURSOR", stale.text
            assert_documented(server.openapi(), "GET", "/events", stale)
            watermark = stale.json()["details"]["watermark"]
            fresh = await client.get("/events", params={"session_id": sid, "after": str(watermark)})
            assert fresh.json()["events"][0]["seq"] == watermark + 1
    with RestServer(*args) as server:  # restarted: nothing in memory serves the old cursor any more
        async with server.client() as client:
            with trio.fail_after(20):
                sse = await client.get(f"/sessions/{sid}/events", headers={"Last-Event-ID": "1"})
            assert sse.status_code == 410 and sse.json()["code"] == "STALE_CURSOR"


async def test_stop_run_inject_and_external_events(tmp_path):
    with RestServer("--realm", "live", "--state-root", str(tmp_path)) as server:
        document = server.openapi()
        async with server.client() as client:
            sid = await _create(client)
            stale = await client.post(f"/sessions/{sid}/stop_run", json={"run_id": "nope", "reason": "x"})
            assert_documented(document, "POST", "/sessions/{session_id}/stop_run", stale)
            assert stale.json()["receipt"] == {"outcome": "not_current", "run_id": "nope", "current_run_id": None}

            answers: list[httpx2.Response] = []
            async with trio.open_nursery() as nursery:
                async def slow_turn() -> None:
                    answers.append(await client.post(f"/sessions/{sid}/messages",
                                                     json={"prompt": "long", "provider_params": SLOW}))

                frames: list[tuple[str, dict]] = []
                with trio.fail_after(30):
                    async with client.sse(f"/sessions/{sid}/events") as source:
                        async for event in source:
                            if event.event == "session_loaded":
                                nursery.start_soon(slow_turn)
                                continue
                            frames.append((event.event, event.json()))
                            if event.event == "text_delta":
                                break
                run_id = frames[0][1]["payload"]["identity"]["run_id"]
                stopped = await client.post(f"/sessions/{sid}/stop_run", json={"run_id": run_id, "reason": "enough"})
                assert stopped.json()["receipt"]["outcome"] == "stopped", stopped.text
            assert answers[0].status_code == 499, answers[0].text

            inject = {"text": "The secret word is PAPAYA.", "source": "ops", "idempotency_key": "k1"}
            first = await client.post(f"/sessions/{sid}/inject_context", json=inject)
            assert_documented(document, "POST", "/sessions/{session_id}/inject_context", first)
            assert first.json()["status"] == "applied"
            assert (await client.post(f"/sessions/{sid}/inject_context", json=inject)).json()["status"] == "duplicate"
            conflict = await client.post(f"/sessions/{sid}/inject_context", json={**inject, "text": "other"})
            assert conflict.status_code == 409 and conflict.json()["code"] == "INPUT_IDEMPOTENCY_CONFLICT"
            seen = (await client.post(f"/sessions/{sid}/messages", json={
                "prompt": "mock:system", "additional_instructions": ["Be terse."]})).json()["text"]
            assert "PAPAYA" in seen and "Be terse." in seen, seen
            state = (await client.get(f"/sessions/{sid}/inputs", params={"idempotency_key": "k1"})).json()["state"]
            assert state["current_state"] == "applied"

            queued = await client.post(f"/sessions/{sid}/external_events",
                                       json={"event_type": "deploy.done", "payload": {"ok": True},
                                             "idempotency_key": "e1"})
            assert queued.status_code == 202, queued.text
            assert_documented(document, "POST", "/sessions/{session_id}/external_events", queued)
            input_id = queued.json()["input_id"]
            with trio.fail_after(20):
                while True:
                    reply = await client.get(f"/sessions/{sid}/inputs/{input_id}")
                    if reply.json()["state"]["current_state"] == "consumed":
                        break
                    await trio.sleep(0.05)
            assert_documented(document, "GET", "/sessions/{session_id}/inputs/{input_id}", reply)
            rows = (await client.get(f"/sessions/{sid}/history")).json()["messages"]
            assert any(r["role"] == "user" and "deploy.done" in str(r["content"]) for r in rows)


async def test_request_cancellation_by_id_and_discovery(tmp_path):
    with RestServer("--realm", "cancel", "--state-root", str(tmp_path)) as server:
        document = server.openapi()
        async with server.client() as client:
            sid = await _create(client)
            answers: list[httpx2.Response] = []
            async with trio.open_nursery() as nursery:
                async def slow_turn() -> None:
                    answers.append(await client.post(f"/sessions/{sid}/messages",
                                                     json={"prompt": "long", "provider_params": SLOW},
                                                     headers={"X-Meerkat-Request-Id": "req-1"}))

                nursery.start_soon(slow_turn)
                with trio.fail_after(20):
                    while True:
                        cancelled = await client.post("/requests/req-1/cancel")
                        if cancelled.status_code == 200:
                            break
                        await trio.sleep(0.05)
                assert_documented(document, "POST", "/requests/{request_id}/cancel", cancelled)
            assert answers[0].status_code == 499 and answers[0].json()["code"] == "REQUEST_CANCELLED"
            unknown = await client.post("/requests/nope/cancel")
            assert unknown.status_code == 404
            empty = await client.post(f"/sessions/{sid}/messages", json={"prompt": "x"},
                                      headers={"X-Meerkat-Request-Id": ""})
            assert empty.status_code == 400

            for path in ("/realms", "/realms/cancel", "/runtime/host_info", "/runtime/health",
                         "/runtime/capabilities"):
                reply = await client.get(path)
                assert reply.status_code == 200, (path, reply.text)
                assert_documented(document, "GET", path if "realms/" not in path else "/realms/{realm_id}", reply)
            assert (await client.get("/realms")).json()["realms"][0]["realm_id"] == "cancel"
            assert (await client.get("/runtime/host_info")).json()["process_name"] == "rkat-rest"
