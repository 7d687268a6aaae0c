"""``rkat-mcp`` driven by the official ``mcp`` client library, as a real subprocess.

Every scenario below runs over streamable HTTP (one server process for the
module, a test per scenario) and over stdio (one server process running them all
in turn). Scenarios make their own sessions, so they do not depend on each other.
Slow turns come from the mock provider's ``token_delay_ms``/``reply_words``; no
test measures time.

Cancellation (design Decision 4): ``notifications/cancelled`` interrupts a turn
(stdio, handshake-era HTTP), and so does a 2026-07-28 HTTP call closed by its
client (that wire's only cancellation signal); a lost client never does (a killed
stdio client, a dropped handshake-era HTTP connection). The seed's
MCP examples run last, with hosted models served by a fake vendor server.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import uuid
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import httpx2
import pytest
import trio
from mcp import Client, StdioServerParameters
from mcp.shared.exceptions import MCPError

from meerkat.config.schema import config_from_dict
from meerkat.providers.catalog import catalog_wire
from meerkat.testing import FakeProviderServer, Reply, open_fake_provider_server

RKAT_MCP = str(Path(sys.executable).with_name("rkat-mcp"))
TOOLS = {"meerkat_run", "meerkat_resume", "meerkat_sessions", "meerkat_read", "meerkat_archive",
         "meerkat_interrupt", "meerkat_config", "meerkat_event_stream_open", "meerkat_event_stream_read",
         "meerkat_event_stream_close", "meerkat_models_catalog", "meerkat_fork", "meerkat_export",
         "meerkat_inject_context", "meerkat_stop_run", "meerkat_events_since", "meerkat_external_event"}
#: A turn that runs until interrupted (2000 words, 10 ms apart).
ENDLESS = {"reply_words": 2000, "token_delay_ms": 10}
#: A turn still running when its call is dropped, yet ending by itself (60 words, 10 ms apart).
FINITE = {"reply_words": 60, "token_delay_ms": 10}
#: A turn slow enough that its events visibly precede its result.
SLOW = {"reply_words": 12, "token_delay_ms": 15}
LOG_OPT_IN = {"io.modelcontextprotocol/logLevel": "info"}


def server_env() -> dict[str, str]:
    """The test's environment without provider keys, so no turn can reach a real vendor."""
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "RKAT_MCP_BENCH_TOOL"}


class LogBook:
    """The ``data`` of every log notification a client received, in arrival order."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []
        self._changed = trio.Event()

    async def add(self, params: Any) -> None:
        self.entries.append(params.data)
        self._changed.set()
        self._changed = trio.Event()

    async def wait_until(self, ready: Callable[[list[dict[str, Any]]], bool]) -> None:
        while True:
            changed = self._changed
            if ready(self.entries):
                return
            await changed.wait()


class Harness:
    """One connected client plus what it was sent by way of log notifications."""

    def __init__(self, client: Client, logs: LogBook) -> None:
        self.client = client
        self.logs = logs

    async def call(self, name: str, arguments: dict[str, Any], **options: Any) -> dict[str, Any]:
        """A successful call's payload (checked to be the same as JSON text and as structuredContent)."""
        result = await self.client.call_tool(name, arguments, **options)
        assert not result.is_error, result.content[0].text
        payload = json.loads(result.content[0].text)
        assert payload == result.structured_content
        return payload

    async def fails(self, name: str, arguments: dict[str, Any], code: str) -> dict[str, Any]:
        """A call answered with an ``isError`` result naming ``code``; returns the error body."""
        result = await self.client.call_tool(name, arguments)
        assert result.is_error, result.content[0].text
        body = json.loads(result.content[0].text)
        assert body == result.structured_content
        assert body["code"] == code, body
        assert body["error"] and body["hint"]
        return body

    async def rejected(self, name: str, arguments: dict[str, Any], jsonrpc_code: int = -32602) -> MCPError:
        """A call refused as a protocol error (a malformed call)."""
        with pytest.raises(MCPError) as caught:
            await self.client.call_tool(name, arguments)
        assert caught.value.error.code == jsonrpc_code, caught.value.error
        return caught.value

    async def run(self, prompt: str = "hello", **arguments: Any) -> dict[str, Any]:
        """``meerkat_run`` on the mock model."""
        return await self.call("meerkat_run", {"prompt": prompt, "model": "mock", **arguments})


Connect = Callable[..., Any]  # (**client options) -> an async context manager yielding a Harness


def harness_factory(target: Any) -> Connect:
    """Connect to ``target`` (a URL or stdio parameters) with the given client options."""
    @asynccontextmanager
    async def connect(**options: Any) -> AsyncIterator[Harness]:
        logs = LogBook()
        async with Client(target, logging_callback=logs.add, **options) as client:
            yield Harness(client, logs)
    return connect


def event_types(events: list[dict[str, Any]]) -> list[str]:
    return [e["payload"]["type"] for e in events]


def deltas(events: list[dict[str, Any]]) -> str:
    return "".join(e["payload"]["delta"] for e in events if e["payload"]["type"] == "text_delta")


# -- scenarios ------------------------------------------------------------------------------


