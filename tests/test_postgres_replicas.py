"""N replicas of rkat-rest on one PostgreSQL realm, as behind a load balancer: any request may land anywhere.

Three real ``rkat-rest`` processes, each on its own port, its own state root and its own
``RKAT_HOST_ID`` (so none can judge another by its pid or reach it on a loopback port),
serve realm ``team`` from one database of the tests' real PostgreSQL server. A turn
started on replica 1 is streamed from replica 2 with the owner's seqs and interrupted
from replica 3; a session made on one is listed and read on all; a config patch on one
is what the others use next.
"""

from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterator

import httpx2
import pytest
import trio

from test_rest_server import RestServer

REALM = "team"
#: A mock turn long enough (about 60 s) that only the interrupt ends it early.
SLOW = {"reply_words": 3000, "token_delay_ms": 20}


@pytest.fixture(scope="module")
def database_url(postgres_server) -> Iterator[str]:
    """A database of its own for this module's replicas."""
    name = f"replicas_{secrets.token_hex(6)}"
    yield postgres_server.create_database(name)
    postgres_server.drop_database(name)


@pytest.fixture(scope="module")
def replicas(tmp_path_factory: pytest.TempPathFactory, database_url: str) -> Iterator[list[RestServer]]:
    """Three replicas, started at once (so they also race to create the realm and its schema)."""
    servers = [RestServer("--realm", REALM, "--realm-backend", "postgres",
                          "--state-root", str(tmp_path_factory.mktemp(f"replica-{n}")),
                          env={"RKAT_DATABASE_URL": database_url, "RKAT_HOST_ID": f"replica-{n}"})
               for n in (1, 2, 3)]
    with ThreadPoolExecutor(len(servers)) as pool:
        started = [pool.submit(server.__enter__) for server in servers]
    try:
        for future in started:
            future.result()
        yield servers
    finally:
        for server in servers:
            if server.proc is not None:
                server.__exit__(None, None, None)


async def _stream(http: httpx2.AsyncClient, path: str, got: list[dict[str, Any]], ready: trio.Event,
                  headers: dict[str, str] | None = None) -> None:
    """SSE envelopes of ``path`` until the run ends (``ready`` is set once the stream is open)."""
    with trio.fail_after(60):
        async with http.sse(path, headers=headers, params={"stop_after_run": "true"}) as source:
            async for event in source:
                if event.event == "session_loaded":
                    ready.set()
                elif event.event == "done":
                    return
                else:
                    envelope = event.json()
                    assert event.id == str(envelope["seq"])
                    got.append(envelope)


async def test_a_session_made_on_one_replica_is_listed_and_read_on_all(replicas):
    one, two, three = replicas
    async with one.client() as r1, two.client() as r2, three.client() as r3:
        created = await r1.post("/sessions", json={"prompt": "made on one", "labels": {"by": "one"}})
        assert created.status_code == 200, created.text
        session_id = created.json()["session_id"]
        for http in (r1, r2, r3):
            listed = (await http.get("/sessions", params={"labels": "by=one"})).json()["sessions"]
            assert [s["session_id"] for s in listed] == [session_id]
            read = (await http.get(f"/sessions/{session_id}")).json()
            assert read["message_count"] == 2 and read["last_assistant_text"] == "Mock reply to: made on one"
        # Continued on two, read on three at once (no replica keeps a stale copy).
        turn = await r2.post(f"/sessions/{session_id}/messages", json={"prompt": "continued on two"})
        assert turn.status_code == 200, turn.text
        history = (await r3.get(f"/sessions/{session_id}/history")).json()["messages"]
        assert [m["content"] for m in history if m["role"] == "user"] == ["made on one", "continued on two"]
        assert (await r1.get(f"/sessions/{session_id}")).json()["message_count"] == 4


