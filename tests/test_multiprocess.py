"""One realm, many processes: rkat-rest, rkat-rpc and the rkat CLI sharing one state root.

Every process here is a real child: a REST daemon, JSON-RPC servers driven over
their pipes, and CLI invocations. They share realm ``shared`` (sqlite, jsonl, or
postgres on the tests' real server, where each process is a host of its own: its
own ``RKAT_HOST_ID``, so no process can judge another by its pid) and must
behave as one host: sessions and config made anywhere are seen everywhere, a
turn running in one process makes the session busy for all, any surface's
interrupt stops it, and an SSE subscriber on the daemon follows a turn that
another process runs, with the same ``seq`` numbering and resume.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx2
import pytest
import trio
from mcp import Client, StdioServerParameters

from meerkat.realm import RealmPaths
from meerkat.store import open_store

from cli_process import Cli
from rpc_process import RpcProcess, child_env
from test_rest_server import RestServer

REALM = "shared"
RKAT_MCP = str(Path(sys.executable).with_name("rkat-mcp"))
#: A mock turn long enough (about 60 s) that only an interrupt ends it early.
SLOW = {"reply_words": 3000, "token_delay_ms": 20}
#: Seconds within which an interrupt must have stopped a SLOW turn of another process: half the owner's
#: default lease (RKAT_LEASE_SECS, 10 s), so a stop by lease expiry fails, and far short of the turn's own end.
INTERRUPTED_WITHIN = 5.0


@pytest.fixture(scope="module", params=["sqlite", "jsonl", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    """The shared realm's backend: the disk backends and postgres keep the promise across processes."""
    return request.param


@pytest.fixture(scope="module")
def database_url(backend: str, request: pytest.FixtureRequest) -> Iterator[str | None]:
    """For postgres, a fresh database of the tests' server for this module's realms (None otherwise)."""
    if backend != "postgres":
        yield None
        return
    server = request.getfixturevalue("postgres_server")
    name = f"multi_{secrets.token_hex(6)}"
    yield server.create_database(name)
    server.drop_database(name)


_hosts = itertools.count(1)


@pytest.fixture(scope="module")
def host_env(database_url: str | None) -> Callable[[str], dict[str, str]]:
    """``host_env(role)``: the environment making a child a host of its own on a postgres realm
    (the database and a host id no other process has); nothing for the disk backends."""
    def env(role: str) -> dict[str, str]:
        if database_url is None:
            return {}
        return {"RKAT_DATABASE_URL": database_url, "RKAT_HOST_ID": f"{role}-{next(_hosts)}"}
    return env


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory, backend: str) -> Path:
    return tmp_path_factory.mktemp(f"shared-root-{backend}")


@pytest.fixture(scope="module")
def rest(root: Path, backend: str, host_env):
    """The daemon creates the realm with its backend; every other process just names the realm."""
    with RestServer("--realm", REALM, "--realm-backend", backend, "--state-root", str(root),
                    env=host_env("rest")) as server:
        yield server


@pytest.fixture
def rpc(root: Path, host_env):
    process = RpcProcess("--realm", REALM, state_root=root, env=child_env(root, **host_env("rpc")))
    yield process
    process.stop()


@pytest.fixture
def cli(root: Path, tmp_path: Path, host_env) -> Cli:
    return Cli(root, tmp_path, env=host_env("cli"))


def rkat(cli: Cli, *args: str, expect: int | None = 0) -> Any:
    """``rkat -r shared ARGS`` (realm options may follow the command)."""
    return cli(*args, "-r", REALM, expect=expect)


def start_slow_turn(rpc: RpcProcess, session_id: str, params: dict[str, Any] = SLOW) -> str:
    """Send ``turn/start`` for a long turn and return its request id once its first delta arrived."""
    request_id = rpc.request("turn/start", {"session_id": session_id, "prompt": "a long one",
                                            "provider_params": params})
    while True:
        line = rpc.read()
        if line.get("method") == "session/event" and line["params"]["event"]["payload"]["type"] == "text_delta":
            return request_id
        assert "id" not in line, f"the turn ended before streaming: {line}"


def read_deltas(rpc: RpcProcess, count: int) -> None:
    """Read the running turn's event notifications until ``count`` more text deltas have come."""
    while count:
        line = rpc.read()
        assert "id" not in line, f"the turn ended early: {line}"
        count -= line["params"]["event"]["payload"]["type"] == "text_delta"