async def lists_every_tool(h: Harness) -> None:
    listed = {tool.name: tool for tool in (await h.client.list_tools()).tools}
    assert set(listed) == TOOLS  # the benchmark's empty tool stays hidden
    for tool in listed.values():
        assert len(tool.description) > 60, tool.name
        assert tool.input_schema["type"] == "object" and tool.input_schema["additionalProperties"] is False
    assert listed["meerkat_run"].input_schema["required"] == ["prompt"]
    assert {"prompt", "model", "provider", "provider_params", "system_prompt", "max_tokens", "labels",
            "stream"} <= set(listed["meerkat_run"].input_schema["properties"])
    assert listed["meerkat_resume"].input_schema["required"] == ["session_id", "prompt"]
    assert listed["meerkat_config"].input_schema["properties"]["action"]["enum"] == ["get", "patch", "set"]
    assert listed["meerkat_archive"].annotations.destructive_hint is True


async def session_lifecycle(h: Harness) -> None:
    label = {"suite": uuid.uuid4().hex}
    first = await h.run("My name is Ada.", labels=label, system_prompt="Be brief.", max_tokens=50)
    sid = first["session_id"]
    assert first["content"] == [{"type": "text", "text": "Mock reply to: My name is Ada."}]
    assert first["turns"] == 1 and first["tool_calls"] == 0 and first["structured_output"] is None
    assert first["session_ref"].endswith(f":{sid}") and first["usage"]["total_tokens"] > 0

    second = await h.call("meerkat_resume", {"session_id": sid, "prompt": "What's my name?"})
    assert second["session_id"] == sid and second["content"][0]["text"] == "Mock reply to: What's my name?"

    read = await h.call("meerkat_read", {"session_id": sid})
    assert read["session_id"] == sid and read["session_ref"] == first["session_ref"]
    state = read["state"]
    assert state["message_count"] == 5  # the system prompt is a row too
    assert state["is_active"] is False and state["labels"] == label
    assert state["model"] == "mock" and state["last_assistant_text"] == "Mock reply to: What's my name?"
    assert set(state["created_at"]) == {"secs_since_epoch", "nanos_since_epoch"}
    assert read["billing"]["total_tokens"] == second["usage"]["total_tokens"]

    listed = await h.call("meerkat_sessions", {"labels": label})
    assert [s["session_id"] for s in listed["sessions"]] == [sid]
    assert listed["sessions"][0]["message_count"] == 5 and listed["sessions"][0]["is_active"] is False
    everything = await h.call("meerkat_sessions", {"limit": 1000})
    assert sid in {s["session_id"] for s in everything["sessions"]}
    assert len((await h.call("meerkat_sessions", {"limit": 1}))["sessions"]) == 1

    idle = await h.call("meerkat_interrupt", {"session_id": sid})
    assert idle == {"session_id": sid, "interrupted": True, "was_running": False}

    assert await h.call("meerkat_archive", {"session_id": sid}) == {"session_id": sid, "archived": True}
    await h.fails("meerkat_read", {"session_id": sid}, "SESSION_NOT_FOUND")
    await h.fails("meerkat_archive", {"session_id": sid}, "SESSION_NOT_FOUND")
    await h.fails("meerkat_resume", {"session_id": sid, "prompt": "still there?"}, "SESSION_NOT_FOUND")
    assert (await h.call("meerkat_sessions", {"labels": label}))["sessions"] == []


async def streams_events_as_progress_before_the_result(h: Harness) -> None:
    seen: list[tuple[float, dict[str, Any]]] = []
    result_arrived = False
    early: list[bool] = []
    complete = trio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        body = json.loads(message)  # checked below: the client library swallows a callback's exceptions
        seen.append((progress, body))
        early.append(not result_arrived)
        if body["event"]["payload"]["type"] == "run_completed":
            complete.set()

    result = await h.call("meerkat_run", {"prompt": "tell me", "model": "mock", "stream": True,
                                          "provider_params": SLOW}, progress_callback=on_progress)
    result_arrived = True
    with trio.fail_after(10):
        await complete.wait()
    assert all(body["source"] == "meerkat" and body["session_id"] == result["session_id"] for _, body in seen)
    events = [body["event"] for _, body in seen]
    assert early[0] is True  # the first event reached the client while the turn was still running
    assert [p for p, _ in seen] == list(range(1, len(seen) + 1))
    assert event_types(events)[0] == "run_started" and event_types(events)[-1] == "run_completed"
    assert deltas(events) == result["content"][0]["text"] and len(result["content"][0]["text"].split()) == 12
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert h.logs.entries == []  # a progress token means progress notifications, not log entries


async def streams_events_as_log_messages_without_progress_token(h: Harness) -> None:
    # 2026-07-28 clients must opt in to log delivery per request; handshake-era ones get it always.
    meta = LOG_OPT_IN if h.client.protocol_version >= "2026" else None
    before = len(h.logs.entries)
    result = await h.call("meerkat_run", {"prompt": "log it", "model": "mock", "stream": True,
                                          "provider_params": SLOW}, meta=meta)
    with trio.fail_after(10):
        await h.logs.wait_until(lambda entries: entries[before:] and
                                entries[-1]["event"]["payload"]["type"] == "run_completed")
    entries = h.logs.entries[before:]
    events = [entry["event"] for entry in entries]
    assert all(entry["source"] == "meerkat" for entry in entries)
    assert event_types(events)[0] == "run_started" and event_types(events)[-1] == "run_completed"
    assert deltas(events) == result["content"][0]["text"]
    quiet = await h.run("no stream requested", provider_params=SLOW)
    assert quiet["content"][0]["text"] and len(h.logs.entries) == before + len(events)


