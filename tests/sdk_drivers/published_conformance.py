"""The conformance scenarios of ``rpc-wire.md``, run with the published ``meerkat-sdk`` 0.9.6.

Run by ``tests/test_sdk_published.py`` with the interpreter of ``.venv-sdk`` (the
published package is also called ``meerkat``, so it cannot share our venv). It
only uses the SDK as a client. Environment, set by the test:

* ``REAL_BIN``   our ``rkat-rpc``;
* ``PROXY_BIN``  a wrapper named ``rkat-rpc`` running ``recording_proxy.py`` in front of it;
* ``STUB_BIN``   a wrapper named ``rkat-rpc`` running ``stub_rpc.py``;
* ``WORK``       a scratch directory (logs, state roots).

Prints one JSON line per scenario: ``{"scenario": N, "ok": true}`` or with ``"error"``.
"""

import asyncio
import json
import os
import uuid
from pathlib import Path

from meerkat import (
    MeerkatClient,
    MeerkatError,
    RunCompleted,
    RunFailed,
    RunStarted,
    TextComplete,
    TextDelta,
    ToolCallRequested,
    ToolExecutionCompleted,
    ToolExecutionStarted,
    ToolResultReceived,
    TurnCompleted,
    TurnStarted,
    UnknownEvent,
)
from published_common import LOGS, PROXY_BIN, REAL_BIN, WORK, raises, run_scenarios

STUB_BIN = os.environ["STUB_BIN"]
SLOW = {"reply_words": 400, "token_delay_ms": 20}
INVENTORY = set("""run_started run_completed extraction_succeeded extraction_failed run_failed hook_started
hook_completed hook_failed hook_launch_refused hook_denied turn_started reasoning_delta reasoning_complete text_delta
text_complete assistant_image_appended tool_call_requested tool_result_received server_tool_content turn_completed
turn_usage_accounting_unmeasured turn_usage_accounting_identity_disputed tool_execution_started
tool_execution_completed tool_execution_timed_out compaction_started compaction_completed compaction_failed
budget_warning operation_observation_failed retrying model_fallback_staged model_fallback_committed
model_fallback_skipped model_fallback_target_failed skills_resolved skill_resolution_failed interaction_complete
interaction_callback_pending interaction_failed stream_truncated tool_config_changed background_job_completed
transcript_rewrite_committed transcript_rewrite_audit_receipt_committed peer_content_ingested
provider_cache_breakpoints_discarded boundary_append_applied boundary_appends_discarded live_channel_closed
request_reasoning_lowered run_resumed""".split())


def proxied(name):
    """Point the SDK at the recording proxy; returns the log path."""
    log = WORK / f"{name}.jsonl"
    for key in ("STUB_VERSION", "STUB_CRASH_ON", "STUB_HANG_ON", "STUB_LOG"):
        os.environ.pop(key, None)
    os.environ["MEERKAT_BIN_PATH"] = PROXY_BIN
    os.environ["PROXY_LOG"] = str(log)
    LOGS.append(log)
    return log


def stub(**knobs):
    os.environ["MEERKAT_BIN_PATH"] = STUB_BIN
    for key in ("STUB_VERSION", "STUB_CRASH_ON", "STUB_HANG_ON", "STUB_LOG"):
        os.environ.pop(key, None)
    os.environ.update({k: str(v) for k, v in knobs.items()})


def entries(log):
    return [json.loads(line) for line in log.read_text().splitlines()]


def sent(log, method=None):
    """Requests the client wrote, in order."""
    out = [e["to_server"] for e in entries(log) if "to_server" in e and "method" in e["to_server"]]
    return [m for m in out if method is None or m["method"] == method]


def answers(log, request_id):
    return [e["to_client"] for e in entries(log) if "to_client" in e and e["to_client"].get("id") == request_id
            and "method" not in e["to_client"]]


def codes(exc):
    return str(exc.code)