def events_until_response(rpc: RpcProcess, request_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    notes, response = rpc.until_response(request_id)
    return [n["params"]["event"] for n in notes if n.get("method") == "session/event"], response


async def test_sessions_and_turns_made_anywhere_are_seen_everywhere(rest, rpc, cli):
    made_by_rpc = rpc.result("session/create", {"prompt": "from rpc", "labels": {"by": "rpc"}})["session_id"]
    async with rest.client() as http:
        created = await http.post("/sessions", json={"prompt": "from rest", "labels": {"by": "rest"}})
        assert created.status_code == 200, created.text
        made_by_rest = created.json()["session_id"]
        made_by_cli = rkat(cli, "run", "--label", "by=cli", "--output", "json", "from cli").json()["session_id"]

        # Every process lists all three.
        listed_by_rest = {s["session_id"] for s in (await http.get("/sessions?limit=1000")).json()["sessions"]}
        listed_by_rpc = {s["session_id"] for s in rpc.result("session/list", {"limit": 1000})["sessions"]}
        listed_by_cli = {s["session_id"] for s in rkat(cli, "session", "list", "--limit", "1000",
                                                       "--format", "json").json()["sessions"]}
        for listing in (listed_by_rest, listed_by_rpc, listed_by_cli):
            assert {made_by_rpc, made_by_rest, made_by_cli} <= listing

        # A turn through one process is read at once by the others, even where the session's actor is alive.
        assert (await http.get(f"/sessions/{made_by_rpc}")).json()["message_count"] == 2
        rkat(cli, "run", "--resume", made_by_rpc, "second, from cli")
        read = (await http.get(f"/sessions/{made_by_rpc}")).json()
        assert read["message_count"] == 4
        assert read["last_assistant_text"] == "Mock reply to: second, from cli"
        third = await http.post(f"/sessions/{made_by_rpc}/messages", json={"prompt": "third, from rest"})
        assert third.status_code == 200, third.text
        via_rpc = rpc.result("session/read", {"session_id": made_by_rpc})
        assert via_rpc["message_count"] == 6
        assert via_rpc["last_assistant_text"] == "Mock reply to: third, from rest"
        history = rpc.result("session/history", {"session_id": made_by_rpc})["messages"]
        users = [m["content"] for m in history if m["role"] == "user"]
        assert users == ["from rpc", "second, from cli", "third, from rest"]


async def test_a_turn_in_one_process_makes_the_session_busy_everywhere(rest, rpc, cli):
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    request_id = await trio.to_thread.run_sync(start_slow_turn, rpc, session_id)
    async with rest.client() as http:
        busy = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "me too"})
        assert busy.status_code == 409
        assert busy.json()["code"] == "SESSION_BUSY"
        read = (await http.get(f"/sessions/{session_id}")).json()
        assert read["is_active"] is True
        listed = {s["session_id"]: s for s in (await http.get("/sessions?limit=1000")).json()["sessions"]}
        assert listed[session_id]["is_active"] is True
        refused = rkat(cli, "run", "--resume", session_id, "and me", expect=None)
        assert refused.code == 11, refused.err
        assert "busy" in refused.err.lower()

        # The REST daemon's interrupt stops the turn running in the rpc process, and answers after it ended.
        asked = time.monotonic()
        stopped = await http.post(f"/sessions/{session_id}/interrupt")
        answered = time.monotonic() - asked
        assert stopped.status_code == 200, stopped.text
        assert stopped.json()["interrupted"] is True
        events, response = await trio.to_thread.run_sync(events_until_response, rpc, request_id)
        ended = time.monotonic() - asked
        assert response["error"]["data"]["error_code"] == "REQUEST_CANCELLED", response
        assert events[-1]["payload"]["type"] == "run_failed"
        # Stopped by the interrupt, not by the owner's lease running out (10 s) nor by the turn ending
        # (~60 s). Issue 8's 1 s is a speed figure, measured by bench/multiprocess.py (milliseconds there):
        # a wall-clock bound this tight here failed on a loaded CI machine.
        assert answered < INTERRUPTED_WITHIN and ended < INTERRUPTED_WITHIN, (answered, ended)
        after = (await http.get(f"/sessions/{session_id}")).json()
        assert after["is_active"] is False
        assert after["message_count"] == 4  # the interrupted turn keeps the prompt and the partial answer
        again = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "now me"})
        assert again.status_code == 200, again.text