async def event_streams_follow_a_turn_started_elsewhere(h: Harness) -> None:
    sid = (await h.run("first"))["session_id"]
    opened = await h.call("meerkat_event_stream_open", {"session_id": sid})
    assert opened["session_id"] == sid and opened["stream_id"]
    stream_id = opened["stream_id"]
    resumed: dict[str, Any] = {}

    async def resume() -> None:  # another tool call, running alongside the reads, starts the turn
        resumed.update(await h.call("meerkat_resume", {"session_id": sid, "prompt": "go on",
                                                       "provider_params": SLOW}))

    events: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(resume)
        with trio.fail_after(30):
            while not events or events[-1]["payload"]["type"] != "run_completed":
                batch = await h.call("meerkat_event_stream_read", {"stream_id": stream_id, "timeout_ms": 5000})
                assert batch["status"] in ("events", "timeout") and batch["stream_id"] == stream_id
                events.extend(batch["events"])
    assert event_types(events)[0] == "run_started" and "text_delta" in event_types(events)
    assert deltas(events) == resumed["content"][0]["text"]

    quiet = await h.call("meerkat_event_stream_read", {"stream_id": stream_id, "timeout_ms": 0})
    assert quiet == {"status": "timeout", "stream_id": stream_id, "events": []}
    replay = await h.call("meerkat_event_stream_open", {"session_id": sid, "after_seq": 0})
    replayed = await h.call("meerkat_event_stream_read", {"stream_id": replay["stream_id"], "max_events": 1000})
    assert event_types(replayed["events"]).count("run_completed") == 2  # both turns, from the replay ring
    assert await h.call("meerkat_event_stream_close", {"stream_id": stream_id}) == {"stream_id": stream_id,
                                                                                 "closed": True}
    assert (await h.call("meerkat_event_stream_close", {"stream_id": stream_id}))["closed"] is False
    await h.fails("meerkat_event_stream_read", {"stream_id": stream_id}, "INVALID_PARAMS")

    await h.call("meerkat_archive", {"session_id": sid})
    ended = await h.call("meerkat_event_stream_read", {"stream_id": replay["stream_id"], "timeout_ms": 5000})
    assert ended["status"] == "closed"
    await h.fails("meerkat_event_stream_open", {"session_id": sid}, "SESSION_NOT_FOUND")


async def run_then_abandon(h: Harness, provider_params: dict[str, Any]) -> str:
    """Start a streamed ``meerkat_run``, cancel the call once its turn is writing; returns the session id."""
    started = trio.Event()
    session: dict[str, str] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        event = json.loads(message)["event"]
        if event["payload"]["type"] == "text_delta" and not started.is_set():
            session["id"] = event["source"]["session_id"]
            started.set()

    async with trio.open_nursery() as nursery:
        call_scope = trio.CancelScope()

        async def long_run() -> None:
            with call_scope:
                await h.client.call_tool("meerkat_run", {"prompt": "talk on", "model": "mock", "stream": True,
                                                         "provider_params": provider_params},
                                         progress_callback=on_progress)
            assert call_scope.cancelled_caught  # the call never finished by itself

        nursery.start_soon(long_run)
        with trio.fail_after(10):
            await started.wait()
        call_scope.cancel()
    return session["id"]


async def turn_events(h: Harness, sid: str) -> list[dict[str, Any]]:
    """Every event of the session's (single) turn, waiting for its end: replayed, then live."""
    stream = await h.call("meerkat_event_stream_open", {"session_id": sid, "after_seq": 0})
    events: list[dict[str, Any]] = []
    with trio.fail_after(30):
        while not events or events[-1]["payload"]["type"] not in ("run_completed", "run_failed"):
            events.extend((await h.call("meerkat_event_stream_read", {"stream_id": stream["stream_id"]}))["events"])
    await h.call("meerkat_event_stream_close", {"stream_id": stream["stream_id"]})
    return events


async def concurrent_reads_keep_their_own_timeouts(h: Harness) -> None:
    sid = (await h.run("quiet session"))["session_id"]
    stream_id = (await h.call("meerkat_event_stream_open", {"session_id": sid}))["stream_id"]
    assert stream_id.startswith("evt-")
    outcome: dict[str, Any] = {}

    async def long_read() -> None:
        outcome["long"] = await h.call("meerkat_event_stream_read", {"stream_id": stream_id, "timeout_ms": 60_000})

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(long_read)
            await trio.sleep(0.2)  # not a timing assertion: gives the long read a head start on the stream
            # A second read of the same stream does not wait behind the first one's 60 s:
            short = await h.call("meerkat_event_stream_read", {"stream_id": stream_id, "timeout_ms": 50})
            assert short == {"status": "timeout", "stream_id": stream_id, "events": []}
            assert "long" not in outcome
            # Closing the stream ends the pending read with status "closed", not an error.
            assert (await h.call("meerkat_event_stream_close", {"stream_id": stream_id}))["closed"] is True
    assert outcome["long"] == {"status": "closed", "stream_id": stream_id, "events": []}
    for bad in (stream_id, "", "evt-nope", "../x"):
        body = await h.fails("meerkat_event_stream_read", {"stream_id": bad}, "INVALID_PARAMS")
        assert "meerkat_event_stream_open" in body["error"]


