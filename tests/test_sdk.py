"""Our SDK (``meerkat.MeerkatClient``) against a real ``rkat-rpc`` child, under trio and under asyncio.

Each scenario is written once on anyio and run on both event loops.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import anyio
import pytest

from meerkat import (
    BinaryNotFound,
    ClientClosed,
    ConnectionClosed,
    MeerkatClient,
    RunCompleted,
    RunStarted,
    StreamNotConsumed,
    TextComplete,
    TextDelta,
    ToolCallRequested,
    ToolResultReceived,
    TurnCompleted,
    TurnStarted,
    VersionMismatch,
)
from meerkat.errors import (
    ConfigGenerationConflict,
    ErrorCode,
    InvalidParams,
    MeerkatError,
    RequestCancelled,
    SessionBusy,
    SessionNotFound,
)
from meerkat.transcript import BlockAssistantMessage, ToolResultsMessage, UserMessage

from rpc_process import RKAT_RPC, write_wrapper

STUB = Path(__file__).resolve().parent / "sdk_drivers" / "stub_rpc.py"
SLOW = {"reply_words": 400, "token_delay_ms": 20}
BACKENDS = ["trio", "asyncio"]


@pytest.fixture(params=BACKENDS)
def run(request):
    """Run an async scenario on one event loop."""
    return lambda fn, *args: anyio.run(fn, *args, backend=request.param)


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("RKAT_STATE_ROOT", str(tmp_path / "fresh"))
    monkeypatch.delenv("MEERKAT_BIN_PATH", raising=False)


async def _first_delta(stream) -> None:
    async for event in stream:
        if isinstance(event, TextDelta):
            return


async def sessions_scenario(root: Path) -> None:
    client = await MeerkatClient().connect(realm_id="sdk", realm_backend="sqlite", state_root=root)
    try:
        assert client.contract_version == "0.9.6" and client.has_capability("sessions")
        assert not client.has_capability("shell")
        session = await client.create_session("hello", labels={"team": "a"})
        assert session.text == "Mock reply to: hello" and session.turns == 1 and session.usage.input_tokens > 0
        assert str(uuid.UUID(session.id)) == session.id and session.ref == f"sdk:{session.id}"
        result = await session.turn("again", max_tokens=2)
        assert result.text == "Mock reply " and session.last_result is result  # max_tokens=2 words

        # a streamed turn: typed events, live (the session is still running at the first delta)
        async with session.stream("tell me", provider_params={"reply_words": 30, "token_delay_ms": 5}) as events:
            seen = []
            async for event in events:
                if isinstance(event, TextDelta) and not any(isinstance(e, TextDelta) for e in seen):
                    assert (await client.read_session(session.id)).is_active is True  # mid-turn: live
                seen.append(event)
        kinds = [type(e) for e in seen]
        assert kinds[:2] == [RunStarted, TurnStarted] and kinds[-3:] == [TextComplete, TurnCompleted, RunCompleted]
        assert "".join(e.delta for e in seen if isinstance(e, TextDelta)) == events.result.text
        assert session.last_result is events.result

        # streaming create: also live, and the stream knows its session
        stream = client.create_session_streaming("a story", provider_params=SLOW, labels={"team": "b"})
        with pytest.raises(StreamNotConsumed):
            stream.result
        async with stream:
            await _first_delta(stream)
            assert (await client.read_session(stream.session_id)).is_active is True
            await stream.session.interrupt()
            with pytest.raises(RequestCancelled):
                async for _ in stream:
                    pass

        listed = await client.list_sessions(labels={"team": "a"})
        assert [s.session_id for s in listed] == [session.id] and listed[0].labels == {"team": "a"}
        everything = await client.list_sessions()
        assert len(everything) == 2 and (await client.list_sessions(limit=1, offset=1))[0] == everything[1]

        details = await client.read_session(session.id)
        assert details.model == "mock" and details.provider == "mock" and details.is_active is False
        assert details.last_assistant_text == session.text
        page = await client.read_session_history(session.id, offset=0, limit=2)
        assert page.has_more is True and page.message_count == details.message_count == 6
        assert isinstance(page.messages[0], UserMessage) and isinstance(page.messages[1], BlockAssistantMessage)
        assert page.messages[1].blocks[0].data["text"] == "Mock reply to: hello"
        assert len((await session.history()).messages) == 6

        with pytest.raises(SessionNotFound) as missing:
            await client.read_session(str(uuid.uuid4()))
        assert missing.value.code is ErrorCode.SESSION_NOT_FOUND and missing.value.spec.jsonrpc_code == -32001
        with pytest.raises(InvalidParams, match="limit"):
            await client.list_sessions(limit=-5)

        await session.archive()
        for call in (session.read(), session.turn("x"), session.archive()):
            with pytest.raises(SessionNotFound):
                await call
        assert len((await session.history()).messages) == 6  # an archived session's history stays readable
        assert session.id not in {s.session_id for s in await client.list_sessions()}
    finally:
        await client.close()


async def seed_shapes_scenario() -> None:
    """What the seed's readers write: ``match`` on typed events, ``result.session_id``/``usage``, ``collect*()``."""
    async with MeerkatClient() as client:
        stream = client.create_session_streaming("Tell me a story")
        text, stops, ends = [], [], []
        async with stream:
            async for event in stream:
                match event:
                    case TextDelta(delta=chunk):
                        text.append(chunk)
                    case TurnCompleted(stop_reason=reason):
                        stops.append(reason)
                    case RunCompleted(result=final):
                        ends.append(final)
        result = stream.result
        assert "".join(text) == result.text == "Mock reply to: Tell me a story" == ends[0]
        assert stops == ["end_turn"] and result.session_id == stream.session_id
        assert result.usage.input_tokens > 0 and result.usage.output_tokens > 0
        session = stream.session
        assert session.id == result.session_id and session.text == result.text
        collected = await session.stream("again").collect()
        assert collected.text == "Mock reply to: again" and collected.session_id == session.id
        streamed, last = await session.stream("once more", provider_params={"reply_words": 5}).collect_text()
        assert streamed == last.text and len(streamed.split()) == 5 and session.last_result is last