async def test_cli_interrupt_stops_a_turn_of_another_process(rest, rpc, cli):
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    request_id = await trio.to_thread.run_sync(start_slow_turn, rpc, session_id)
    result = await trio.to_thread.run_sync(lambda: rkat(cli, "session", "interrupt", session_id))
    assert result.out == f"Interrupted session: {session_id}\n"  # answered once the rpc turn had ended
    events, response = await trio.to_thread.run_sync(events_until_response, rpc, request_id)
    assert response["error"]["data"]["error_code"] == "REQUEST_CANCELLED", response
    partial = "".join(e["payload"]["delta"] for e in events if e["payload"]["type"] == "text_delta")
    history = rpc.result("session/history", {"session_id": session_id})["messages"]
    assert history[-1]["role"] == "block_assistant" and history[-1]["stop_reason"] == "cancelled"
    stored = "".join(b["data"].get("text", "") for b in history[-1]["blocks"])
    # What the user saw was kept: every delta after the first (read by start_slow_turn), and that one.
    assert stored.endswith(partial) and len(stored) > len(partial)


async def _sse_events(http: httpx2.AsyncClient, path: str, until_type: str, got: list[dict[str, Any]],
                      ready: trio.Event, headers: dict[str, str] | None = None) -> None:
    with trio.fail_after(30):
        await _read_sse(http, path, until_type, got, ready, headers)


async def _read_sse(http: httpx2.AsyncClient, path: str, until_type: str, got: list[dict[str, Any]],
                    ready: trio.Event, headers: dict[str, str] | None) -> None:
    async with http.stream("GET", path, headers=headers or {}) as response:
        assert response.status_code == 200
        ready.set()
        event_id = None
        async for line in response.aiter_lines():
            if line.startswith("id:"):
                event_id = int(line[3:].strip())
            elif line.startswith("data:") and event_id is not None:
                body = json.loads(line[5:])
                got.append({"id": event_id, **body})
                event_id = None
                if body["payload"]["type"] == until_type:
                    return


async def test_sse_on_the_daemon_follows_a_turn_run_by_another_process(rest, rpc, cli):
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    async with rest.client() as http:
        seen: list[dict[str, Any]] = []
        ready = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sse_events, http, f"/sessions/{session_id}/events", "run_completed", seen, ready)
            await ready.wait()
            await trio.sleep(0.3)  # the subscription is in place before the turn starts
            events, response = await trio.to_thread.run_sync(
                rpc.call, "turn/start", {"session_id": session_id, "prompt": "watched",
                                         "provider_params": {"reply_words": 40, "token_delay_ms": 5}})
        assert "result" in response, response
        rpc_events = [e for e in (n["params"]["event"] for n in events) if True]
        assert [e["seq"] for e in seen] == [e["seq"] for e in rpc_events]
        assert [e["id"] for e in seen] == [e["seq"] for e in seen]
        assert [e["payload"]["type"] for e in seen] == [e["payload"]["type"] for e in rpc_events]
        text = "".join(e["payload"]["delta"] for e in seen if e["payload"]["type"] == "text_delta")
        assert text == response["result"]["text"]

        # Resume from the middle of the foreign turn: the daemon replays the rest, same ids.
        middle = seen[len(seen) // 2]["id"]
        resumed: list[dict[str, Any]] = []
        await _sse_events(http, f"/sessions/{session_id}/events", "run_completed", resumed, trio.Event(),
                          headers={"Last-Event-ID": str(middle)})
        assert [e["id"] for e in resumed] == [e["id"] for e in seen if e["id"] > middle]

        # A turn run by the CLI is followed live too, numbered after the rpc one.
        cli_seen: list[dict[str, Any]] = []
        ready = trio.Event()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_sse_events, http, f"/sessions/{session_id}/events", "run_completed", cli_seen,
                               ready)
            await ready.wait()
            await trio.sleep(0.3)
            await trio.to_thread.run_sync(lambda: rkat(cli, "run", "--resume", session_id, "from the cli"))
        assert cli_seen[0]["payload"]["type"] == "run_started"
        assert cli_seen[0]["id"] == seen[-1]["id"] + 1
        assert [e["id"] for e in cli_seen] == list(range(cli_seen[0]["id"], cli_seen[-1]["id"] + 1))
        assert "".join(e["payload"]["delta"] for e in cli_seen if e["payload"]["type"] == "text_delta") \
            == "Mock reply to: from the cli"