async def cancelling_a_run_interrupts_its_turn(h: Harness) -> None:
    """Cancelling a call interrupts its turn: notifications/cancelled on stdio and handshake-era HTTP, a
    closed response stream on 2026-07-28 HTTP."""
    sid = await run_then_abandon(h, ENDLESS)
    events = await turn_events(h, sid)
    assert events[-1]["payload"]["type"] == "run_failed"
    assert events[-1]["payload"]["error_report"]["class"] == "cancelled"
    state = (await h.call("meerkat_read", {"session_id": sid}))["state"]
    assert state["is_active"] is False and state["message_count"] == 2
    kept = state["last_assistant_text"]
    assert kept == deltas(events) and len(kept.split()) < ENDLESS["reply_words"]  # the partial answer was kept
    again = await h.call("meerkat_resume", {"session_id": sid, "prompt": "short now", "provider_params": {}})
    assert again["content"][0]["text"] == "Mock reply to: short now"


async def busy_session_and_interrupt_tool(h: Harness) -> None:
    sid = (await h.run("warm up"))["session_id"]
    running = trio.Event()
    outcome: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if json.loads(message)["event"]["payload"]["type"] == "text_delta":
            running.set()

    async def long_turn() -> None:
        result = await h.client.call_tool("meerkat_resume", {"session_id": sid, "prompt": "long", "stream": True,
                                                             "provider_params": ENDLESS}, progress_callback=on_progress)
        outcome["result"] = result

    async with trio.open_nursery() as nursery:
        nursery.start_soon(long_turn)
        with trio.fail_after(10):
            await running.wait()
        busy = await h.fails("meerkat_resume", {"session_id": sid, "prompt": "me too"}, "SESSION_BUSY")
        assert busy["details"]["session_id"] == sid and busy["details"]["running_run_id"]
        assert (await h.call("meerkat_read", {"session_id": sid}))["state"]["is_active"] is True
        stopped = await h.call("meerkat_interrupt", {"session_id": sid})
        assert stopped["interrupted"] is True and stopped["was_running"] is True
        assert stopped["run_id"] == busy["details"]["running_run_id"]
    cancelled = outcome["result"]
    assert cancelled.is_error and json.loads(cancelled.content[0].text)["code"] == "REQUEST_CANCELLED"
    assert (await h.call("meerkat_interrupt", {"session_id": sid}))["was_running"] is False


async def config_get_set_patch(h: Harness) -> None:
    got = await h.call("meerkat_config", {"action": "get"})
    generation = got["generation"]
    assert got["realm_id"] and got["backend"] == "sqlite" and "agent" in got["config"]
    patched = await h.call("meerkat_config", {"action": "patch", "patch": {"agent": {"max_tokens_per_turn": 8192}}})
    assert patched["generation"] == generation + 1 and patched["config"]["agent"]["max_tokens_per_turn"] == 8192
    conflict = await h.fails("meerkat_config", {"action": "patch", "patch": {"agent": {"max_tokens_per_turn": 1}},
                                                "expected_generation": generation}, "CONFIG_GENERATION_CONFLICT")
    assert conflict["details"] == {"expected_generation": generation, "current_generation": generation + 1}
    unchanged = await h.call("meerkat_config", {"action": "get"})
    assert unchanged["generation"] == generation + 1 and unchanged["config"]["agent"]["max_tokens_per_turn"] == 8192
    replaced = await h.call("meerkat_config", {"action": "set", "config": {"agent": {"model": "mock"}},
                                               "expected_generation": generation + 1})
    assert replaced["generation"] == generation + 2 and replaced["config"]["agent"]["model"] == "mock"
    assert replaced["config"]["agent"]["max_tokens_per_turn"] != 8192  # set replaces: the patch is gone
    await h.fails("meerkat_config", {"action": "set", "config": {"agent": {"max_tokens_per_turn": 0}}},
                  "INVALID_PARAMS")
    typo = await h.fails("meerkat_config", {"action": "patch", "patch": {"agent": {"max_turnz": 11}}},
                         "INVALID_PARAMS")
    assert typo["details"]["key"] == "agent.max_turnz" and typo["details"]["did_you_mean"] == ["agent.max_turns"]
    await h.rejected("meerkat_config", {"action": "set"})
    await h.rejected("meerkat_config", {"action": "delete"})
    await h.rejected("meerkat_config", {"action": "get", "patch": {}})
    assert (await h.call("meerkat_config", {"action": "get"}))["generation"] == generation + 2


async def provider_failure_is_a_tool_error(h: Harness) -> None:
    failed = await h.fails("meerkat_run", {"prompt": "x", "model": "mock", "provider_params": {"fail": "boom"}},
                           "PROVIDER_ERROR")
    assert "boom" in failed["error"]
    assert failed["details"]["session_created"] is True and failed["details"]["resumable"] is True
    resumed = await h.call("meerkat_resume", {"session_id": failed["details"]["session_id"], "prompt": "again",
                                              "provider_params": {}})
    assert resumed["content"][0]["text"] == "Mock reply to: again"
    no_key = await h.fails("meerkat_run", {"prompt": "x", "model": "claude-sonnet-4-6"}, "PROVIDER_ERROR")
    assert "ANTHROPIC_API_KEY" in no_key["error"]  # the server has no vendor keys here: it says which is missing


async def unknown_sessions_are_tool_errors(h: Harness) -> None:
    for missing in (str(uuid.uuid4()), "not-a-session"):
        for tool in ("meerkat_read", "meerkat_archive", "meerkat_interrupt", "meerkat_event_stream_open"):
            body = await h.fails(tool, {"session_id": missing}, "SESSION_NOT_FOUND")
            assert missing in body["error"]
        await h.fails("meerkat_resume", {"session_id": missing, "prompt": "hi"}, "SESSION_NOT_FOUND")