async def wait_active(client, session_id):
    for _ in range(500):
        if (await client.read_session(session_id)).is_active:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("turn never became active")


def realm(name, backend="memory"):
    return {"realm_id": name, "realm_backend": backend, "state_root": str(WORK / "state")}


# -- scenarios ---------------------------------------------------------------------


async def s1_discovery():
    log = proxied("s1")
    os.environ.pop("MEERKAT_BIN_PATH")
    os.environ["PATH"] = f"{Path(PROXY_BIN).parent}{os.pathsep}{ORIGINAL_PATH}"
    try:
        async with MeerkatClient() as c:
            assert c.has_capability("sessions")
    finally:
        os.environ["PATH"] = ORIGINAL_PATH
    first = entries(log)
    assert first[0] == {"argv": []}, first[0]
    requests = sent(log)
    assert requests[0] == {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}, requests[0]
    assert requests[1]["id"] == 2 and requests[1]["method"] == "capabilities/get"
    os.environ["PATH"] = "/usr/bin:/bin"  # nothing of ours on PATH
    try:
        os.environ["MEERKAT_BIN_PATH"] = REAL_BIN
        async with MeerkatClient() as c:
            assert (await c.create_session("via env")).text
        os.environ.pop("MEERKAT_BIN_PATH")
        async with MeerkatClient(rkat_path=REAL_BIN) as c:
            assert (await c.create_session("via path")).text
    finally:
        os.environ["PATH"] = ORIGINAL_PATH
    cache = Path(os.environ["HOME"]) / ".cache" / "meerkat"
    assert not cache.exists(), "the SDK tried to download or cache a binary"


async def s2_argv():
    log = proxied("s2")
    root = str(WORK / "s2-root")
    c = await MeerkatClient().connect(realm_id="demo", instance_id="i1", realm_backend="memory", state_root=root)
    await c.close()
    c = await MeerkatClient().connect(isolated=True)
    await c.close()
    try:
        await MeerkatClient().connect(realm_id="x", isolated=True)
    except MeerkatError as exc:
        assert exc.code == "INVALID_ARGS", exc.code
    else:
        raise AssertionError("realm_id with isolated=True was accepted")
    argvs = [e["argv"] for e in entries(log) if "argv" in e]
    assert argvs == [["--realm", "demo", "--instance", "i1", "--realm-backend", "memory", "--state-root", root],
                     ["--isolated"]], argvs
    shared = realm("shared", "sqlite")
    a, b = MeerkatClient(), MeerkatClient()
    await a.connect(**shared)
    await b.connect(**shared)
    try:
        s = await a.create_session("shared session")
        generation = (await a.get_config())["generation"]
        await a.patch_config({"agent": {"max_turns": 11}}, expected_generation=generation)
        assert s.id in {x.session_id for x in await b.list_sessions()}
        assert (await b.get_config())["config"]["agent"]["max_turns"] == 11
    finally:
        await a.close()
        await b.close()


async def s3_handshake():
    log = proxied("s3")
    async with MeerkatClient() as c:
        advertised = [e["to_client"]["result"]["capabilities"] for e in entries(log)
                      if "to_client" in e and e["to_client"].get("id") == 2][0]
        assert [x.id for x in c.capabilities] == [x["id"] for x in advertised]
        assert c.has_capability("sessions")
        for cap in c.capabilities:
            assert cap.available == (cap.status == "Available"), cap
        assert any(not cap.available for cap in c.capabilities)
    stub()
    async with MeerkatClient() as c:
        shell = [x for x in c.capabilities if x.id == "shell"][0]
        assert shell.status == "DisabledByPolicy" and shell.available is False


