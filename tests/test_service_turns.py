"""Turns through the in-process API, on every backend: results, events, tools, busy, interrupt."""

from __future__ import annotations

import pytest
import trio

from meerkat.errors import (
    BudgetExhausted,
    InvalidParams,
    ProviderError,
    RequestCancelled,
    SessionBusy,
    SessionNotFound,
    StoreError,
)
from meerkat.testing import FakeProviderServer, Reply
from meerkat.testing.fake_server import serve_fake_provider_server
from meerkat.transcript import BlockAssistantMessage, ToolResultsMessage, UserMessage

from helpers import running_service
from provider_cases import clear_keys

SLOW = {"reply_words": 400, "token_delay_ms": 5}


async def _collect(stream):
    return [envelope async for envelope in stream]


async def test_create_runs_first_turn_and_continues(service):
    result = await service.create_session("What is the capital of France?")
    assert result.text == "Mock reply to: What is the capital of France?"
    assert result.turns == 1 and result.tool_calls == 0
    assert result.usage.output_tokens == 9
    again = await service.start_turn(result.session_id, "Now explain it in more detail")
    assert again.session_id == result.session_id
    assert again.text == "Mock reply to: Now explain it in more detail"
    # usage is session-cumulative; run_usage is this run's share
    assert again.usage.output_tokens == result.usage.output_tokens + again.run_usage.output_tokens
    view = await service.read_session(result.session_id)
    assert view.message_count == 4
    assert view.last_assistant_text == again.text
    assert view.is_active is False
    assert (view.model, view.provider) == ("mock", "mock")


async def test_text_run_event_sequence(service):
    stream = await service.create_session_streaming("hello there")
    events = await _collect(stream)
    result = await stream.result()
    types = [e.type for e in events]
    assert types[:2] == ["run_started", "turn_started"]
    assert types[-3:] == ["text_complete", "turn_completed", "run_completed"]
    assert set(types[2:-3]) == {"text_delta"}
    deltas = "".join(e.payload.delta for e in events if e.type == "text_delta")
    assert deltas == result.text == "Mock reply to: hello there"
    seqs = [e.seq for e in events]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert all(e.source.session_id == result.session_id for e in events)
    assert events[0].payload.identity.run_id == result.run_id
    assert events[-1].payload.usage.output_tokens == result.usage.output_tokens


async def test_tool_run_emits_upstream_sequence_and_transcript(service):
    result = await service.create_session("start")
    stream = await service.start_turn_streaming(result.session_id, 'use tool:datetime and tool:datetime{"x": 1}')
    types = [e.type for e in await _collect(stream)]
    final = await stream.result()
    assert types[:4] == ["run_started", "turn_started", "tool_call_requested", "tool_call_requested"]
    assert types[4:10] == ["tool_execution_started", "tool_execution_started",
                           "tool_execution_completed", "tool_result_received",
                           "tool_execution_completed", "tool_result_received"]
    assert types[10:12] == ["turn_completed", "turn_started"]
    assert types[-1] == "run_completed"
    assert final.turns == 2 and final.tool_calls == 2
    assert final.text.startswith("Tool datetime returned: {\"iso8601\"")
    history = await service.read_history(result.session_id)
    roles = [type(m) for m in history.messages]
    assert roles[-4:] == [UserMessage, BlockAssistantMessage, ToolResultsMessage, BlockAssistantMessage]
    tool_row = history.messages[-3]
    assert tool_row.stop_reason == "tool_use"
    calls = [b for b in tool_row.blocks if b.block_type == "tool_use"]
    assert [c.data["args"] for c in calls] == [{}, {"x": 1}]
    results = history.messages[-2].results
    assert [r.tool_use_id for r in results] == [c.data["id"] for c in calls]


async def test_second_turn_while_running_is_busy_naming_the_turn(service):
    created = await service.create_session("first", run_immediately=False, provider_params=SLOW)
    stream = await service.start_turn_streaming(created.session_id, "long one")
    with pytest.raises(SessionBusy) as busy:
        await service.start_turn(created.session_id, "second")
    assert busy.value.running_run_id == stream.run_id
    assert busy.value.spec.jsonrpc_code == -32002 and busy.value.spec.http_status == 409
    assert busy.value.spec.exit_code == 11
    view = await service.read_session(created.session_id)  # reads are served mid-turn
    assert view.is_active and view.running_run_id == stream.run_id
    await service.interrupt(created.session_id)
    with pytest.raises(RequestCancelled):
        await stream.result()


