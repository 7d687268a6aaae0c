"""Every size a request can ask for is bounded: INVALID_PARAMS naming the field, and the
daemon goes on serving (a mock reply of 10**12 words used to freeze it, then kill it)."""

from __future__ import annotations

import pytest

from meerkat.validation import MAX_LABEL_KEY_CHARS, MAX_LABELS, MAX_PROMPT_BLOCKS, MAX_PROMPT_CHARS

from test_rest_server import RestServer


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with RestServer("--realm", "limits", "--state-root", str(tmp_path_factory.mktemp("limits"))) as running:
        yield running


@pytest.mark.parametrize("params, named", [
    ({"reply_words": 1_000_000_000_000}, "reply_words"),
    ({"reply_words": 100_001}, "reply_words"),
    ({"token_delay_ms": 10**9}, "token_delay_ms"),
    ({"first_token_latency_ms": 1e12}, "first_token_latency_ms"),
    ({"reply": "x" * 1_000_001}, "reply"),
])
async def test_mock_parameters_are_bounded(server, params, named):
    async with server.client() as http:
        reply = await http.post("/sessions", json={"prompt": "x", "model": "mock", "provider_params": params})
        assert reply.status_code == 400, reply.text
        error = reply.json()
        assert error["code"] == "INVALID_PARAMS" and named in error["error"], error
        assert (await http.get("/health")).text == "ok"
        assert (await http.get("/sessions")).json()["sessions"] == []  # nothing was created


@pytest.mark.parametrize("body, words", [
    ({"prompt": "x" * (MAX_PROMPT_CHARS + 1)}, "prompt must be at most"),
    ({"prompt": [{"type": "text", "text": "x"}] * (MAX_PROMPT_BLOCKS + 1)}, "content blocks"),
    ({"prompt": "x", "labels": {f"k{i}": "v" for i in range(MAX_LABELS + 1)}}, "labels"),
    ({"prompt": "x", "labels": {"k" * (MAX_LABEL_KEY_CHARS + 1): "v"}}, "labels"),
    ({"prompt": "x", "labels": {"k": "v" * 5000}}, "labels"),
])
async def test_request_sizes_are_bounded(server, body, words):
    async with server.client() as http:
        reply = await http.post("/sessions", json={"model": "mock", **body})
        assert reply.status_code == 400, reply.text
        assert reply.json()["code"] == "INVALID_PARAMS" and words in reply.json()["error"], reply.json()


async def test_the_largest_allowed_values_work(server):
    async with server.client() as http:
        reply = await http.post("/sessions", json={
            "prompt": "x", "model": "mock", "provider_params": {"reply_words": 2000},
            "labels": {f"k{i}": "v" * 100 for i in range(MAX_LABELS)}})
        assert reply.status_code == 200, reply.text
        assert len(reply.json()["text"].split()) == 2000
        page = await http.get(f"/sessions/{reply.json()['session_id']}/history", params={"limit": 10**9})
        assert page.status_code == 400 and page.json()["code"] == "INVALID_PARAMS"