async def s4_version_gate():
    for version, expect_key in (("0.9.6", True), ("0.9.0", False)):
        log = WORK / f"s4-{version}.jsonl"
        stub(STUB_VERSION=version, STUB_LOG=log)
        async with MeerkatClient() as c:
            s = await c.create_session("hi")
            await s.turn("again")
        calls = [e["request"] for e in entries(log) if "request" in e
                 and e["request"]["method"] in ("session/create", "turn/start")]
        assert len(calls) == 2 and all(("session_events" in x["params"]) == expect_key for x in calls), calls
        if expect_key:
            assert all(x["params"]["session_events"] is False for x in calls)
    for version in ("0.8.26", "0.10.0"):
        stub(STUB_VERSION=version)
        try:
            await MeerkatClient().connect()
        except MeerkatError as exc:
            assert exc.code == "VERSION_MISMATCH", exc.code
        else:
            raise AssertionError(f"{version} was accepted")


async def s5_create_session():
    log = proxied("s5")
    async with MeerkatClient() as c:
        s = await c.create_session("hello")
        assert str(uuid.UUID(s.id)) == s.id
        assert s.text == "Mock reply to: hello" and s.turns >= 1 and s.usage.input_tokens > 0
    create = sent(log, "session/create")[0]
    assert create["params"] == {"prompt": "hello", "session_events": False}, create
    notes = [e for e in entries(log) if "to_client" in e and e["to_client"].get("method") == "session/event"]
    assert notes == []


async def s6_turn():
    log = proxied("s6")
    async with MeerkatClient() as c:
        s = await c.create_session("hello")
        r = await s.turn("again", model="mock")
        assert r.text == "Mock reply to: again" and s.last_result is r
    turn = sent(log, "turn/start")[0]["params"]
    assert turn == {"session_id": s.id, "prompt": "again", "model": "mock", "session_events": False}, turn


async def s7_stream():
    log = proxied("s7")
    async with MeerkatClient() as c:
        s = await c.create_session("hello")
        async with s.stream("tell me") as events:
            seen = [e async for e in events]
        kinds = [type(e) for e in seen]
        assert UnknownEvent not in kinds, seen
        assert kinds[:2] == [RunStarted, TurnStarted] and kinds[-3:] == [TextComplete, TurnCompleted, RunCompleted]
        deltas = [e.delta for e in seen if isinstance(e, TextDelta)]
        assert deltas and "".join(deltas) == events.result.text == "Mock reply to: tell me"
    assert "session_events" not in sent(log, "turn/start")[0]["params"]


async def s8_create_streaming():
    proxied("s8")
    async with MeerkatClient() as c:
        async with c.create_session_streaming("hi") as stream:
            seen = [e async for e in stream]
        assert [type(e) for e in seen][:2] == [RunStarted, TurnStarted] and UnknownEvent not in map(type, seen)
        assert "".join(e.delta for e in seen if isinstance(e, TextDelta)) == stream.result.text
        assert stream.session_id and stream.session_id == stream.result.session_id
        assert stream.session_id in {x.session_id for x in await c.list_sessions()}


async def s9_tool_before_connect():
    log = proxied("s9")
    c = MeerkatClient()
    schema = {"type": "object", "properties": {"q": {"type": "string"}}}
    keys = []

    @c.tool("search", description="Search", input_schema=schema)
    async def search(arguments, dedupe_key=None):
        keys.append(dedupe_key)
        return f"results for {arguments.get('q')}"

    async with c:
        s = await c.create_session('tool:search{"q": "otters"}')
        assert s.tool_calls == 1 and s.text == "Tool search returned: results for otters", s.text
    requests = sent(log)
    assert [r["method"] for r in requests[:3]] == ["initialize", "capabilities/get", "tools/register"]
    assert requests[2]["params"] == {"tools": [{"description": "Search", "input_schema": schema, "name": "search"}]}
    assert answers(log, requests[2]["id"])[0]["result"] == {"registered": 1}
    execute = [e["to_client"] for e in entries(log) if e.get("to_client", {}).get("method") == "tool/execute"][0]
    assert execute["id"] == "srv-1"
    params = execute["params"]
    assert params["name"] == "search" and params["arguments"] == {"q": "otters"}
    assert params["tool_use_id"] and params["dedupe_key"]["call_id"] == params["tool_use_id"]
    reply = [e["to_server"] for e in entries(log) if e.get("to_server", {}).get("id") == "srv-1"][0]
    assert reply["result"] == {"content": "results for otters", "is_error": False}, reply
    assert keys[0] is not None and keys[0].call_id == params["tool_use_id"]


