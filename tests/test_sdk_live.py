"""Our Python SDK's live-session calls against a real ``rkat-rpc``, on trio and asyncio."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from meerkat import MeerkatClient, TextDelta
from meerkat.client import EventsPage, InjectResult, InputState, StopReceipt
from meerkat.errors import MeerkatError, SessionNotFound
from meerkat.events import RunCompleted, RunStarted

SLOW = {"reply_words": 400, "token_delay_ms": 20}


@pytest.fixture(params=["trio", "asyncio"])
def run(request):
    return lambda fn, *args: anyio.run(fn, *args, backend=request.param)


@pytest.fixture(autouse=True)
def private_state(tmp_path, monkeypatch):
    monkeypatch.setenv("RKAT_STATE_ROOT", str(tmp_path / "fresh"))
    monkeypatch.delenv("MEERKAT_BIN_PATH", raising=False)


async def live_scenario(root: Path) -> None:
    a = await MeerkatClient().connect(realm_id="live", realm_backend="sqlite", state_root=root)
    b = await MeerkatClient().connect(realm_id="live", realm_backend="sqlite", state_root=root)
    try:
        session = await a.create_session("hello")
        # b follows the session; a (another process) runs the turn
        subscription = await b.subscribe_events(session.id)
        seen = []

        async def follow() -> None:
            async for envelope in subscription:
                seen.append(envelope)
                if isinstance(envelope.payload, RunCompleted):
                    return

        async with anyio.create_task_group() as group:
            group.start_soon(follow)
            await anyio.sleep(0.2)
            result = await session.turn("one two three")
        assert isinstance(seen[0].payload, RunStarted)
        assert "".join(e.payload.delta for e in seen if isinstance(e.payload, TextDelta)) == result.text
        assert subscription.last_seq == seen[-1].seq
        await subscription.close()
        assert subscription.end_reason == "closed"

        # the durable log, from either process
        latest = await b.latest_event_cursor(session.id)
        assert latest == seen[-1].seq
        page = await b.list_events_since(session.id, seen[2].seq)
        assert isinstance(page, EventsPage) and [e.event_id for e in page.events] == [e.event_id for e in seen[3:]]
        assert page.latest == latest and page.has_more is False
        assert (await a.list_events_since(session.id, 0, limit=2)).has_more is True

        # injected context and per-turn instructions reach the model
        injected = await session.inject_context("The colour is TEAL.", idempotency_key="k")
        assert isinstance(injected, InjectResult) and injected.status == "applied"
        assert (await session.inject_context("The colour is TEAL.", idempotency_key="k")).status == "duplicate"
        state = await a.input_state(session.id, idempotency_key="k")
        assert isinstance(state, InputState) and state.current_state == "applied"
        answer = await session.turn("mock:system", additional_instructions=["Reply in haiku."])
        assert "TEAL" in answer.text and "Reply in haiku." in answer.text

        # stop_run: stale ids are not_current; the current run stops
        stale = await session.stop_run("01936f8a-7b2c-7000-8000-0000000000aa")
        assert isinstance(stale, StopReceipt) and stale.outcome == "not_current" and stale.current_run_id is None
        run_id = None
        async with session.stream("long", provider_params=SLOW) as events:
            try:
                async for event in events:
                    if isinstance(event, RunStarted):
                        run_id = event.identity.run_id
                    elif isinstance(event, TextDelta):
                        receipt = await b.stop_run(session.id, run_id, reason="enough")
                        assert receipt.outcome == "stopped" and receipt.run_id == run_id
            except MeerkatError as exc:
                assert exc.code.value == "REQUEST_CANCELLED"

        # external events queue up and run
        queued = await b.send_external_event(session.id, "ci.done", {"ok": True}, idempotency_key="e")
        assert queued.outcome_type == "accepted"
        with anyio.fail_after(20):
            while (await b.input_state(session.id, idempotency_key="e")).current_state != "consumed":
                await anyio.sleep(0.05)
        assert [r.realm_id for r in await a.list_realms()][0] == "live"
        assert (await a.runtime_health())["status"] == "ok"
        with pytest.raises(SessionNotFound):
            await a.subscribe_events("01936f8a-7b2c-7000-8000-000000000099")
    finally:
        await a.close()
        await b.close()


def test_live_session_calls(run, tmp_path):
    run(live_scenario, tmp_path / "state")
