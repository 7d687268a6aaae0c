"""Every REST example of ``seed-sessions-and-streaming.md``, sent as its ``curl`` sends it.

The bodies are the seed's bytes; only the session id placeholder is replaced by
the real id of the session the first example creates. The models the seed names
(``claude-sonnet-4-6``, ``gpt-5.5``) are served by the fake vendor server of
:mod:`meerkat.testing`, running on loopback in this test; ``rkat-rest`` reaches
it through the real Anthropic and OpenAI SDKs, pointed there by the base-URL
variables and a fake key, so every example returns its real success result and
the test can also check what reached the vendor.
"""

from __future__ import annotations

import json

import trio

from fake_vendor import vendor_env
from meerkat.testing import Reply, open_fake_provider_server
from test_rest_server import RestServer

CURL_JSON = {"Content-Type": "application/json"}
SEED_ID = "01936f8a-7b2c-7000-8000-000000000001"
REPLY = "Paris is the capital of France."


async def test_seed_rest_examples(tmp_path):
    async with open_fake_provider_server(default=Reply(text=REPLY)) as vendor:
        with RestServer("--realm", "team-alpha", "--state-root", str(tmp_path), env=vendor_env(vendor.url)) as server:
            async with server.client() as client:
                await _run_seed_flow(client, vendor)


async def _run_seed_flow(client, vendor) -> None:
    # Create a session.
    reply = await client.post("/sessions", headers=CURL_JSON, content=b'{"prompt": "What is the capital of '
                                                                        b'France?", "model": "claude-sonnet-4-6"}')
    assert reply.status_code == 200, reply.text
    created = reply.json()
    sid = created["session_id"]
    assert created["text"] == REPLY and created["turns"] == 1 and created["session_ref"] == f"team-alpha:{sid}"
    first_call = vendor.requests[-1]
    assert (first_call.vendor, first_call.body["model"]) == ("anthropic", "claude-sonnet-4-6")

    # Event streaming: "connect before starting a turn", then multi-turn on the seed's session.
    kinds: list[str] = []
    deltas: list[str] = []
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
                        assert turn.status_code == 200, turn.text
                        texts.append(turn.json()["text"])

                    nursery.start_soon(continue_turn)
                elif event.event == "text_delta":
                    deltas.append(event.json()["payload"]["delta"])
                elif event.event == "run_completed":
                    # Interrupt a turn: a no-op on an idle session.
                    idle = await client.post(f"/sessions/{sid}/interrupt")
                    assert idle.json() == {"session_id": sid, "interrupted": True, "result": "interrupted"}
                    # List and read.
                    listed = (await client.get("/sessions")).json()["sessions"]
                    assert sid in [s["session_id"] for s in listed]
                    read = (await client.get(f"/sessions/{sid}")).json()
                    assert read["message_count"] == 4 and read["session_ref"] == f"team-alpha:{sid}"
                    assert (read["model"], read["provider"]) == ("claude-sonnet-4-6", "anthropic")
                    assert read["last_assistant_text"] == REPLY
                    # Archive: the open stream ends with `done`.
                    archived = await client.request("DELETE", f"/sessions/{sid}")
                    assert archived.json() == {"session_id": sid, "archived": True}
    assert texts == [REPLY] and "".join(deltas) == REPLY
    assert {"text_delta", "turn_completed"} <= set(kinds) and kinds[-1] == "done"
    follow_up = vendor.requests[-1]
    assert follow_up.vendor == "anthropic" and len(follow_up.body["messages"]) == 3  # the history went along
    assert (await client.get(f"/sessions/{sid}")).status_code == 404

    # Model and provider selection, with provider_params passed through to the vendor.
    reply = await client.post("/sessions", headers=CURL_JSON, content=(
        b'{"prompt":"Explain monads","model":"gpt-5.5","provider":"openai",'
        b'"provider_params":{"reasoning_effort":"high"}}'))
    assert reply.status_code == 200, reply.text
    assert reply.json()["text"] == REPLY
    openai_call = vendor.requests[-1]
    assert (openai_call.vendor, openai_call.body["model"]) == ("openai", "gpt-5.5")
    assert openai_call.body["reasoning"]["effort"] == "high"
    monads = (await client.get(f"/sessions/{reply.json()['session_id']}")).json()
    assert (monads["model"], monads["provider"]) == ("gpt-5.5", "openai")

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