async def s10_tool_after_connect():
    log = proxied("s10")
    async with MeerkatClient() as c:
        s = await c.create_session("hi")

        @c.tool("late")
        async def late(arguments):
            return [{"type": "text", "text": "x"}]

        @c.tool("broken")
        async def broken(arguments):
            raise RuntimeError("kaput")

        await c.list_sessions()  # lets the fire-and-forget registrations go out first
        await c._register_tool_with_server("ghost", "Has no handler here", None)
        registers = sent(log, "tools/register")
        assert registers[0]["params"] == {"tools": [{"description": "Tool: late", "input_schema": {"type": "object"},
                                                     "name": "late"}]}, registers
        r = await s.turn("tool:late")
        assert r.text == "Tool late returned: x"
        r = await s.turn("tool:broken")
        assert "kaput" in r.text
        r = await s.turn("tool:ghost")
        assert "Unknown tool: ghost" in r.text
    replies = {e["to_server"]["id"]: e["to_server"]["result"] for e in entries(log)
               if isinstance(e.get("to_server", {}).get("id"), str)}
    results = list(replies.values())
    assert results[0] == {"content": [{"type": "text", "text": "x"}], "is_error": False}, results
    assert results[1]["is_error"] is True and results[1]["content"].startswith("Tool error: ")
    assert results[2] == {"content": "Unknown tool: ghost", "is_error": True}


async def s11_tool_while_streaming():
    proxied("s11")
    async with MeerkatClient() as c:
        nested = []

        @c.tool("count")
        async def count(arguments):
            nested.append(len(await c.list_sessions()))  # a nested call while the turn waits
            return "three"

        s = await c.create_session("hi")
        async with s.stream('tool:count{"n": 3}') as events:
            seen = [e async for e in events]
    kinds = [type(e) for e in seen]
    at = kinds.index(ToolCallRequested)
    assert kinds[at:at + 5] == [ToolCallRequested, TurnCompleted, ToolExecutionStarted, ToolExecutionCompleted,
                                ToolResultReceived] or kinds[at:at + 4] == [ToolCallRequested, ToolExecutionStarted,
                                                                            ToolExecutionCompleted,
                                                                            ToolResultReceived], kinds
    requested = seen[at]
    assert requested.name == "count" and requested.args == {"n": 3} and requested.id
    completed = [e for e in seen if isinstance(e, ToolExecutionCompleted)][0]
    received = [e for e in seen if isinstance(e, ToolResultReceived)][0]
    assert completed.is_error is False and received.is_error is False
    assert received.content == [{"type": "text", "text": "three"}]
    after = kinds[kinds.index(ToolResultReceived):]
    assert TurnStarted in after and events.result.text == "Tool count returned: three"
    assert nested == [1]


async def s12_busy_interrupt():
    log = proxied("s12")
    async with MeerkatClient() as c:
        s = await c.create_session("hi")
        task = asyncio.create_task(s.turn("long", provider_params=SLOW))
        await wait_active(c, s.id)
        await raises("-32002", s.turn("x"))
        assert await s.interrupt() is None
        await raises("-32005", task)
        await s.interrupt()  # idle: fine
        await raises("-32001", c._interrupt(str(uuid.uuid4())))
    interrupt = sent(log, "turn/interrupt")[0]
    assert answers(log, interrupt["id"])[0]["result"] == {"session_id": s.id, "interrupted": True,
                                                          "result": "interrupted"}