async def test_a_turn_on_replica_1_streamed_from_2_and_interrupted_from_3(replicas):
    one, two, three = replicas
    async with one.client() as r1, two.client() as r2, three.client() as r3:
        session_id = (await r1.post("/sessions", json={"prompt": "hello"})).json()["session_id"]
        on_owner: list[dict[str, Any]] = []
        on_two: list[dict[str, Any]] = []
        outcome: list[httpx2.Response] = []

        async def long_turn() -> None:
            outcome.append(await r1.post(f"/sessions/{session_id}/messages",
                                         json={"prompt": "a long one", "provider_params": SLOW}))

        async with trio.open_nursery() as nursery:
            owner_ready, two_ready = trio.Event(), trio.Event()
            nursery.start_soon(_stream, r1, f"/sessions/{session_id}/events", on_owner, owner_ready)
            nursery.start_soon(_stream, r2, f"/sessions/{session_id}/events", on_two, two_ready)
            await owner_ready.wait()
            await two_ready.wait()
            nursery.start_soon(long_turn)
            with trio.fail_after(30):
                while sum(e["payload"]["type"] == "text_delta" for e in on_two) < 5:
                    await trio.sleep(0.02)
            # Busy on every replica, the third included.
            busy = await r3.post(f"/sessions/{session_id}/messages", json={"prompt": "me too"})
            assert busy.status_code == 409 and busy.json()["code"] == "SESSION_BUSY", busy.text
            asked = trio.current_time()
            stopped = await r3.post(f"/sessions/{session_id}/interrupt")
            answered = trio.current_time() - asked
            assert stopped.status_code == 200, stopped.text
            assert stopped.json()["interrupted"] is True
        ended = trio.current_time() - asked
        # It would run for a minute: the interrupt crossed to the owner through the database.
        assert answered < 5 and ended < 5, (answered, ended)
        assert outcome[0].status_code == 499 and outcome[0].json()["code"] == "REQUEST_CANCELLED", outcome[0].text
        assert on_two[0]["payload"]["type"] == "run_started" and on_two[-1]["payload"]["type"] == "run_failed"
        # Replica 2 saw the owner's events: same seqs, same ids, same text.
        assert [(e["seq"], e["payload"]["type"]) for e in on_two] == [(e["seq"], e["payload"]["type"])
                                                                      for e in on_owner]
        assert [e["event_id"] for e in on_two] == [e["event_id"] for e in on_owner]
        assert [e["seq"] for e in on_two] == list(range(on_two[0]["seq"], on_two[-1]["seq"] + 1))

        # Resume by cursor on the third replica replays the rest of that run, same numbering.
        middle = on_two[len(on_two) // 2]["seq"]
        resumed: list[dict[str, Any]] = []
        await _stream(r3, f"/sessions/{session_id}/events", resumed, trio.Event(),
                      headers={"Last-Event-ID": str(middle)})
        assert [e["seq"] for e in resumed] == [e["seq"] for e in on_two if e["seq"] > middle]

        history = (await r2.get(f"/sessions/{session_id}/history")).json()["messages"]
        kept = "".join(b["data"].get("text", "") for b in history[-1]["blocks"])
        seen = "".join(e["payload"]["delta"] for e in on_two if e["payload"]["type"] == "text_delta")
        assert history[-1]["stop_reason"] == "cancelled" and kept.startswith(seen[:20]) and kept
        again = await r3.post(f"/sessions/{session_id}/messages", json={"prompt": "now on three"})
        assert again.status_code == 200, again.text


async def test_config_patched_on_one_replica_applies_on_the_others(replicas):
    one, two, three = replicas
    async with one.client() as r1, two.client() as r2, three.client() as r3:
        for http in (r2, r3):  # both have read the config before it changes
            assert (await http.post("/sessions", json={"prompt": "warm up"})).status_code == 200
        generation = (await r1.get("/config")).json()["generation"]
        patched = await r1.patch("/config", json={"patch": {"agent": {"system_prompt": "Answer like a pirate."}},
                                                  "expected_generation": generation})
        assert patched.status_code == 200, patched.text
        assert patched.json()["generation"] == generation + 1
        try:
            for http in (r2, r3):
                with trio.fail_after(10):  # a NOTIFY ping brings it; the poll is the fallback
                    while (await http.get("/config")).json()["generation"] != generation + 1:
                        await trio.sleep(0.05)
                created = (await http.post("/sessions", json={"prompt": "after the patch"})).json()
                history = (await http.get(f"/sessions/{created['session_id']}/history")).json()["messages"]
                assert history[0]["role"] == "system" and history[0]["content"] == "Answer like a pirate."
            # The generation is one compare-and-swap for all: a stale expected_generation loses on any replica.
            stale = await r3.patch("/config", json={"patch": {"agent": {"max_turns": 3}},
                                                    "expected_generation": generation})
            assert stale.status_code == 409 and stale.json()["code"] == "CONFIG_GENERATION_CONFLICT", stale.text
        finally:
            await r2.patch("/config", json={"patch": {"agent": {"system_prompt": None}}})