async def malformed_calls_are_protocol_errors(h: Harness) -> None:
    error = await h.rejected("meerkat_teleport", {}, jsonrpc_code=-32601)
    assert "meerkat_teleport" in error.error.message and "meerkat_run" in error.error.message
    assert "prompt" in (await h.rejected("meerkat_run", {})).error.message
    assert "sessionId" in (await h.rejected("meerkat_read", {"sessionId": "x"})).error.message
    assert "max_tokens" in (await h.rejected("meerkat_run", {"prompt": "x", "max_tokens": "many"})).error.message
    assert "max_tokens" in (await h.rejected("meerkat_run", {"prompt": "x", "max_tokens": 0})).error.message
    assert "prompt" in (await h.rejected("meerkat_run", {"prompt": ""})).error.message
    assert "prompt" in (await h.rejected("meerkat_run", {"prompt": [{"text": "no type"}]})).error.message
    assert "labels" in (await h.rejected("meerkat_run", {"prompt": "x", "labels": {"a": 1}})).error.message
    assert (await h.rejected("meerkat_run", {"prompt": "x"} | {"stream": "yes"})).error.data["code"] == "INVALID_PARAMS"
    await h.rejected("meerkat_event_stream_read", {"stream_id": "s", "timeout_ms": -1})
    await h.rejected("meerkat_sessions", {"limit": 5000})
    # A call the host refuses while working is a tool error instead:
    await h.fails("meerkat_run", {"prompt": "x", "model": "no-such-model"}, "INVALID_PARAMS")
    await h.fails("meerkat_run", {"prompt": "x", "model": "mock", "provider_params": {"bogus": 1}}, "INVALID_PARAMS")
    assert "sessions" in await h.call("meerkat_sessions", {})  # and the server keeps serving


async def models_catalog_is_the_service_catalog(h: Harness) -> None:
    catalog = await h.call("meerkat_models_catalog", {})
    config = config_from_dict((await h.call("meerkat_config", {"action": "get"}))["config"])
    assert catalog == catalog_wire(config.self_hosted)
    assert catalog["providers"] and all(p["models"] for p in catalog["providers"])


async def fork_and_export(h: Harness) -> None:
    first = await h.run("First question")
    sid = first["session_id"]
    await h.call("meerkat_resume", {"session_id": sid, "prompt": "Second question"})
    fork = await h.call("meerkat_fork", {"session_id": sid, "message_index": 2})
    assert fork["source_session_id"] == sid and fork["message_count"] == 2 and fork["session_id"] != sid
    resumed = await h.call("meerkat_resume", {"session_id": fork["session_id"], "prompt": "Other question"})
    assert resumed["content"][0]["text"] == "Mock reply to: Other question"
    assert (await h.call("meerkat_read", {"session_id": sid}))["state"]["message_count"] == 4
    assert (await h.call("meerkat_read", {"session_id": fork["session_id"]}))["state"]["message_count"] == 4
    exported = await h.call("meerkat_export", {"session_id": fork["session_id"]})
    steps = exported["document"]["steps"]
    assert exported["format"] == "atif" and [s["source"] for s in steps] == ["user", "agent", "user", "agent"]
    assert steps[2]["message"] == "Other question" and steps[0]["message"] == "First question"
    markdown = await h.call("meerkat_export", {"session_id": sid, "format": "markdown"})
    assert "Second question" in markdown["document"]
    await h.fails("meerkat_fork", {"session_id": sid, "message_index": 99}, "INVALID_PARAMS")
    await h.fails("meerkat_export", {"session_id": "01936f8a-7b2c-7000-8000-000000000099"}, "SESSION_NOT_FOUND")
    await h.rejected("meerkat_export", {"session_id": sid, "format": "pdf"})


async def live_session_tools(h: Harness) -> None:
    """Inject context, read the event log since a cursor, stop a run by id, queue an external event."""
    sid = (await h.run("warm up"))["session_id"]
    applied = await h.call("meerkat_inject_context", {"session_id": sid, "text": "The code word is KIWI.",
                                                      "idempotency_key": "k1"})
    assert applied["status"] == "applied"
    again = await h.call("meerkat_inject_context", {"session_id": sid, "text": "The code word is KIWI.",
                                                    "idempotency_key": "k1"})
    assert again["status"] == "duplicate" and again["input_id"] == applied["input_id"]
    seen = await h.call("meerkat_resume", {"session_id": sid, "prompt": "mock:system"})
    assert "KIWI" in seen["content"][0]["text"]
    page = await h.call("meerkat_events_since", {"session_id": sid, "after": 0, "limit": 5})
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4, 5] and page["has_more"] is True
    latest = page["latest_cursor"]["sequence"]
    rest = await h.call("meerkat_events_since", {"session_id": sid, "after": 5, "limit": 1000})
    assert rest["events"][-1]["seq"] == latest and rest["events"][-1]["payload"]["type"] == "run_completed"
    assert (await h.call("meerkat_events_since", {"session_id": sid, "after": latest}))["events"] == []
    stale = await h.call("meerkat_stop_run", {"session_id": sid, "run_id": "gone", "reason": "old"})
    assert stale["receipt"] == {"outcome": "not_current", "run_id": "gone", "current_run_id": None}
    running = trio.Event()
    outcome: dict[str, Any] = {}

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if json.loads(message)["event"]["payload"]["type"] == "text_delta":
            running.set()

    async def long_turn() -> None:
        outcome["result"] = await h.client.call_tool(
            "meerkat_resume", {"session_id": sid, "prompt": "long", "stream": True, "provider_params": ENDLESS},
            progress_callback=on_progress)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(long_turn)
        with trio.fail_after(10):
            await running.wait()
        busy = await h.fails("meerkat_resume", {"session_id": sid, "prompt": "me too"}, "SESSION_BUSY")
        queued = await h.call("meerkat_external_event", {"session_id": sid, "event_type": "ci.done",
                                                         "payload": {"ok": True}})
        assert queued["outcome_type"] == "accepted" and queued["state"]["current_state"] == "queued"
        stopped = await h.call("meerkat_stop_run", {"session_id": sid, "run_id": busy["details"]["running_run_id"],
                                                    "reason": "agent decided"})
        assert stopped["receipt"]["outcome"] == "stopped"
    cancelled = outcome["result"]
    assert cancelled.is_error and json.loads(cancelled.content[0].text)["code"] == "REQUEST_CANCELLED"
    await h.fails("meerkat_inject_context", {"session_id": "01936f8a-7b2c-7000-8000-000000000099", "text": "x"},
                  "SESSION_NOT_FOUND")
    await h.rejected("meerkat_events_since", {"session_id": sid, "after": -1})