async def s13_interrupt_stream():
    proxied("s13")
    async with MeerkatClient() as c:
        s = await c.create_session("hi")
        seen = []
        async with s.stream("long", provider_params=SLOW) as events:
            try:
                async for event in events:
                    seen.append(event)
                    if isinstance(event, TextDelta) and len(seen) == 3:
                        await s.interrupt()
            except MeerkatError as exc:
                assert str(exc.code) == "-32005", exc.code
            else:
                raise AssertionError("the interrupted stream ended without an error")
        assert any(isinstance(e, TextDelta) for e in seen)
        history = await s.history()
        assert history.messages[-1].stop_reason == "cancelled"


async def s14_list_sessions():
    proxied("s14")
    async with MeerkatClient() as c:
        a = await c.create_session("labelled", labels={"team": "a"})
        b = await c.create_session("plain")
        only = await c.list_sessions(labels={"team": "a"})
        assert [x.session_id for x in only] == [a.id]
        everything = await c.list_sessions()
        assert {a.id, b.id} <= {x.session_id for x in everything}
        page = await c.list_sessions(limit=1, offset=1)
        assert len(page) == 1 and page[0].session_id == everything[1].session_id
        for x in everything:
            assert isinstance(x.created_at, int) and isinstance(x.updated_at, int)
            assert isinstance(x.is_active, bool) and isinstance(x.labels, dict)
        assert {x.session_id: x.labels for x in everything}[b.id] == {}


async def s15_read_session():
    proxied("s15")
    async with MeerkatClient() as c:
        s = await c.create_session("hello")
        details = await c.read_session(s.id)
        assert details.model and details.provider
        assert details.message_count == (await s.history()).message_count
        assert details.last_assistant_text == s.text
        await raises("-32001", c.read_session(str(uuid.uuid4())))


async def s16_history():
    log = proxied("s16")
    async with MeerkatClient() as c:

        @c.tool("lookup")
        async def lookup(arguments):
            return "found it"

        s = await c.create_session("hello")
        await s.turn("again")
        await s.turn("tool:lookup")
        page = await c.read_session_history(s.id, offset=0, limit=2)
        assert page.has_more is True and page.limit == 2 and len(page.messages) == 2
        full = await s.history()
        assert page.message_count == full.message_count == len(full.messages)
        assert {m.role for m in full.messages} <= {"user", "block_assistant", "tool_results"}
        assert page.messages[1].blocks[0].text == "Mock reply to: hello"
        uses = [b for m in full.messages for b in m.blocks if b.block_type == "tool_use"]
        assert uses and uses[0].id and uses[0].name == "lookup" and uses[0].args == {}
        results = [r for m in full.messages if m.role == "tool_results" for r in m.results]
        assert results[0].tool_use_id == uses[0].id and results[0].content == "found it"
    history_calls = sent(log, "session/history")
    assert history_calls[-1]["params"] == {"session_id": s.id, "offset": 0}, history_calls[-1]


async def s17_archive():
    proxied("s17")
    async with MeerkatClient() as c:
        s = await c.create_session("hello")
        assert await s.archive() is None
        await raises("-32001", c.read_session(s.id))
        # Upstream keeps an archived session's history readable (list and read leave it out).
        assert [m.role for m in (await s.history()).messages] == ["user", "block_assistant"]
        await raises("-32001", s.turn("x"))
        assert s.id not in {x.session_id for x in await c.list_sessions()}


async def s18_config():
    proxied("s18")
    shared = realm("config-realm", "sqlite")
    c = await MeerkatClient().connect(**shared)
    try:
        config = await c.get_config()
        g = config["generation"]
        assert isinstance(config["config"], dict) and isinstance(g, int)
        written = await c.set_config({"agent": {"max_turns": 5}}, expected_generation=g)
        assert written["generation"] == g + 1
        error = await raises("-32602", c.set_config({"agent": {"max_turns": 6}}, expected_generation=g))
        assert error.message.startswith("Generation conflict"), error.message
        merged = await c.patch_config({"agent": {"max_tokens_per_turn": 2048}})
        assert merged["config"]["agent"]["max_turns"] == 5 and merged["config"]["agent"]["max_tokens_per_turn"] == 2048
        removed = await c.patch_config({"agent": {"max_turns": None}})
        assert removed["config"]["agent"]["max_turns"] == 100  # deleted: back to the default
        assert (await c.get_config())["config"]["agent"]["max_tokens_per_turn"] == 2048
        other = await MeerkatClient().connect(**shared)
        try:
            assert (await other.get_config())["config"]["agent"]["max_tokens_per_turn"] == 2048
        finally:
            await other.close()
    finally:
        await c.close()