async def config_scenario(root: Path) -> None:
    realm = {"realm_id": "cfg", "realm_backend": "sqlite", "state_root": root}
    first = await MeerkatClient().connect(**realm)
    second = await MeerkatClient().connect(**realm)
    try:
        config = await first.get_config()
        generation = config["generation"]
        assert config["realm_id"] == "cfg" and config["backend"] == "sqlite"
        written = await first.set_config({"agent": {"max_turns": 5}}, expected_generation=generation)
        assert written["generation"] == generation + 1
        with pytest.raises(ConfigGenerationConflict) as conflict:
            await second.patch_config({"agent": {"max_turns": 6}}, expected_generation=generation)
        assert conflict.value.expected == generation and conflict.value.current == generation + 1
        assert conflict.value.spec.jsonrpc_code == -32602
        patched = await second.patch_config({"agent": {"max_tokens_per_turn": 2048}},
                                            expected_generation=generation + 1)
        assert patched["config"]["agent"]["max_turns"] == 5
        with pytest.raises(InvalidParams, match=r"unknown key 'agent\.max_turnz'.*did you mean 'agent\.max_turns'"):
            await first.patch_config({"agent": {"max_turnz": 11}})
        removed = await first.patch_config({"agent": {"max_turns": None}})
        assert removed["config"]["agent"]["max_turns"] == 100
        assert (await second.get_config())["config"]["agent"]["max_tokens_per_turn"] == 2048
        catalog = await first.get_models_catalog()
        assert catalog["contract_version"] == {"major": 0, "minor": 9, "patch": 6}
        assert "mock" in {p["provider"] for p in catalog["providers"]}
    finally:
        await first.close()
        await second.close()