SCENARIOS: list[Callable[[Harness], Awaitable[None]]] = [
    lists_every_tool, session_lifecycle, streams_events_as_progress_before_the_result,
    streams_events_as_log_messages_without_progress_token, event_streams_follow_a_turn_started_elsewhere,
    concurrent_reads_keep_their_own_timeouts, busy_session_and_interrupt_tool, config_get_set_patch,
    provider_failure_is_a_tool_error, unknown_sessions_are_tool_errors, malformed_calls_are_protocol_errors,
    models_catalog_is_the_service_catalog, fork_and_export, live_session_tools,
]


# -- transports ------------------------------------------------------------------------------


class ServerProcess:
    """``rkat-mcp --http 127.0.0.1:0`` in the background; stderr is drained into ``lines``."""

    def __init__(self, state_root: Path) -> None:
        self.proc = subprocess.Popen(
            [RKAT_MCP, "--realm", "mcp-http", "--state-root", str(state_root), "--http", "127.0.0.1:0"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=server_env())
        self.lines: list[str] = []
        self._urls: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._drain, daemon=True).start()
        try:
            self.url = self._urls.get(timeout=60)
        except queue.Empty:
            self.stop()
            raise RuntimeError("rkat-mcp did not start:\n" + "".join(self.lines)) from None

    def _drain(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)
            if "listening on " in line:
                self._urls.put(line.rsplit("listening on ", 1)[1].strip())

    def stop(self) -> int:
        self.proc.terminate()
        code = self.proc.wait(timeout=30)
        self.proc.stderr.close()
        return code


@pytest.fixture(scope="module")
def http_server(tmp_path_factory) -> ServerProcess:
    server = ServerProcess(tmp_path_factory.mktemp("mcp-http"))
    yield server
    assert server.stop() == 0, "".join(server.lines)  # SIGTERM is a clean shutdown


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.__name__)
async def test_over_streamable_http(http_server, scenario):
    connect = harness_factory(http_server.url)
    async with connect() as harness:
        await scenario(harness)


async def test_handshake_era_client_over_http_gets_log_streaming_and_cancels(http_server):
    connect = harness_factory(http_server.url)
    async with connect(mode="legacy") as harness:
        assert harness.client.protocol_version < "2026"
        await streams_events_as_log_messages_without_progress_token(harness)
        await cancelling_a_run_interrupts_its_turn(harness)  # the client POSTs notifications/cancelled


async def assert_finished_by_itself(h: Harness, sid: str) -> None:
    """The session's only turn ran to its end (it was not interrupted) and was committed."""
    state = (await h.call("meerkat_read", {"session_id": sid}))["state"]
    assert state["is_active"] is False and state["message_count"] == 2
    assert len(state["last_assistant_text"].split()) == FINITE["reply_words"]


async def test_cancelling_a_call_over_2026_http_interrupts_its_turn(http_server):
    """The official client's default (2026-07-28) HTTP wire cancels a call by closing its response
    stream, the protocol's cancellation signal: the turn is interrupted and its partial answer kept."""
    connect = harness_factory(http_server.url)
    async with connect() as harness:
        assert harness.client.protocol_version >= "2026"
        await cancelling_a_run_interrupts_its_turn(harness)


async def test_a_dropped_handshake_era_http_request_leaves_its_turn_running(http_server):
    """A 2025-11-25 client whose connection drops mid-call (no notifications/cancelled): the turn completes."""
    version = "2025-11-25"
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    initialize = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": version, "capabilities": {}, "clientInfo": {"name": "flaky", "version": "1"}}}
    call = {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {
        "name": "meerkat_run", "_meta": {"progressToken": "p"},
        "arguments": {"prompt": "talk on", "model": "mock", "stream": True, "provider_params": FINITE}}}
    async with httpx2.AsyncClient(timeout=30) as http:
        opened = await http.post(http_server.url, json=initialize, headers=headers)
        assert opened.status_code == 200, opened.text
        headers |= {"Mcp-Session-Id": opened.headers["mcp-session-id"], "MCP-Protocol-Version": version}
        await http.post(http_server.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                        headers=headers)
        with trio.fail_after(30):
            async with http.stream("POST", http_server.url, json=call, headers=headers) as response:
                async for line in response.aiter_lines():
                    if line.startswith("data:") and '\\"text_delta\\"' in line:
                        sid = json.loads(json.loads(line[5:])["params"]["message"])["session_id"]
                        break  # leaving the block drops the connection mid-response
    async with harness_factory(http_server.url)() as fresh:
        events = await turn_events(fresh, sid)
        assert events[-1]["payload"]["type"] == "run_completed"
        await assert_finished_by_itself(fresh, sid)