async def test_interrupt_mid_stream_keeps_partial_text(service):
    created = await service.create_session("first", run_immediately=False, provider_params=SLOW)
    stream = await service.start_turn_streaming(created.session_id, "tell me a long story")
    seen = []
    async for envelope in stream:
        if envelope.type == "text_delta":
            seen.append(envelope.payload.delta)
            if len(seen) == 5:
                break
    outcome = await service.interrupt(created.session_id)
    assert outcome.interrupted is True and outcome.run_id == stream.run_id
    rest = await _collect(stream)
    assert rest[-1].type == "run_failed"
    assert rest[-1].payload.error_report.error_class == "cancelled"
    with pytest.raises(RequestCancelled):
        await stream.result()
    history = await service.read_history(created.session_id)
    user, partial = history.messages[-2], history.messages[-1]
    assert user.content == "tell me a long story"
    assert partial.stop_reason == "cancelled"
    partial_text = partial.blocks[-1].data["text"]
    streamed = "".join(seen) + "".join(e.payload.delta for e in rest if e.type == "text_delta")
    assert partial_text == streamed and len(seen) >= 5
    view = await service.read_session(created.session_id)
    assert view.is_active is False and view.message_count == 2
    # The interrupted call is charged: its input as reported when the stream started (the
    # mock, like Anthropic, reports it then: 5 words), its output estimated from the text shown.
    assert view.usage.input_tokens == 5 and view.usage.output_tokens >= len(streamed) // 4 > 0, view.usage
    # the session stays usable
    after = await service.start_turn(created.session_id, "go on", provider_params={"reply": "done"})
    assert after.text == "done"


async def test_interrupt_idle_session_is_a_noop(service):
    created = await service.create_session("hi")
    outcome = await service.interrupt(created.session_id)
    assert outcome.interrupted is False
    assert (await service.read_session(created.session_id)).message_count == 2


async def test_provider_failure_fails_the_run_and_keeps_the_input(service):
    created = await service.create_session("hi")
    stream = await service.start_turn_streaming(created.session_id, "break", provider_params={"fail": "boom"})
    events = await _collect(stream)
    with pytest.raises(ProviderError, match="boom"):
        await stream.result()
    assert events[-1].type == "run_failed"
    assert events[-1].payload.error_report.error_class == "llm"
    history = await service.read_history(created.session_id)
    assert history.messages[-1].content == "break"  # the user's input is not lost
    ok = await service.start_turn(created.session_id, "again")
    assert ok.text == "Mock reply to: again"


async def test_unavailable_provider_is_a_provider_error(service):
    created = await service.create_session("hi")
    with pytest.raises(ProviderError, match="mock"):
        await service.start_turn(created.session_id, "hello", model="claude-sonnet-4-6")
    assert (await service.read_session(created.session_id)).model == "mock"


async def test_max_tokens_per_turn_stops_the_reply(service):
    result = await service.create_session("count", max_tokens=3, provider_params={"reply_words": 50})
    assert result.text == "lorem ipsum dolor "
    history = await service.read_history(result.session_id)
    assert history.messages[-1].stop_reason == "max_tokens"


async def test_token_budget_completes_then_refuses(service):
    created = await service.create_session("one two three", budget_max_tokens=20,
                                           provider_params={"reply_words": 30})
    assert created.terminal_cause_kind == "budget_exhausted"
    stream_session = created.session_id
    with pytest.raises(BudgetExhausted) as exhausted:
        await service.start_turn(stream_session, "more")
    assert exhausted.value.spec.jsonrpc_code == -32011


async def test_budget_warning_event(service):
    stream = await service.create_session_streaming("a b c", budget_max_tokens=10,
                                                    provider_params={"reply_words": 20})
    events = await _collect(stream)
    warning = [e for e in events if e.type == "budget_warning"]
    assert len(warning) == 1 and warning[0].payload.limit == 10 and warning[0].payload.used >= 10
    assert events[-1].payload.terminal_cause_kind == "budget_exhausted"


async def test_deferred_create_runs_nothing(service):
    result = await service.create_session("ignored", run_immediately=False, system_prompt="Be brief.")
    assert result.turns == 0 and result.text == ""
    history = await service.read_history(result.session_id)
    assert [m.content for m in history.messages] == ["Be brief."]
    ran = await service.start_turn(result.session_id, "now")
    assert ran.text == "Mock reply to: now"


@pytest.mark.parametrize("prompt", ["", "   ", 42, None, [], [{"text": "no type"}]])
async def test_bad_prompts_are_invalid_params(service, prompt):
    with pytest.raises(InvalidParams, match="prompt"):
        await service.create_session_streaming(prompt)
    assert await service.list_sessions() == []


async def test_unknown_session_ids(service):
    for bad in ["01936f8a-7b2c-7000-8000-000000000001", "nope", "../x", ""]:
        with pytest.raises(SessionNotFound):
            await service.read_session(bad)
        with pytest.raises(SessionNotFound):
            await service.start_turn(bad, "hi")
        with pytest.raises(SessionNotFound):
            await service.read_history(bad)
        with pytest.raises(SessionNotFound):
            await service.interrupt(bad)
        with pytest.raises(SessionNotFound):
            await service.archive(bad)