def _patch_100(root: Path, backend: str, tag: str, env: dict[str, str]) -> int:
    """One rkat-rpc process applying 100 patches with expected_generation, retrying conflicts."""
    process = RpcProcess("--realm", "config-race", "--realm-backend", backend, state_root=root,
                         env=child_env(root, **env))
    conflicts = 0
    try:
        for i in range(100):
            while True:
                generation = process.result("config/get", {})["generation"]
                _, response = process.call("config/patch", {"patch": {"agent": {"provider_params": {
                    f"{tag}_{i}": i}}}, "expected_generation": generation})
                if "result" in response:
                    assert response["result"]["generation"] == generation + 1
                    break
                assert response["error"]["data"]["error_code"] == "CONFIG_GENERATION_CONFLICT", response
                conflicts += 1
    finally:
        process.stop()
    return conflicts


async def test_four_processes_patching_config_end_at_generation_400(root, backend, cli, host_env):
    conflicts: list[int] = []

    async def writer(tag: str) -> None:
        conflicts.append(await trio.to_thread.run_sync(_patch_100, root, backend, tag, host_env("writer")))

    start = cli("config", "get", "--format", "json", "--with-generation", "-r", "config-race",
                "--realm-backend", backend).json()["generation"]
    async with trio.open_nursery() as nursery:
        for tag in "abcd":
            nursery.start_soon(writer, tag)
    config = cli("config", "get", "--format", "json", "--with-generation", "-r", "config-race").json()
    assert config["generation"] == start + 400
    params = config["config"]["agent"]["provider_params"]
    assert params == {f"{tag}_{i}": i for tag in "abcd" for i in range(100)}
    print(f"4 x 100 config patches across processes: {sum(conflicts)} conflicts retried")


async def test_a_killed_owner_frees_the_session_at_once(rest, root, backend, host_env):
    """On one machine a dead pid frees the session at once; across hosts (postgres) its lease does."""
    lease = 2.0
    owner = RpcProcess("--realm", REALM, state_root=root,
                       env=child_env(root, RKAT_LEASE_SECS=str(lease), **host_env("owner")))
    try:
        session_id = owner.result("session/create", {"prompt": "hello"})["session_id"]
        await trio.to_thread.run_sync(start_slow_turn, owner, session_id)
    finally:
        owner.proc.kill()
        owner.stop()
    killed_at = time.monotonic()
    async with rest.client() as http:
        # The owner's pid is gone: the next turn closes its run as interrupted and goes ahead.
        after = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "still usable"})
        if backend == "postgres":  # another host's pid says nothing: busy until the lease runs out
            assert after.status_code == 409, after.text
            while after.status_code == 409:
                assert time.monotonic() - killed_at < lease + 5, "the session stayed busy past its lease"
                await trio.sleep(0.1)
                after = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "still usable"})
        assert after.status_code == 200, after.text
        history = (await http.get(f"/sessions/{session_id}/history")).json()["messages"]
        assert [m["role"] for m in history] == ["user", "block_assistant"] * 3
        assert history[3]["stop_reason"] == "cancelled"
        assert history[5]["blocks"][0]["data"]["text"] == "Mock reply to: still usable"


async def test_a_hung_owner_loses_the_session_when_its_lease_expires(rest, root, host_env):
    lease = 1.5
    owner = RpcProcess("--realm", REALM, state_root=root,
                       env=child_env(root, RKAT_LEASE_SECS=str(lease), **host_env("owner")))
    try:
        session_id = owner.result("session/create", {"prompt": "hello"})["session_id"]
        request_id = await trio.to_thread.run_sync(start_slow_turn, owner, session_id)
        os.kill(owner.proc.pid, signal.SIGSTOP)  # alive but silent: only the lease can free the session
        stopped_at = time.monotonic()
        async with rest.client() as http:
            first = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "too early"})
            assert first.status_code == 409
            while True:
                attempt = await http.post(f"/sessions/{session_id}/messages", json={"prompt": "after the lease"})
                if attempt.status_code == 200:
                    break
                assert attempt.status_code == 409, attempt.text
                assert time.monotonic() - stopped_at < lease + 10, "the lease never expired"
                await trio.sleep(0.2)
            waited = time.monotonic() - stopped_at
            assert waited >= lease - 0.5  # not before the lease could have run out
            os.kill(owner.proc.pid, signal.SIGCONT)
            # The woken owner finds its lease gone: its turn fails, its late commit is refused.
            _, response = await trio.to_thread.run_sync(owner.until_response, request_id)
            assert "error" in response, response
            history = (await http.get(f"/sessions/{session_id}/history")).json()["messages"]
            assert [m["role"] for m in history] == ["user", "block_assistant"] * 3
            assert [m["content"] for m in history if m["role"] == "user"] == ["hello", "a long one",
                                                                             "after the lease"]
            assert history[3]["stop_reason"] == "cancelled"
            read = (await http.get(f"/sessions/{session_id}")).json()
            assert read["is_active"] is False and read["message_count"] == 6
    finally:
        if owner.proc.poll() is None:
            os.kill(owner.proc.pid, signal.SIGCONT)
        owner.stop()