async def s19_catalog():
    proxied("s19")
    async with MeerkatClient() as c:
        catalog = await c.get_models_catalog()
    assert catalog["contract_version"] == {"major": 0, "minor": 9, "patch": 6}, catalog["contract_version"]
    assert catalog["providers"]
    for provider in catalog["providers"]:
        assert provider["provider"] and provider["default_model_id"] and provider["models"]


async def s20_close():
    log = proxied("s20")
    c = await MeerkatClient().connect()
    s = await c.create_session("hi")
    pending = asyncio.create_task(s.turn("long", provider_params=SLOW))
    await wait_active(c, s.id)
    await c.close()
    try:
        await pending
    except MeerkatError as exc:
        assert exc.code == "CLIENT_CLOSED", exc.code
    else:
        raise AssertionError("a call pending at close did not fail")
    assert {"stdin": "eof"} in entries(log)
    stub(STUB_CRASH_ON="session/list")
    async with MeerkatClient() as c:
        try:
            await c.list_sessions()
        except MeerkatError as exc:
            assert exc.code == "CONNECTION_CLOSED", exc.code
            assert "crashing on session/list" in exc.details["stderr_tail"], exc.details
        else:
            raise AssertionError("a crashed server went unnoticed")


async def s21_negative_checks():
    """Over everything our server wrote in this run: nothing the published SDK would reject."""
    assert LOGS, "no scenario recorded traffic"
    lines = 0
    for log in LOGS:
        if not log.exists():
            continue
        for entry in entries(log):
            message = entry.get("to_client")
            if message is None:
                continue
            lines += 1
            assert isinstance(message, dict)
            if message.get("method") == "session/event":
                event = message["params"]["event"]
                for key in ("event_id",):
                    assert str(uuid.UUID(event[key])) == event[key]
                assert event["source"]["type"] == "session"
                source_id = event["source"]["session_id"]
                assert str(uuid.UUID(source_id)) == source_id
                assert event["payload"]["type"] in INVENTORY, event["payload"]["type"]
            result = message.get("result")
            if isinstance(result, dict):
                for entry_ in result.get("sessions", []) + [result]:
                    assert entry_.get("labels", {}) is not None
                    assert entry_.get("provider", "x") != ""
                for row in result.get("messages", []):
                    assert row["role"] != "assistant"
    assert lines > 100, lines


# -- beyond rpc-wire.md: the rest of the SDK's surface, called the way users' code calls it --------