async def test_malformed_http_bodies_get_clear_errors_and_the_server_keeps_serving(http_server):
    headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
    async with httpx2.AsyncClient(timeout=30) as http:
        garbage = await http.post(http_server.url, content=b"not json", headers=headers)
        huge = await http.post(http_server.url, content=b"[" + b" " * 5_000_000 + b"]", headers=headers)
    assert garbage.status_code == 400 and garbage.json()["error"]["code"] == -32700
    assert huge.status_code == 413
    async with harness_factory(http_server.url)() as harness:
        assert "sessions" in await harness.call("meerkat_sessions", {})


async def test_every_scenario_over_stdio(tmp_path):
    target = StdioServerParameters(command=RKAT_MCP, args=["--realm", "mcp-stdio", "--state-root", str(tmp_path)],
                                   env=server_env())
    connect = harness_factory(target)
    async with connect() as harness:
        for scenario in [*SCENARIOS, cancelling_a_run_interrupts_its_turn]:
            await scenario(harness)
    async with connect(mode="legacy") as harness:
        await streams_events_as_log_messages_without_progress_token(harness)
        await cancelling_a_run_interrupts_its_turn(harness)


class RawStdioClient:
    """``rkat-mcp`` on pipes, spoken to in raw JSON-RPC lines: for what the official client never does
    (send a call and its cancellation in one write, vanish mid-call)."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen([RKAT_MCP, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=server_env())
        self.send({"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
                       "protocolVersion": "2025-11-25", "capabilities": {},
                       "clientInfo": {"name": "raw", "version": "1"}}},
                  {"jsonrpc": "2.0", "method": "notifications/initialized"})

    def send(self, *messages: dict[str, Any]) -> None:
        self.proc.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        self.proc.stdin.flush()

    async def next_message(self) -> dict[str, Any]:
        return json.loads(await trio.to_thread.run_sync(self.proc.stdout.readline))

    async def call(self, request_id: int, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
        """A tool call's structured result (notifications and other replies read meanwhile are skipped)."""
        self.send({"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
                   "params": {"name": tool, "arguments": arguments}})
        while (message := await self.next_message()).get("id") != request_id:
            pass
        return message["result"]["structuredContent"]

    async def stop(self) -> tuple[int, str]:
        """Close both pipes as a dying client would; the exit code and stderr once the server is gone."""
        self.proc.stdin.close()
        self.proc.stdout.close()
        code = await trio.to_thread.run_sync(self.proc.wait, 30)
        stderr = self.proc.stderr.read()
        self.proc.stderr.close()
        return code, stderr


def call_message(request_id: int, arguments: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": {
        "name": "meerkat_run", "_meta": {"progressToken": request_id}, "arguments": arguments}}


