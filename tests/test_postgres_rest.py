"""rkat-rest on a postgres realm (the tests' real PostgreSQL server): /health reports the database and
follows it going away and coming back; a database lost mid-turn fails that turn cleanly and the next one runs.

The outage is real: the database stops accepting connections (``ALLOW_CONNECTIONS false``) and every
connection to it is cut with ``pg_terminate_backend``, as a failover or a network cut would.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import trio

from test_rest_server import RestServer

TOKEN = "deploy-token-123"


@contextmanager
def _rest(postgres_url: str, tmp_path, *args: str) -> Iterator[RestServer]:
    with RestServer("--realm", "team", "--realm-backend", "postgres", "--state-root", str(tmp_path),
                    *args, env={"RKAT_DATABASE_URL": postgres_url, "RKAT_LEASE_SECS": "3"}) as server:
        yield server


def _dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


def _outage(server, dbname: str, *, on: bool) -> None:
    """Cut the database off (every connection killed, new ones refused) or let it back."""
    with server.connect("postgres") as admin:
        admin.execute(f'ALTER DATABASE "{dbname}" WITH ALLOW_CONNECTIONS {"false" if on else "true"}')
        if on:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE datname = %s AND pid <> pg_backend_pid()", (dbname,))


async def _wait_status(client, status: int, headers: dict[str, str] | None = None):
    with trio.fail_after(45):
        while True:
            reply = await client.get("/health", headers=headers or {})
            if reply.status_code == status:
                return reply
            await trio.sleep(0.2)


async def test_health_reports_the_database_and_follows_an_outage(tmp_path, postgres_url, postgres_server):
    dbname = _dbname(postgres_url)
    with _rest(postgres_url, tmp_path, "--auth-token", TOKEN) as server:
        async with server.client() as http:
            authorized = {"Accept": "application/json", "Authorization": f"Bearer {TOKEN}"}
            assert (await http.get("/health")).text == "ok"
            body = (await http.get("/health", headers=authorized)).json()
            database = body["database"]
            assert body["status"] == "ok" and database["reachable"] is True
            assert database["url"] == f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/{dbname}"
            assert database["latency_ms"] >= 0 and database["schema_version"] >= 1 and database["server_version"]
            public = (await http.get("/health", headers={"Accept": "application/json"})).json()["database"]
            assert "url" not in public and "database_id" not in public and public["reachable"] is True
            runtime = (await http.get("/runtime/health", headers=authorized)).json()
            assert runtime["checks"] == {"store": "ok", "database": "ok"} and runtime["database"]["reachable"]

            _outage(postgres_server, dbname, on=True)
            try:
                sick = await _wait_status(http, 503)
                assert sick.json()["status"] == "unhealthy" and sick.json()["database"]["reachable"] is False
                assert any("<database>" in problem for problem in sick.json()["problems"]), sick.text
                named = (await http.get("/health", headers=authorized)).json()
                assert any(database["url"] in problem for problem in named["problems"]), named
                runtime = (await http.get("/runtime/health", headers=authorized)).json()
                assert runtime["status"] == "unhealthy" and runtime["checks"]["database"] == "unhealthy"
                for reply in (sick.text, str(named), str(runtime)):
                    assert postgres_server.password not in reply
            finally:
                _outage(postgres_server, dbname, on=False)
            assert (await _wait_status(http, 200)).text == "ok"
            assert (await http.post("/sessions", json={"prompt": "back", "model": "mock"},
                                    headers=authorized)).status_code == 200
        server.stop()
        assert postgres_server.password not in server.stderr()


async def test_a_database_lost_mid_turn_fails_the_turn_cleanly_and_the_next_turn_runs(tmp_path, postgres_url,
                                                                                     postgres_server):
    dbname = _dbname(postgres_url)
    with _rest(postgres_url, tmp_path) as server:
        async with server.client() as http:
            created = await http.post("/sessions", json={"prompt": "first", "model": "mock"})
            sid = created.json()["session_id"]
            before = (await http.get(f"/sessions/{sid}/history")).json()["messages"]
            outcome = []

            async def long_turn() -> None:
                outcome.append(await http.post(f"/sessions/{sid}/messages", json={
                    "prompt": "talk", "provider_params": {"reply_words": 400, "token_delay_ms": 10}}))

            kinds: list[str] = []
            failed = None
            try:
                async with trio.open_nursery() as nursery:
                    async with http.sse(f"/sessions/{sid}/events", params={"stop_after_run": "true"}) as source:
                        async for event in source:
                            kinds.append(event.event)
                            if event.event == "session_loaded":
                                nursery.start_soon(long_turn)
                            elif event.event == "text_delta" and kinds.count("text_delta") == 5:
                                _outage(postgres_server, dbname, on=True)
                            elif event.event == "run_failed":
                                failed = event.json()["payload"]
            finally:
                _outage(postgres_server, dbname, on=False)
            assert kinds[-2:] == ["run_failed", "done"], kinds
            assert failed is not None and "STORE" in str(failed).upper(), failed
            assert outcome[0].status_code >= 500 and outcome[0].json()["code"] == "STORE_ERROR", outcome[0].text
            assert postgres_server.password not in outcome[0].text + str(failed)
            # Nothing of the failed turn's answer was written: at most its prompt with an empty answer marked
            # cancelled, which is how any host closes a run whose owner could not commit (as after a crash).
            failed_run = failed["identity"]["run_id"]

            def failed_rows(messages: list[dict]) -> list[tuple]:
                return [(m["role"], m.get("content"), m.get("blocks"), m.get("stop_reason")) for m in messages
                        if m.get("run_id") == failed_run]

            closed = [("user", "talk", None, None), ("block_assistant", None, [], "cancelled")]
            # As a load balancer would: back in rotation once /health says so. After an outage this
            # long (~15 s) the pool's reconnect backoff may keep it 503 for some seconds more.
            await _wait_status(http, 200)
            after = (await http.get(f"/sessions/{sid}/history")).json()["messages"]
            assert after[:len(before)] == before and failed_rows(after) in ([], closed), after
            # Not left busy past the lease (3 s here); the host reconnected for the next turn.
            with trio.fail_after(10):
                while (again := await http.post(f"/sessions/{sid}/messages", json={"prompt": "again"})).status_code \
                        == 409:
                    await trio.sleep(0.2)
            assert again.status_code == 200, again.text
            final = (await http.get(f"/sessions/{sid}/history")).json()["messages"]
            assert failed_rows(final) in ([], closed) and final[:len(before)] == before
            assert [m["role"] for m in final[-2:]] == ["user", "block_assistant"] and final[-2]["content"] == "again"