async def s22_options_users_pass():
    """Every create/turn option of the SDK is accepted (acted on or ignored), block prompts, deferred sessions."""
    proxied("s22")
    async with MeerkatClient() as c:
        s = await c.create_session(
            "hi", model="mock", system_prompt="Be brief", max_tokens=100, labels={"app": "s22"},
            additional_instructions=["x"], app_context={"k": 1}, budget_limits={"max_tokens": 10000},
            enable_builtins=True, keep_alive=False, injected_context=["ctx"], transient_turn_context="t",
            output_schema={"type": "object"}, structured_output_retries=1)
        assert s.text == "Mock reply to: hi" and s.structured_output is None and s.ref.endswith(s.id)
        scripted = await c.create_session("hi", provider_params={"reply": "made"})
        assert scripted.text == "made" and (await scripted.turn("again")).text == "made"  # kept for the session
        quiet = await c.create_session("hi", system_prompt={"action": "disable"})
        assert quiet.text == "Mock reply to: hi"
        blocks = await c.create_session([{"type": "text", "text": "blocky"}])
        assert blocks.text == "Mock reply to: blocky"
        r = await s.turn("again", model="mock", max_tokens=2, system_prompt="sys", additional_instructions=["a"],
                         keep_alive=False, injected_context=["x"], transient_turn_context="tt")
        assert r.text == "Mock reply " and s.last_result is r  # max_tokens=2 words
        r = await s.turn([{"type": "text", "text": "b"}])
        assert r.text == "Mock reply to: b" and r.usage.input_tokens > 0 and r.session_id == s.id
        deferred = await c.create_deferred_session("later", labels={"app": "deferred"})
        details = await c.read_session(deferred.id)
        assert details.message_count == 0 and details.labels == {"app": "deferred"}
        assert (await deferred.history()).messages == []
        first = await deferred.start_turn("now", provider_params={"reply": "first"})
        assert first.text == "first" and first.session_id == deferred.id
        assert [x.session_id for x in await c.list_sessions(labels={"app": "deferred"})] == [deferred.id]
        assert (await deferred.history()).message_count == 2


async def s23_streams_users_write():
    """``match`` on typed events, collect()/collect_text(), two streams at once, failures inside a stream."""
    proxied("s23")
    async with MeerkatClient() as c:
        s = await c.create_session("hi")
        text, stops, totals = [], [], []
        async with s.stream("m") as events:
            async for event in events:
                match event:
                    case TextDelta(delta=chunk):
                        text.append(chunk)
                    case TurnCompleted(stop_reason=reason):
                        stops.append(reason)
                    case RunCompleted(result=final, usage=usage):
                        totals.append((final, usage.input_tokens))
        assert "".join(text) == "Mock reply to: m" and stops == ["end_turn"]
        assert totals == [("Mock reply to: m", events.result.usage.input_tokens)]
        assert (await s.stream("coll").collect()).text == "Mock reply to: coll"
        streamed, result = await s.stream("coll2").collect_text()
        assert streamed == result.text == "Mock reply to: coll2"
        created = c.create_session_streaming("cs", labels={"app": "s23"})
        assert (await created.collect()).session_id == created.session_id
        a, b = await c.create_session("a"), await c.create_session("b")

        async def deltas(session, prompt):
            async with session.stream(prompt, provider_params={"reply_words": 20, "token_delay_ms": 2}) as events:
                return [e.delta async for e in events if isinstance(e, TextDelta)], events.result

        (da, ra), (db, rb) = await asyncio.gather(deltas(a, "one"), deltas(b, "two"))
        assert "".join(da) == ra.text and "".join(db) == rb.text and len(da) == len(db) == 20
        seen = []
        try:
            async with s.stream("x", provider_params={"fail": "boom"}) as events:
                async for event in events:
                    seen.append(event)
        except MeerkatError as exc:
            assert str(exc.code) == "-32010" and "boom" in exc.message, exc
        else:
            raise AssertionError("a failed stream ended without an error")
        assert isinstance(seen[-1], RunFailed) and "boom" in seen[-1].error, seen
        error = await raises("-32010", s.turn("x", provider_params={"fail": "boom"}))
        assert error.details["reason"]["provider_error"] == {"message": "boom"}, error.details
        error = await raises("-32602", s.turn("x", provider_params={"bogus": 1}))
        assert "bogus" in error.message
        error = await raises("-32602", c.create_session_streaming("x", model="nope-1").collect())
        assert "nope-1" in error.message
        assert (await s.turn("still fine")).text == "Mock reply to: still fine"