async def test_a_session_archived_elsewhere_is_gone_for_a_process_that_had_it_open(rest, rpc):
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    assert rpc.result("session/read", {"session_id": session_id})["message_count"] == 2  # its actor is alive here
    async with rest.client() as http:
        archived = await http.delete(f"/sessions/{session_id}")
        assert archived.status_code == 200, archived.text
    for method, params in (("session/read", {"session_id": session_id}),
                           ("turn/start", {"session_id": session_id, "prompt": "still there?"})):
        error = rpc.error(method, params)
        assert error["data"]["error_code"] == "SESSION_NOT_FOUND", (method, error)


async def test_mcp_and_another_rpc_process_see_and_stop_a_foreign_turn(rest, rpc, root, host_env):
    """The remaining surfaces' interrupts: rkat-mcp's tool, through the official MCP client, and a second rkat-rpc."""
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    request_id = await trio.to_thread.run_sync(start_slow_turn, rpc, session_id)
    server = StdioServerParameters(command=RKAT_MCP, args=["--realm", REALM, "--state-root", str(root)],
                                   env={**{k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")},
                                        **host_env("mcp")})
    async with Client(server) as mcp:
        # rkat-mcp follows the turn only once a stream is opened below: by then the turn has published
        # more than the stream's 256-event queue holds (as it has when rkat-mcp is slow to start).
        await trio.to_thread.run_sync(read_deltas, rpc, 300)
        read = await mcp.call_tool("meerkat_read", {"session_id": session_id})
        assert json.loads(read.content[0].text)["state"]["is_active"] is True
        busy = await mcp.call_tool("meerkat_resume", {"session_id": session_id, "prompt": "me too"})
        assert busy.is_error and json.loads(busy.content[0].text)["code"] == "SESSION_BUSY"
        # An MCP event stream opened now follows the rpc process's turn too, from its start: what the turn
        # published before rkat-mcp followed it comes as a replay (however long rkat-mcp took to start,
        # more than the stream's 256-event queue holds included), with no stream_truncated marker.
        opened = json.loads((await mcp.call_tool("meerkat_event_stream_open", {
            "session_id": session_id})).content[0].text)
        with trio.fail_after(30):
            batch = {"events": []}
            while not batch["events"]:
                batch = json.loads((await mcp.call_tool("meerkat_event_stream_read", {
                    "stream_id": opened["stream_id"], "timeout_ms": 2000})).content[0].text)
        kinds = [e["payload"]["type"] for e in batch["events"]]
        assert kinds[0] == "run_started" and "text_delta" in kinds and "run_completed" not in kinds, kinds
        stopped = json.loads((await mcp.call_tool("meerkat_interrupt", {"session_id": session_id})).content[0].text)
        assert stopped["interrupted"] is True and stopped["was_running"] is True and stopped["run_id"]
        _, response = await trio.to_thread.run_sync(rpc.until_response, request_id)
        assert response["error"]["data"]["error_code"] == "REQUEST_CANCELLED", response

        # Now the other way round: the turn runs in rkat-mcp's process, a second rkat-rpc stops it.
        other = RpcProcess("--realm", REALM, state_root=root, env=child_env(root, **host_env("rpc")))
        try:
            async with trio.open_nursery() as nursery:
                outcome: dict[str, Any] = {}

                async def long_turn() -> None:
                    outcome["result"] = await mcp.call_tool("meerkat_resume", {
                        "session_id": session_id, "prompt": "long", "provider_params": SLOW})
                nursery.start_soon(long_turn)
                with trio.fail_after(30):
                    while not (await trio.to_thread.run_sync(other.result, "session/read",
                                                             {"session_id": session_id}))["is_active"]:
                        await trio.sleep(0.05)
                answer = await trio.to_thread.run_sync(other.result, "turn/interrupt", {"session_id": session_id})
                assert answer["interrupted"] is True
            result = outcome["result"]
            assert result.is_error and json.loads(result.content[0].text)["code"] == "REQUEST_CANCELLED"
        finally:
            other.stop()

        # Archived by another process: the MCP event stream on it ends, as for a local archive.
        async with rest.client() as http:
            assert (await http.delete(f"/sessions/{session_id}")).status_code == 200
        with trio.fail_after(30):
            status = "events"
            while status != "closed":
                read = json.loads((await mcp.call_tool("meerkat_event_stream_read", {
                    "stream_id": opened["stream_id"], "timeout_ms": 2000, "max_events": 1000})).content[0].text)
                status = read["status"]


async def test_the_live_link_shrugs_off_strangers(rest, rpc, root, backend):
    """Garbage, a wrong token or a flood on an owner's live port: dropped, and the turn goes on unharmed."""
    if backend == "postgres":
        pytest.skip("a postgres realm has no live port: its hosts meet in the database (test_postgres_hosts.py)")
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    request_id = await trio.to_thread.run_sync(start_slow_turn, rpc, session_id)
    paths = RealmPaths.for_realm(root, REALM)
    store = open_store(backend, sqlite_path=paths.sessions_sqlite_path, jsonl_dir=paths.sessions_jsonl_dir)
    try:
        run = store.get_run(store.get_session(session_id).active_run_id)
    finally:
        store.close()
    host, port = run.live_endpoint.rsplit(":", 1)
    assert host == "127.0.0.1"
    forged = json.dumps({"token": "guess", "op": "interrupt", "session_id": session_id, "run_id": run.run_id})
    for probe in (b"\x00\xffnot json\n", forged.encode() + b"\n", b"x" * 100_000, b'{"op": "push"}\n'):
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            try:
                await stream.send_all(probe)
                with trio.fail_after(10):
                    assert await stream.receive_some(1024) == b""  # closed without an answer
            except trio.BrokenResourceError:
                pass  # closed while we were still sending the flood
    async with rest.client() as http:
        read = (await http.get(f"/sessions/{session_id}")).json()
        assert read["is_active"] is True  # the forged interrupt did nothing
        stopped = await http.post(f"/sessions/{session_id}/interrupt")
        assert stopped.json()["interrupted"] is True
    _, response = await trio.to_thread.run_sync(rpc.until_response, request_id)
    assert response["error"]["data"]["error_code"] == "REQUEST_CANCELLED", response


async def test_the_database_channels_shrug_off_strangers(rest, rpc, backend, database_url):
    """The postgres counterpart: garbage, forged requests and floods NOTIFYed on the realm's live channel and
    on the owner's channel are ignored; the turn goes on unharmed and the real interrupt still stops it."""
    if backend != "postgres":
        pytest.skip("file realms have no database channels (the live link's strangers test is above)")
    import psycopg

    from meerkat.store.postgres_live import live_channel, owner_channel

    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    request_id = await trio.to_thread.run_sync(start_slow_turn, rpc, session_id)
    store = open_store("postgres", database_url=database_url, realm_id=REALM)
    try:
        run = store.get_run(store.get_session(session_id).active_run_id)
    finally:
        store.close()
    flood = "x" * 7_900  # a NOTIFY payload's limit is 8,000 bytes
    probes = {
        owner_channel(REALM, run.owner): [
            "not json", "", flood, '{"op": "interrupt"}', json.dumps({"op": "push", "session_id": session_id}),
            json.dumps({"op": "interrupt", "session_id": session_id, "run_id": "run-that-is-not-running"}),
            json.dumps({"op": "interrupt", "session_id": 7, "run_id": [run.run_id]})],
        live_channel(REALM): ["", " ", flood, f"{session_id} run-that-is-not-running", f"no-such-session {run.run_id}",
                              "\u00e9\u2603 \U0001f600"],
    }

    def notify_all() -> None:
        with psycopg.connect(database_url, autocommit=True) as conn:
            for channel, payloads in probes.items():
                for payload in payloads:
                    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))

    await trio.to_thread.run_sync(notify_all)
    await trio.sleep(0.5)  # time for every host to hear them
    async with rest.client() as http:
        read = (await http.get(f"/sessions/{session_id}")).json()
        assert read["is_active"] is True  # nothing forged stopped it
        stopped = await http.post(f"/sessions/{session_id}/interrupt")
        assert stopped.json()["interrupted"] is True
    _, response = await trio.to_thread.run_sync(rpc.until_response, request_id)
    assert response["error"]["data"]["error_code"] == "REQUEST_CANCELLED", response
    assert rpc.proc.poll() is None and "Traceback" not in rpc.stderr.decode(errors="replace")
    assert "Traceback" not in rest.stderr()


