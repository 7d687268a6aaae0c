"""The live link between processes of one realm: no lost events, no forged numbering.

A REST daemon follows a session over SSE while the CLI (another process) runs turns
on it. Events relayed from the CLI must all reach the SSE client, even while the
daemon refuses its own turn requests on that session as busy; and a push on the
link whose seq does not follow the session's numbering is dropped.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path
from typing import Any

import httpx2
import trio

from meerkat.events import TextDelta, encode_envelope, make_envelope
from meerkat.realm import RealmPaths
from meerkat.store import open_store

from cli_process import RKAT, cli_env
from test_rest_server import RestServer

REALM = "linked"


def rkat(root: Path, *args: str) -> dict[str, Any]:
    done = subprocess.run([RKAT, "--state-root", str(root), *args, "-r", REALM, "--output", "json"],
                          capture_output=True, text=True, timeout=120, env=cli_env(), stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


async def follow(http: httpx2.AsyncClient, session_id: str, into: list[dict[str, Any]], ready: trio.Event) -> None:
    """Every SSE data frame of the session (markers included), in order."""
    async with http.stream("GET", f"/sessions/{session_id}/events") as response:
        assert response.status_code == 200
        ready.set()
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                into.append({"event": event, **json.loads(line[5:])})


async def wait_for(predicate: Any, seconds: float = 60, describe: Any = None) -> None:
    with trio.move_on_after(seconds):
        while not predicate():
            await trio.sleep(0.05)
        return
    raise AssertionError(f"still waiting after {seconds} s: {describe() if describe else ''}")


def summary(seen: list[dict[str, Any]]) -> list[Any]:
    """The frames seen, deltas left out."""
    return [(f.get("event"), f.get("seq"), f.get("payload", {}).get("type")) for f in seen
            if f.get("payload", {}).get("type") != "text_delta"]


def runs(seen: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The events of each run seen, from run_started to its terminal event."""
    found: list[list[dict[str, Any]]] = []
    for frame in seen:
        kind = frame.get("payload", {}).get("type")
        if kind == "run_started":
            found.append([])
        if found:
            found[-1].append(frame)
    return found


def cli_runs(seen: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The runs the CLI started (prompts "turn N"), not the daemon's own that won a race."""
    return [run for run in runs(seen) if '"turn ' in json.dumps(run[0]["payload"])]


async def test_sse_keeps_every_relayed_event_while_local_requests_are_refused_busy(tmp_path):
    root = tmp_path / "state"
    session_id = rkat(root, "run", "--model", "mock", "hello")["session_id"]
    with RestServer("--realm", REALM, "--state-root", str(root)) as server:
        async with server.client() as http:
            seen: list[dict[str, Any]] = []
            ready = trio.Event()
            refused = 0
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow, http, session_id, seen, ready)
                await ready.wait()
                await wait_for(lambda: list(root.glob("*/live/*.json")))
                for turn in range(3):
                    done = trio.Event()

                    async def cli_turn() -> None:
                        await trio.to_thread.run_sync(lambda: rkat(
                            root, "run", "--resume", session_id, "--param", "reply_words=150",
                            "--param", "token_delay_ms=8", f"turn {turn}"))
                        done.set()
                    nursery.start_soon(cli_turn)
                    await wait_for(lambda: len(cli_runs(seen)) >= turn + 1)
                    while not done.is_set():  # the daemon's own requests on the session, refused as busy
                        reply = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "me too"})
                        refused += reply.status_code == 409
                        await trio.sleep(0.005)
                    await wait_for(lambda: cli_runs(seen)[turn][-1]["payload"]["type"] in ("run_completed",
                                                                                          "run_failed"),
                                   describe=lambda: summary(seen))
                nursery.cancel_scope.cancel()
    assert refused > 10, refused
    assert not [f for f in seen if f.get("payload", {}).get("type") == "stream_truncated"], "events were lost"
    assert len(cli_runs(seen)) == 3
    for run in cli_runs(seen):
        seqs = [frame["seq"] for frame in run]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        assert run[-1]["payload"]["type"] == "run_completed"
        assert len([f for f in run if f["payload"]["type"] == "text_delta"]) >= 150


async def test_a_push_that_breaks_the_numbering_is_dropped(tmp_path):
    root = tmp_path / "state"
    session_id = rkat(root, "run", "--model", "mock", "hello")["session_id"]
    other_id = rkat(root, "run", "--model", "mock", "another")["session_id"]
    with RestServer("--realm", REALM, "--state-root", str(root)) as server:
        async with server.client() as http:
            seen: list[dict[str, Any]] = []
            ready = trio.Event()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow, http, session_id, seen, ready)
                await ready.wait()
                await wait_for(lambda: list(root.glob("*/live/*.json")))
                link = json.loads(next(root.glob("*/live/*.json")).read_text())
                host, port = link["endpoint"].rsplit(":", 1)
                forged = [make_envelope(session_id, 10**15, TextDelta(delta="forged far ahead")),
                          make_envelope(other_id, 3, TextDelta(delta="another session's"))]
                for envelope in forged:
                    with socket.create_connection((host, int(port)), timeout=10) as peer:
                        request = {"token": link["token"], "op": "push", "session_id": session_id}
                        peer.sendall(json.dumps(request).encode() + b"\n" + encode_envelope(envelope) + b"\n")
                        peer.settimeout(10)
                        assert peer.recv(100) == b""  # the daemon hangs up on it
                turn = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "after the forgery"})
                assert turn.status_code == 200, turn.text
                await wait_for(lambda: any(f.get("payload", {}).get("type") == "run_completed" for f in seen))
                nursery.cancel_scope.cancel()
        assert "does not follow the session's numbering" in server.stderr()
    texts = [f["payload"].get("delta") for f in seen if f.get("payload", {}).get("type") == "text_delta"]
    assert "forged far ahead" not in texts and "another session's" not in texts
    seqs = [f["seq"] for f in seen if "seq" in f and f["seq"] > 0]
    assert seqs and max(seqs) < 1000, seqs
    # What the store keeps (and a restarted process numbers on from) is the session's own seq.
    paths = RealmPaths.for_realm(root, REALM)
    store = open_store("sqlite", sqlite_path=paths.sessions_sqlite_path, jsonl_dir=paths.sessions_jsonl_dir)
    try:
        record = store.get_session(session_id)
    finally:
        store.close()
    assert record.message_count == 4 and record.last_seq == max(seqs)