async def test_bad_create_params_name_the_field(service):
    with pytest.raises(InvalidParams, match="labels"):
        await service.create_session("x", labels={"a": 1})
    with pytest.raises(InvalidParams, match="max_tokens"):
        await service.create_session("x", max_tokens=0)
    with pytest.raises(InvalidParams, match="provider"):
        await service.create_session("x", provider="nonsense")
    with pytest.raises(InvalidParams, match="cannot infer provider"):
        await service.create_session("x", model="mystery-model")
    with pytest.raises(InvalidParams, match="provider_params"):
        await service.create_session("x", provider_params={"bogus": 1})
    assert await service.list_sessions() == []


class GatedVendor(FakeProviderServer):
    """A fake Anthropic that answers no call until ``expected`` calls are waiting at once."""

    def __init__(self, expected: int) -> None:
        super().__init__(default=Reply(text="together"))
        self.expected = expected
        self.waiting = 0
        self.all_waiting = trio.Event()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.waiting += 1
            if self.waiting >= self.expected:
                self.all_waiting.set()
            await self.all_waiting.wait()
        await super().__call__(scope, receive, send)


async def test_concurrent_sessions_run_in_parallel(service, monkeypatch):
    # The vendor holds every call until all 20 are in flight: sessions run one after another
    # would never get an answer. (A wall-clock bound here failed on a loaded machine.)
    clear_keys(monkeypatch)
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    vendor = GatedVendor(expected=20)
    results = {}
    async with trio.open_nursery() as servers:
        monkeypatch.setenv("RKAT_ANTHROPIC_BASE_URL", await servers.start(serve_fake_provider_server, vendor))
        ids = [(await service.create_session("s", model="claude-sonnet-4-6", run_immediately=False)).session_id
               for _ in range(20)]

        async def one(sid):
            results[sid] = await service.start_turn(sid, f"hello {sid}")

        with trio.fail_after(120):  # a safety net against a hang, not a measurement
            async with trio.open_nursery() as nursery:
                for sid in ids:
                    nursery.start_soon(one, sid)
        servers.cancel_scope.cancel()
    assert {sid: r.text for sid, r in results.items()} == {sid: "together" for sid in ids}
    assert len(vendor.requests) == 20


async def test_bad_turn_and_subscribe_params_name_the_field(service):
    created = await service.create_session("hi")
    with pytest.raises(InvalidParams, match="system_prompt"):
        await service.start_turn(created.session_id, "x", system_prompt=42)
    for bad in ("many", 0, -3):
        with pytest.raises(InvalidParams, match="max_tokens"):
            await service.start_turn(created.session_id, "x", max_tokens=bad)
    with pytest.raises(InvalidParams, match="provider_params"):
        await service.start_turn(created.session_id, "x", provider_params=["not", "a", "dict"])
    with pytest.raises(InvalidParams, match="model"):
        await service.start_turn(created.session_id, "x", model="")
    for bad in ("3", -1, 1.5, True):
        with pytest.raises(InvalidParams, match="after_seq"):
            await service.subscribe(created.session_id, after_seq=bad)
    # nothing was written by the refused calls, and the session still works
    assert (await service.read_session(created.session_id)).message_count == 2
    assert (await service.start_turn(created.session_id, "fine")).text == "Mock reply to: fine"


@pytest.mark.parametrize("backend", ["sqlite", "memory"])
async def test_a_turn_whose_commit_failed_frees_its_session_once_the_store_answers(tmp_path, backend, monkeypatch):
    """A store outage at the commit fails the turn with STORE_ERROR; the run, left ``running`` with
    nobody renewing it, is closed by its owner as soon as the store answers again: the session takes
    a new turn at once, not after its lease (60 s here) has run out."""
    async with running_service(tmp_path, backend, lease_ttl=60.0) as service:
        created = await service.create_session("first")
        store = service.supervisor.store
        real_commit, real_close, outage, tries = store.commit_run, store.close_stale_run, [True], []

        def commit_fails(commit):
            raise StoreError("the store is down (test)")

        def close_fails_while_down(*args, **kwargs):
            tries.append(outage[0])
            if outage[0]:
                raise StoreError("the store is down (test)")
            return real_close(*args, **kwargs)

        monkeypatch.setattr(store, "commit_run", commit_fails)
        monkeypatch.setattr(store, "close_stale_run", close_fails_while_down)
        with pytest.raises(StoreError, match="down"):
            await service.start_turn(created.session_id, "lost")
        monkeypatch.setattr(store, "commit_run", real_commit)
        with trio.fail_after(10):  # the owner keeps trying to close the run while the store is down
            while len(tries) < 2:
                await trio.sleep(0.01)
        outage[0] = False
        with trio.fail_after(10):
            while True:
                try:
                    result = await service.start_turn(created.session_id, "again")
                    break
                except SessionBusy:
                    await trio.sleep(0.05)
        assert result.text == "Mock reply to: again"
        assert tries[:2] == [True, True] and tries[-1] is False
        view = await service.read_session(created.session_id)
        assert view.message_count >= 4 and view.last_assistant_text == "Mock reply to: again"