async def test_a_config_change_in_one_process_applies_to_the_next_session_of_another(rest, rpc):
    async with rest.client() as http:
        before = await http.post("/sessions", json={"prompt": "warm up"})  # the daemon has read its config
        assert before.status_code == 200
        generation = rpc.result("config/get", {})["generation"]
        rpc.result("config/patch", {"patch": {"agent": {"system_prompt": "Answer like a pirate."}},
                                    "expected_generation": generation})
        try:
            created = await http.post("/sessions", json={"prompt": "at once"})  # no wait for any poll
            history = (await http.get(f"/sessions/{created.json()['session_id']}/history")).json()["messages"]
            assert history[0] == {**history[0], "role": "system", "content": "Answer like a pirate."}
        finally:
            rpc.result("config/patch", {"patch": {"agent": {"system_prompt": None}}})


async def test_a_streaming_rkat_run_is_stopped_from_the_daemon(rest, root, tmp_path, host_env):
    """The owner is a CLI process streaming to a terminal; the daemon's interrupt ends it, answer kept."""
    cli = Cli(root, tmp_path, env={"RKAT_MOCK_TOKEN_DELAY_MS": "100", **host_env("cli")})
    session_id = rkat(cli, "run", "--output", "json", "hello").json()["session_id"]
    owner = subprocess.Popen(cli.argv("run", "-r", REALM, "--resume", session_id, "--stream",
                                      "one two three four five six seven eight nine ten"),
                             cwd=tmp_path, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        async with rest.client() as http:
            with trio.fail_after(30):
                while not (await http.get(f"/sessions/{session_id}")).json()["is_active"]:
                    await trio.sleep(0.05)
            stopped = await http.post(f"/sessions/{session_id}/interrupt")
            assert stopped.json()["interrupted"] is True
            out, err = await trio.to_thread.run_sync(owner.communicate, None, 30)
            assert owner.returncode == 14, err  # REQUEST_CANCELLED, not Ctrl-C's 130
            assert "Interrupted from elsewhere" in err and f"rkat run --resume {session_id[-8:]}" in err
            history = (await http.get(f"/sessions/{session_id}/history")).json()["messages"]
            answer = "".join(b["data"]["text"] for b in history[-1]["blocks"])
            assert history[-1]["stop_reason"] == "cancelled" and answer and out.startswith(answer)
    finally:
        if owner.poll() is None:
            owner.kill()
            owner.communicate()


async def test_an_rpc_event_stream_follows_a_turn_run_by_another_process(rpc, root, host_env):
    """``session/stream_open`` on one rkat-rpc, a turn on another: the stream carries it live, owner's seqs."""
    session_id = rpc.result("session/create", {"prompt": "hello"})["session_id"]
    follower = RpcProcess("--realm", REALM, state_root=root, env=child_env(root, **host_env("follower")))
    try:
        stream_id = follower.result("session/stream_open", {"session_id": session_id})["stream_id"]
        events, response = await trio.to_thread.run_sync(
            rpc.call, "turn/start", {"session_id": session_id, "prompt": "followed",
                                     "provider_params": {"reply_words": 30, "token_delay_ms": 5}})
        assert "result" in response, response
        owner_events = [n["params"]["event"] for n in events if n.get("method") == "session/event"]
        streamed: list[dict[str, Any]] = []
        while not streamed or streamed[-1]["event"]["payload"]["type"] != "run_completed":
            message = await trio.to_thread.run_sync(follower.read)
            assert message.get("method") == "session/stream_event", message
            streamed.append(message["params"])
        assert {p["stream_id"] for p in streamed} == {stream_id}
        assert [p["event"]["seq"] for p in streamed] == [e["seq"] for e in owner_events]
        assert [p["event"]["event_id"] for p in streamed] == [e["event_id"] for e in owner_events]
    finally:
        follower.stop()
