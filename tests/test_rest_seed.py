"""Every REST example of ``seed-sessions-and-streaming.md``, sent as its ``curl`` sends it.

The bodies are the seed's bytes; only the session id placeholder is replaced by a
real id. The two examples that name a hosted model (``claude-sonnet-4-6``,
``gpt-5.5``) reach that provider: with no API key in the environment the turn
fails with 502 PROVIDER_ERROR naming the provider and the variables to set, so
the test accepts that answer or a run result. The rest of the flow then runs on
a session of the offline mock provider.
"""

from __future__ import annotations

import json

import trio

from test_rest_server import RestServer

CURL_JSON = {"Content-Type": "application/json"}
SEED_ID = "01936f8a-7b2c-7000-8000-000000000001"


def _accepted_by_provider(reply, provider: str) -> bool:
    """A run result, or the provider's own failure (no key here): the request itself was right."""
    if reply.status_code == 200:
        body = reply.json()
        return bool(body["session_id"]) and body["turns"] >= 1
    body = reply.json()
    return reply.status_code == 502 and body["code"] == "PROVIDER_ERROR" and provider in body["error"]


async def test_seed_rest_examples(tmp_path):
    with RestServer("--realm", "team-alpha", "--state-root", str(tmp_path)) as server:
        async with server.client() as client:
            # Create a session.
            reply = await client.post("/sessions", headers=CURL_JSON, content=b'{"prompt": "What is the capital of '
                                                                                b'France?", "model": "claude-sonnet-4-6"}')
            assert _accepted_by_provider(reply, "anthropic"), reply.text
            reply = await client.post("/sessions", headers=CURL_JSON,
                                      content=b'{"prompt": "What is the capital of France?", "model": "mock"}')
            assert reply.status_code == 200
            sid = reply.json()["session_id"]

            # Event streaming: "connect before starting a turn", then multi-turn.
            kinds: list[str] = []
            texts: list[str] = []
            async with trio.open_nursery() as nursery:
                async with client.sse(f"/sessions/{sid}/events") as source:
                    async for event in source:
                        kinds.append(event.event)
                        if event.event == "session_loaded":
                            body = ('{\n  "session_id": "%s",\n  "prompt": "Now explain it in more detail"\n}'
                                    % SEED_ID).replace(SEED_ID, sid)

                            async def continue_turn(body: str = body) -> None:
                                turn = await client.post(f"/sessions/{sid}/messages", headers=CURL_JSON,
                                                         content=body.encode())
                                texts.append(turn.json()["text"])

                            nursery.start_soon(continue_turn)
                        elif event.event == "run_completed":
                            # Interrupt a turn: a no-op on an idle session.
                            idle = await client.post(f"/sessions/{sid}/interrupt")
                            assert idle.json() == {"session_id": sid, "interrupted": True, "result": "interrupted"}
                            # List and read.
                            listed = (await client.get("/sessions")).json()["sessions"]
                            assert sid in [s["session_id"] for s in listed]
                            read = (await client.get(f"/sessions/{sid}")).json()
                            assert read["message_count"] == 4 and read["session_ref"] == f"team-alpha:{sid}"
                            # Archive: the open stream ends with `done`.
                            archived = await client.request("DELETE", f"/sessions/{sid}")
                            assert archived.json() == {"session_id": sid, "archived": True}
            assert texts == ["Mock reply to: Now explain it in more detail"]
            assert {"text_delta", "turn_completed"} <= set(kinds) and kinds[-1] == "done"
            assert (await client.get(f"/sessions/{sid}")).status_code == 404

            # Model and provider selection, with provider_params passed through.
            reply = await client.post("/sessions", headers=CURL_JSON, content=(
                b'{"prompt":"Explain monads","model":"gpt-5.5","provider":"openai",'
                b'"provider_params":{"reasoning_effort":"high"}}'))
            assert _accepted_by_provider(reply, "openai"), reply.text

            # Config management. The seed's writes expect generations 3 and 4: three writes came first.
            assert (await client.get("/config")).json()["generation"] == 0
            for budget in (1000, 2000, 3000):
                await client.patch("/config", json={"budget": {"max_tokens": budget}})
            put = await client.put("/config", headers=CURL_JSON, content=(
                b'{"config": {"agent": {"model": "gpt-5.5"}}, "expected_generation": 3}'))
            assert put.status_code == 200, put.text
            assert put.json()["generation"] == 4 and put.json()["config"]["agent"]["model"] == "gpt-5.5"
            assert put.json()["config"]["budget"]["max_tokens"] is None  # set replaces the whole config
            patch = await client.patch("/config", headers=CURL_JSON, content=(
                b'{"patch": {"agent": {"max_tokens_per_turn": 8192}}, "expected_generation": 4}'))
            assert patch.status_code == 200, patch.text
            config = json.loads(patch.content)
            assert config["generation"] == 5 and config["config"]["agent"] == {
                **put.json()["config"]["agent"], "max_tokens_per_turn": 8192}
            assert (await client.get("/config")).json() == config