async def context_root_scenario(tmp: Path) -> None:
    """``connect(context_root=...)`` serves a realm the CLI keeps in that project; without it, the global root."""
    project = tmp / "project"
    (project / ".rkat").mkdir(parents=True)
    (project / "src").mkdir()
    async with await MeerkatClient().connect(realm_id="proj", state_root=project / ".rkat" / "realms") as client:
        kept = await client.create_session("kept in the project")
    async with await MeerkatClient().connect(realm_id="proj", context_root=project / "src",
                                             user_config_root=tmp) as client:
        assert [s.session_id for s in await client.list_sessions()] == [kept.id]
    async with await MeerkatClient().connect(realm_id="proj") as client:  # $XDG_DATA_HOME/meerkat/realms
        assert await client.list_sessions() == []
    with pytest.raises(ConnectionClosed, match="is not a directory"):
        await MeerkatClient().connect(context_root=tmp / "missing")


async def tools_scenario() -> None:
    client = MeerkatClient()
    keys = []

    @client.tool("search", description="Search the docs",
                 input_schema={"type": "object", "properties": {"q": {"type": "string"}}})
    async def search(arguments, dedupe_key=None):
        keys.append(dedupe_key)
        sessions = await client.list_sessions()  # a nested call while the turn waits on us
        return f"{len(sessions)} hits for {arguments['q']}"

    async with client:
        session = await client.create_session('tool:search{"q": "otters"}')
        assert session.text == "Tool search returned: 1 hits for otters" and session.tool_calls == 1
        assert keys[0].call_id.startswith("toolu_") and keys[0].round == 0 and len(keys[0].call_digest) == 64

        @client.tool("blocks")
        def blocks(arguments):  # plain functions work too
            return [{"type": "text", "text": "block one"}]

        @client.tool("broken")
        async def broken(arguments):
            raise RuntimeError("kaput")

        result = await session.turn("tool:blocks")
        assert result.text == "Tool blocks returned: block one"
        async with session.stream("tool:broken") as events:
            seen = [e async for e in events]
        received = [e for e in seen if isinstance(e, ToolResultReceived)][0]
        assert received.is_error is True and received.content == [{"type": "text", "text": "Tool error: kaput"}]
        assert [e.name for e in seen if isinstance(e, ToolCallRequested)] == ["broken"]

        # The server can know tools this client has no handler for (registered raw here).
        await client._connection().request("tools/register", {"tools": [{"name": "ghost"}]})
        result = await session.turn("tool:ghost")
        assert result.text == "Tool ghost returned: Unknown tool: ghost"
        history = await session.history()
        tool_rows = [m for m in history.messages if isinstance(m, ToolResultsMessage)]
        assert [r.results[0].is_error for r in tool_rows] == [False, False, True, True]
        assert client.tool_registration_errors == []


async def busy_and_interrupt_scenario() -> None:
    async with MeerkatClient() as client:
        session = await client.create_session("hi")
        outcome = {}
        started = anyio.Event()

        async def long_turn():
            try:
                async with session.stream("long", provider_params=SLOW) as events:
                    async for event in events:
                        if isinstance(event, TextDelta):
                            started.set()
            except RequestCancelled as exc:
                outcome["error"] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(long_turn)
            await started.wait()
            with pytest.raises(SessionBusy) as busy:
                await session.turn("me too")
            assert busy.value.session_id == session.id and busy.value.running_run_id
            assert await session.interrupt() is None
        assert outcome["error"].code is ErrorCode.REQUEST_CANCELLED
        rows = (await session.history()).messages
        assert rows[-1].stop_reason == "cancelled" and rows[-1].blocks[0].data["text"].startswith("lorem")
        await session.interrupt()  # idle: a no-op
        with pytest.raises(SessionNotFound):
            await client._interrupt(str(uuid.uuid4()))