async def test_a_cancellation_sent_with_its_call_still_interrupts_the_turn(tmp_path):
    """notifications/cancelled arriving while the turn is being started: the turn starts and is interrupted."""
    client = RawStdioClient(["--state-root", str(tmp_path)])
    try:
        with trio.fail_after(30):
            client.send(call_message(1, {"prompt": "talk on", "model": "mock", "provider_params": ENDLESS}),
                        {"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 1}})
            sessions: list[dict[str, Any]] = []
            for request_id in range(1000, 2000):  # the calls run concurrently: wait for the create to land
                sessions = (await client.call(request_id, "meerkat_sessions", {}))["sessions"]
                if sessions:
                    break
                await trio.sleep(0.01)
            assert len(sessions) == 1  # the call was not lost half-way: its session and turn exist
            sid = sessions[0]["session_id"]
            stream_id = (await client.call(3, "meerkat_event_stream_open",
                                           {"session_id": sid, "after_seq": 0}))["stream_id"]
            events: list[dict[str, Any]] = []
            while not events or events[-1]["payload"]["type"] not in ("run_completed", "run_failed"):
                events += (await client.call(4 + len(events), "meerkat_event_stream_read",
                                             {"stream_id": stream_id}))["events"]
    finally:
        code, stderr = await client.stop()
    assert events[-1]["payload"]["type"] == "run_failed", events[-1]
    assert events[-1]["payload"]["error_report"]["class"] == "cancelled"
    assert code == 0 and "finishing" not in stderr, stderr  # nothing was left running at the end


async def test_a_killed_stdio_client_leaves_its_turn_to_finish(tmp_path):
    """The client process dies mid-turn (both pipes close, no cancellation sent): the server finishes and
    commits the turn before exiting, and the next client finds it complete."""
    args = ["--realm", "kept", "--state-root", str(tmp_path)]
    client = RawStdioClient(args)
    client.send(call_message(1, {"prompt": "talk on", "model": "mock", "stream": True, "provider_params": FINITE}))
    with trio.fail_after(30):
        while True:
            message = await client.next_message()
            if message.get("method") == "notifications/progress":
                event = json.loads(message["params"]["message"])["event"]
                if event["payload"]["type"] == "text_delta":
                    break
    sid = event["source"]["session_id"]
    code, stderr = await client.stop()  # the client is gone: neither pipe has anyone on the other end
    assert code == 0, stderr
    assert "client disconnected; finishing 1 running turn(s)" in stderr and "Traceback" not in stderr
    target = StdioServerParameters(command=RKAT_MCP, args=args, env=server_env())
    async with harness_factory(target)() as fresh:
        await assert_finished_by_itself(fresh, sid)


# -- the seed's MCP examples, against hosted models served by a fake vendor ----------------------

SEED_REPLY = "Paris is the capital of France."


def vendor_env(vendor_url: str) -> dict[str, str]:
    """The server environment with claude-* and gpt-* models pointed at the fake vendor server."""
    return server_env() | {"RKAT_ANTHROPIC_API_KEY": "sk-ant-test", "RKAT_ANTHROPIC_BASE_URL": vendor_url,
                           "RKAT_OPENAI_API_KEY": "sk-openai-test", "RKAT_OPENAI_BASE_URL": f"{vendor_url}/v1"}


async def seed_examples_work(h: Harness, vendor: FakeProviderServer) -> None:
    """Every MCP call of seed-sessions-and-streaming.md, as written there (ids filled in), in its order."""
    france = await h.call("meerkat_run", {"prompt": "What is the capital of France?", "model": "claude-sonnet-4-6"})
    assert france["content"] == [{"type": "text", "text": SEED_REPLY}] and france["usage"]["total_tokens"] > 0
    asked = vendor.requests[-1]
    assert asked.vendor == "anthropic" and asked.body["model"] == "claude-sonnet-4-6"
    sid = france["session_id"]

    again = await h.call("meerkat_resume", {"session_id": sid, "prompt": "What's my name?"})
    assert again["session_id"] == sid and again["content"][0]["text"] == SEED_REPLY
    history = vendor.requests[-1].body["messages"]
    assert [m["role"] for m in history] == ["user", "assistant", "user"]  # the model saw the conversation
    assert "What's my name?" in json.dumps(history[-1])

    assert sid in {s["session_id"] for s in (await h.call("meerkat_sessions", {}))["sessions"]}
    state = (await h.call("meerkat_read", {"session_id": sid}))["state"]
    assert state["model"] == "claude-sonnet-4-6" and state["provider"] == "anthropic"
    assert state["message_count"] == 4 and state["last_assistant_text"] == SEED_REPLY

    idle = await h.call("meerkat_interrupt", {"session_id": sid})
    assert idle["interrupted"] is True and idle["was_running"] is False

    progress: list[dict[str, Any]] = []
    complete = trio.Event()

    async def on_progress(value: float, total: float | None, message: str | None) -> None:
        progress.append(json.loads(message)["event"])
        if progress[-1]["payload"]["type"] == "run_completed":
            complete.set()

    story = await h.call("meerkat_run", {"prompt": "Tell me a story", "stream": True},
                         progress_callback=on_progress)
    with trio.fail_after(10):  # progress callbacks run as their own tasks: the last may trail the result
        await complete.wait()
    assert story["content"][0]["text"] == SEED_REPLY and deltas(progress) == SEED_REPLY
    assert event_types(progress)[0] == "run_started" and event_types(progress)[-1] == "run_completed"
    # No model and no realm default: the first provider with a key (anthropic here) serves its default model.
    assert vendor.requests[-1].vendor == "anthropic"

    opened = await h.call("meerkat_event_stream_open", {"session_id": sid})
    assert opened["stream_id"].startswith("evt-")
    events: list[dict[str, Any]] = []
    async with trio.open_nursery() as nursery:  # a turn for the stream to see
        nursery.start_soon(partial(h.call, "meerkat_resume", {"session_id": sid, "prompt": "And Spain?"}))
        with trio.fail_after(30):
            while not events or events[-1]["payload"]["type"] != "run_completed":
                events.extend((await h.call("meerkat_event_stream_read", {"stream_id": opened["stream_id"]}))["events"])
    assert deltas(events) == SEED_REPLY
    assert (await h.call("meerkat_event_stream_close", {"stream_id": opened["stream_id"]}))["closed"] is True

    hello = await h.call("meerkat_run", {"prompt": "Hello", "model": "gpt-5.5", "provider": "openai"})
    assert hello["content"][0]["text"] == SEED_REPLY
    asked = vendor.requests[-1]
    assert asked.vendor == "openai" and asked.body["model"] == "gpt-5.5"

    got = await h.call("meerkat_config", {"action": "get"})
    patched = await h.call("meerkat_config", {"action": "patch", "patch": {"agent": {"max_tokens_per_turn": 8192}}})
    assert patched["generation"] == got["generation"] + 1
    assert patched["config"]["agent"]["max_tokens_per_turn"] == 8192
    assert (await h.call("meerkat_archive", {"session_id": sid}))["archived"] is True


async def test_seed_examples_against_a_fake_vendor(tmp_path):
    """Over stdio (every tool is also covered over HTTP above; a second walk would only repeat the SDK imports)."""
    async with open_fake_provider_server(default=Reply(text=SEED_REPLY)) as vendor:
        stdio = StdioServerParameters(command=RKAT_MCP, env=vendor_env(vendor.url),
                                      args=["--realm", "seed", "--state-root", str(tmp_path)])
        async with harness_factory(stdio)() as harness:
            await seed_examples_work(harness, vendor)