async def s24_edges_users_hit():
    """Paging past the end, repeated archive, stale config, methods this host lacks, tools that hang or are huge."""
    proxied("s24")
    async with MeerkatClient() as c:
        gate = asyncio.Event()

        @c.tool("slow")
        async def slow(arguments):
            gate.set()
            await asyncio.sleep(60)
            return "too late"

        @c.tool("big")
        async def big(arguments):
            return "x" * (3 * 1024 * 1024)

        s = await c.create_session("hello")
        page = await c.read_session_history(s.id, limit=1)
        assert page.limit == 1 and page.has_more is True and len(page.messages) == 1
        past = await c.read_session_history(s.id, offset=100)
        assert past.messages == [] and past.has_more is False and past.message_count == 2
        assert await c.list_sessions(offset=1000) == [] and await c.list_sessions(labels={"no": "such"}) == []
        pending = asyncio.create_task(s.turn("tool:slow"))
        await gate.wait()  # the server is waiting on our tool/execute answer
        await s.interrupt()
        await raises("-32005", pending)
        assert (await s.turn("after")).text == "Mock reply to: after"
        assert (await s.turn("tool:big")).text == "Tool big returned: " + "x" * (3 * 1024 * 1024)
        error = await raises("-32601", c.get_blob("no-such-blob"))
        assert "blob/get" in error.message
        generation = (await c.get_config())["generation"]
        await c.patch_config({"agent": {"max_turns": 7}}, expected_generation=generation)
        error = await raises("-32602", c.patch_config({"agent": {"max_turns": 8}}, expected_generation=generation))
        assert error.message.startswith("Generation conflict")
        assert (await c.get_config())["config"]["agent"]["max_turns"] == 7
        await s.archive()
        await raises("-32001", s.archive())
        await raises("-32001", s.interrupt())
        assert (await c.read_session_history(s.id)).message_count > 0  # archived history stays readable


async def s25_connect_roots():
    """connect(context_root=...) serves the realm the CLI keeps in that project; live channels are refused by name."""
    log = proxied("s25")
    project = WORK / "s25-project"
    (project / ".rkat").mkdir(parents=True)
    (project / "src").mkdir()
    saved = os.environ.pop("RKAT_STATE_ROOT")
    os.environ["XDG_DATA_HOME"] = str(WORK / "s25-data")
    try:
        c = await MeerkatClient().connect(realm_id="proj", state_root=str(project / ".rkat" / "realms"))
        try:
            kept = await c.create_session("kept in the project")
        finally:
            await c.close()
        c = await MeerkatClient().connect(realm_id="proj", context_root=str(project / "src"),
                                          user_config_root=str(WORK))
        try:
            assert [x.session_id for x in await c.list_sessions()] == [kept.id]
        finally:
            await c.close()
        c = await MeerkatClient().connect(realm_id="proj")  # the user-global root: not the project's realm
        try:
            assert await c.list_sessions() == []
        finally:
            await c.close()
        try:
            await MeerkatClient().connect(live_ws=True)
        except MeerkatError as exc:
            assert exc.code == "CONNECTION_CLOSED" and "live channels" in exc.details["stderr_tail"], exc
        else:
            raise AssertionError("live_ws=True was accepted")
    finally:
        os.environ["RKAT_STATE_ROOT"] = saved
        os.environ.pop("XDG_DATA_HOME")
    argvs = [e["argv"] for e in entries(log) if "argv" in e]
    assert argvs[1] == ["--realm", "proj", "--context-root", str(project / "src"), "--user-config-root", str(WORK)]


SCENARIOS = [s1_discovery, s2_argv, s3_handshake, s4_version_gate, s5_create_session, s6_turn, s7_stream,
             s8_create_streaming, s9_tool_before_connect, s10_tool_after_connect, s11_tool_while_streaming,
             s12_busy_interrupt, s13_interrupt_stream, s14_list_sessions, s15_read_session, s16_history,
             s17_archive, s18_config, s19_catalog, s20_close, s22_options_users_pass,
             s23_streams_users_write, s24_edges_users_hit, s25_connect_roots, s21_negative_checks]
ORIGINAL_PATH = os.environ.get("PATH", "")


if __name__ == "__main__":
    run_scenarios(SCENARIOS)