async def failures_scenario(tmp: Path) -> None:
    os.environ["MEERKAT_BIN_PATH"] = str(tmp / "nowhere" / "rkat-rpc")
    try:
        with pytest.raises(BinaryNotFound, match="MEERKAT_BIN_PATH"):
            await MeerkatClient().connect()
        with pytest.raises(InvalidParams):
            await MeerkatClient().connect(realm_id="x", isolated=True)
        stub = str(write_wrapper(tmp / "stub", STUB))
        os.environ["MEERKAT_BIN_PATH"] = stub
        os.environ["STUB_VERSION"] = "0.10.0"
        with pytest.raises(VersionMismatch, match="0.10.0"):
            await MeerkatClient().connect()
        os.environ["STUB_VERSION"] = "0.9.6"
        os.environ["STUB_CRASH_ON"] = "session/list"
        async with MeerkatClient() as client:
            with pytest.raises(ConnectionClosed) as closed:
                await client.list_sessions()
            assert "crashing on session/list" in closed.value.details["stderr_tail"]
            assert closed.value.details["exit_code"] == 3
            with pytest.raises(ConnectionClosed):  # and every later call
                await client.get_config()
        os.environ["STUB_HANG_ON"] = "config/get"
        del os.environ["STUB_CRASH_ON"]
        client = await MeerkatClient().connect()
        outcome = {}

        async def pending():
            try:
                await client.get_config()
            except ClientClosed as exc:
                outcome["error"] = exc

        async with anyio.create_task_group() as group:
            group.start_soon(pending)
            await anyio.wait_all_tasks_blocked()  # the call is on the wire and waiting
            await client.close()
        assert isinstance(outcome["error"], ClientClosed)
        with pytest.raises(ClientClosed):
            await client.list_sessions()
    finally:
        for key in ("MEERKAT_BIN_PATH", "STUB_VERSION", "STUB_CRASH_ON", "STUB_HANG_ON"):
            os.environ.pop(key, None)


def test_sessions_streams_history_and_archive(run, tmp_path):
    run(sessions_scenario, tmp_path)


def test_seed_shapes_typed_events_and_collect(run):
    run(seed_shapes_scenario)


def test_config_compare_and_swap_across_two_clients(run, tmp_path):
    run(config_scenario, tmp_path)


def test_context_root_finds_the_projects_realm(run, tmp_path, monkeypatch):
    monkeypatch.delenv("RKAT_STATE_ROOT")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    run(context_root_scenario, tmp_path)


def test_callback_tools(run):
    run(tools_scenario)


def test_busy_and_interrupt(run):
    run(busy_and_interrupt_scenario)


def test_client_side_failures(run, tmp_path):
    run(failures_scenario, tmp_path)


async def unreadable_requests_scenario(rkat_path: str) -> None:
    with anyio.fail_after(60):  # the bug this guards against was a call that never ended
        await _unreadable_requests(rkat_path)


async def _unreadable_requests(rkat_path: str) -> None:
    client = await MeerkatClient(rkat_path).connect(realm_id="sdk-limits")
    try:
        session = await client.create_session("hello")
        # A value JSON cannot carry fails its own call at once; nothing is sent.
        with pytest.raises(InvalidParams, match="cannot be sent as JSON"):
            await session.turn("half an otter \ud83e")
        with pytest.raises(InvalidParams, match="cannot be sent as JSON"):
            await session.turn("x", provider_params={"n": object()})
        # A line over the server's limit gets its error (the server answers it with id null), and
        # only that call: a small call in flight beside it is answered normally.
        async with anyio.create_task_group() as tasks:
            listed: list = []

            async def small() -> None:
                listed.append(await client.list_sessions())
            tasks.start_soon(small)
            with pytest.raises(MeerkatError) as too_big:
                await session.turn("y" * 10_000)
        assert too_big.value.code is ErrorCode.PAYLOAD_TOO_LARGE
        assert too_big.value.details == {"size": too_big.value.details["size"], "limit": 4096}
        assert [s.session_id for s in listed[0]] == [session.id]
        assert (await session.turn("still fine")).text == "Mock reply to: still fine"
    finally:
        await client.close()


def test_unreadable_requests_fail_alone_instead_of_hanging(run, tmp_path):
    wrapper = tmp_path / "rkat-rpc-small-lines"
    wrapper.write_text(f'#!/bin/sh\nexec "{RKAT_RPC}" --max-line-bytes 4096 "$@"\n')
    wrapper.chmod(0o755)
    run(unreadable_requests_scenario, str(wrapper))


def test_importing_meerkat_does_not_load_the_sdk():
    import subprocess
    import sys

    code = "import sys, meerkat; print(sorted(m for m in ('anyio', 'meerkat.client') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    code = "import meerkat; meerkat.MeerkatClient; import sys; print('meerkat.client' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "True"
