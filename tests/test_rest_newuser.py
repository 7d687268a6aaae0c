"""REST defects a new user hit: the first turn as a stream, ids on interrupted creates, unknown fields,
unknown routes, and a daemon whose stdout/stderr went away (``rkat-rest 2>&1 | tee log`` and Ctrl-C)."""

from __future__ import annotations

import json
import signal
import subprocess
import threading
import time

import httpx2
import pytest
import trio

from test_rest_server import REST_BIN, RestServer, hermetic_environ

SLOW = {"reply_words": 40, "token_delay_ms": 25}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-newuser")
    with RestServer("--realm", "newuser", "--state-root", str(root)) as running:
        yield running


def _frames(text: str) -> list[tuple[str, dict]]:
    frames = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if not line.startswith(":"))
        frames.append((fields["event"], json.loads(fields["data"])))
    return frames


async def test_create_streams_its_first_turn_and_names_the_session_first(server):
    async with server.client() as client:
        headers = {"Accept": "text/event-stream"}
        async with client.stream("POST", "/sessions", json={"prompt": "hi", "provider_params": SLOW},
                                 headers=headers) as reply:
            assert reply.status_code == 200 and reply.headers["content-type"] == "text/event-stream"
            received, sid = "", None
            async for chunk in reply.aiter_text():
                received += chunk
                if sid is None and "\n\n" in received:
                    first = _frames(received.split("\n\n")[0] + "\n\n")[0]
                    assert first[0] == "session_created"
                    sid = first[1]["session_id"]
                    assert first[1]["session_ref"] == f"newuser:{sid}"
                    # The id arrives while the turn still runs.
                    assert (await client.get(f"/sessions/{sid}")).json()["is_active"] is True
        frames = _frames(received)
        kinds = [kind for kind, _ in frames]
        assert kinds[-2:] == ["result", "done"] and "text_delta" in kinds and "run_completed" in kinds
        result = frames[-2][1]
        assert result["session_id"] == sid and len(result["text"].split()) == 40
        streamed = "".join(data["payload"]["delta"] for kind, data in frames if kind == "text_delta")
        assert streamed == result["text"]
        # Without the Accept header, the answer is the plain JSON result, as before.
        plain = await client.post("/sessions", json={"prompt": "hi"})
        assert plain.headers["content-type"].startswith("application/json") and plain.json()["text"]


async def test_interrupted_first_turn_answer_names_the_session(server):
    async with server.client() as client:
        answers = []

        async def create():
            answers.append(await client.post("/sessions", json={"prompt": "long", "labels": {"t": "interrupt"},
                                                                 "provider_params": {"reply_words": 500,
                                                                                     "token_delay_ms": 20}}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(create)
            while True:
                listed = (await client.get("/sessions", params={"label": "t=interrupt"})).json()["sessions"]
                if listed and listed[0]["is_active"]:
                    break
                await trio.sleep(0.02)
            await client.post(f"/sessions/{listed[0]['session_id']}/interrupt")
        reply = answers[0]
        assert reply.status_code == 499 and reply.json()["code"] == "REQUEST_CANCELLED"
        assert reply.json()["details"]["session_id"] == listed[0]["session_id"]


async def test_unknown_body_fields_and_routes_are_named(server):
    async with server.client() as client:
        typo = await client.post("/sessions", json={"prompt": "hi", "modle": "mock"})
        assert typo.status_code == 400 and typo.json()["code"] == "INVALID_PARAMS"
        assert typo.json()["details"] == {"field": "modle"} and "did you mean `model`" in typo.json()["error"]
        sid = (await client.post("/sessions", json={"prompt": "hi"})).json()["session_id"]
        turn = await client.post(f"/sessions/{sid}/messages", json={"prompt": "again", "max_token": 5})
        assert turn.status_code == 400 and turn.json()["details"] == {"field": "max_token"}
        missing = await client.get("/unknown")
        assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_closed_stdout_and_stderr_never_take_the_daemon_down(tmp_path):
    proc = subprocess.Popen([str(REST_BIN), "--realm", "tee", "--state-root", str(tmp_path), "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**hermetic_environ(), "PYTHONUNBUFFERED": "1"})
    try:
        url = proc.stdout.readline().split("listening on ")[1].strip()
        answers = []

        def create():
            with httpx2.Client(base_url=url, timeout=60) as client:
                answers.append(client.post("/sessions", json={"prompt": "long", "provider_params": {
                    "reply_words": 2000, "token_delay_ms": 10}}))

        waiting = threading.Thread(target=create)
        waiting.start()
        with httpx2.Client(base_url=url, timeout=30) as client:
            while not (client.get("/sessions").json()["sessions"] or [{}])[0].get("is_active"):
                pass
        # The turn shows as running a moment before its request is registered as waiting on it
        # (which is what shutdown answers with 499): let the request get there.
        time.sleep(0.5)
        proc.stdout.close()  # `tee` died with the Ctrl-C: whatever the daemon writes now fails
        proc.stderr.close()
        proc.send_signal(signal.SIGINT)
        waiting.join(60)
        assert proc.wait(60) == 0
        assert answers and answers[0].status_code == 499 and answers[0].json()["details"]["session_id"]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
