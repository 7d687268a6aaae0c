"""The published ``meerkat-sdk`` 0.9.6's live-session API against our ``rkat-rpc``.

Run by ``tests/test_sdk_published_live.py`` with the interpreter of ``.venv-sdk``:
subscriptions, the durable event log and its cursors (also across a restart and
across two processes on one realm), run-fenced stop, context injection, external
events, discovery. Environment: ``REAL_BIN`` (our rkat-rpc), ``PROXY_BIN`` (the
recording proxy named rkat-rpc), ``WORK`` (scratch). One JSON line per scenario.
"""

import asyncio

from meerkat import MeerkatError, RunCompleted, RunFailed, RunStarted, TextDelta
from meerkat.generated.errors import StaleCursorError
from published_common import client, proxied, raises, realm, run_scenarios

SLOW = {"reply_words": 300, "token_delay_ms": 20}


def scope(session_id):
    return {"type": "session", "session_id": session_id}


def since(session_id, sequence, limit=None):
    params = {"scope": scope(session_id), "cursor": {"scope": scope(session_id), "sequence": sequence}}
    if limit is not None:
        params["limit"] = limit
    return params


async def collect_until_terminal(subscription, limit=2000):
    got = []
    async for event in subscription:
        got.append(event)
        if isinstance(event.payload, (RunCompleted, RunFailed)) or len(got) >= limit:
            break
    return got


async def wait_for(predicate, timeout=20.0):
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition never held")
        await asyncio.sleep(0.02)


# -- scenarios -------------------------------------------------------------------------


async def l1_subscription_sees_every_delta():
    """A subscription opened before a turn sees all its text deltas, in seq order, then ends cleanly on close."""
    async with proxied("l1") as c:
        s = await c.create_session("first")
        sub = await s.subscribe_events()
        reader = asyncio.create_task(collect_until_terminal(sub))
        await asyncio.sleep(0.05)
        result = await s.turn("count the words please")
        events = await reader
        deltas = "".join(e.payload.delta for e in events if isinstance(e.payload, TextDelta))
        assert deltas == result.text, (deltas, result.text)
        assert isinstance(events[0].payload, RunStarted)
        seqs = [e.seq for e in events]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs))), seqs
        assert sub.last_rpc_sequence == len(events) and sub.last_event_seq == seqs[-1]
        await sub.close()
        assert sub.terminal_outcome is None or sub.terminal_outcome.get("error") is None
        async for _ in sub:  # closed: iteration ends at once
            raise AssertionError("event after close")


async def l2_subscription_follows_another_process():
    """Client B subscribes; client A (another rkat-rpc on the same realm) runs the turn; B sees it and its end."""
    a, b = client(), client()
    await a.connect(**realm("l2"))
    await b.connect(**realm("l2"))
    try:
        s = await a.create_session("hello")
        sub = await b.subscribe_session_events(s.id)
        reader = asyncio.create_task(collect_until_terminal(sub))
        await asyncio.sleep(0.2)
        result = await s.turn("from a", provider_params={"reply_words": 30, "token_delay_ms": 2})
        events = await asyncio.wait_for(reader, 20)
        deltas = "".join(e.payload.delta for e in events if isinstance(e.payload, TextDelta))
        assert deltas == result.text and isinstance(events[-1].payload, RunCompleted)
        # Archiving ends the stream cleanly.
        reader = asyncio.create_task(collect_until_terminal(sub))
        await s.archive()
        assert await asyncio.wait_for(reader, 20) == []
        assert sub.terminal_outcome is not None and sub.terminal_outcome.get("error") is None
    finally:
        await a.close()
        await b.close()


async def l3_event_log_cursors_survive_restart():
    """list_since returns exactly the events after the cursor, also from a new rkat-rpc process."""
    c = await client().connect(**realm("l3"))
    try:
        s = await c.create_session("one")
        live = []
        sub = await s.subscribe_events()
        reader = asyncio.create_task(collect_until_terminal(sub))
        await asyncio.sleep(0.05)
        await s.turn("two three four")
        live = await reader
        await sub.close()
        latest = (await c.latest_event_cursor({"scope": scope(s.id)}))["cursor"]
        assert latest == {"scope": scope(s.id), "sequence": live[-1].seq}, latest
        cut = live[3].seq
        page = await c.list_events_since(since(s.id, cut))
        assert [e["seq"] for e in page["events"]] == [e.seq for e in live[4:]]
        assert [e["event_id"] for e in page["events"]] == [str(e.event_id) for e in live[4:]]
        assert page["has_more"] is False and page["latest_cursor"] == latest
        assert page["from_cursor"]["sequence"] == cut
        first = await c.list_events_since({"scope": scope(s.id), "limit": 3})
        assert [e["seq"] for e in first["events"]] == [1, 2, 3] and first["has_more"] is True
        snap = await c.event_snapshot({"scope": scope(s.id)})
        assert snap["cursor"] == latest and snap["snapshot"]["message_count"] == 4
    finally:
        await c.close()
    c = await client().connect(**realm("l3"))  # a new process: only the durable log knows
    try:
        again = await c.list_events_since(since(s.id, cut))
        assert again["events"] == page["events"]
        await raises("-32001", c.list_events_since(since("01936f8a-7b2c-7000-8000-000000000099", 0)))
        await raises("-32602", c.list_events_since({"scope": {"type": "mob", "mob_id": "x"}}))
    finally:
        await c.close()


async def l4_stale_cursor():
    """A cursor older than the retention keeps is refused with the typed stale-cursor error."""
    async with client() as c:
        generation = (await c.get_config())["generation"]
        await c.patch_config({"limits": {"event_retention": 8}}, expected_generation=generation)
        s = await c.create_session("a")
        for n in range(4):  # ~45 events each: past the retention and its pruning slack (64)
            await s.turn(f"turn {n}", provider_params={"reply_words": 40})
        try:
            await c.list_events_since(since(s.id, 1))
        except StaleCursorError as exc:
            watermark = exc.details["watermark"]
            assert exc.details["requested"] == 1 and watermark > 1
        else:
            raise AssertionError("a pruned cursor was served")
        page = await c.list_events_since(since(s.id, watermark))
        assert page["events"][0]["seq"] == watermark + 1


async def l5_stop_run():
    """stop_run: a stale run id is not_current; the current one stops (the turn fails -32005, partial kept)."""
    async with proxied("l5") as c:
        s = await c.create_session("warm up")
        receipt = (await s.stop_run("01936f8a-7b2c-7000-8000-0000000000aa", reason="stale")).receipt
        assert receipt == {"outcome": "not_current", "run_id": "01936f8a-7b2c-7000-8000-0000000000aa",
                           "current_run_id": None}, receipt
        run_id = None
        deltas = 0
        async with s.stream("long answer", provider_params=SLOW) as events:
            try:
                async for event in events:
                    if isinstance(event, RunStarted):
                        run_id = event.identity["run_id"]
                        other = await s.stop_run("01936f8a-7b2c-7000-8000-0000000000bb", reason="wrong run")
                        assert other.receipt["outcome"] == "not_current"
                        assert other.receipt["current_run_id"] == run_id
                    if isinstance(event, TextDelta):
                        deltas += 1
                        if deltas == 3:
                            stopped = await s.stop_run(run_id, reason="user pressed stop")
                            assert stopped.receipt["outcome"] == "stopped", stopped
                            assert stopped.receipt["run_id"] == run_id
                            assert stopped.receipt["contributors"] == []
            except MeerkatError as exc:
                assert str(exc.code) == "-32005", exc.code
            else:
                raise AssertionError("a stopped turn succeeded")
        history = await s.history()
        assert history.messages[-1].stop_reason == "cancelled"
        assert (await s.stop_run(run_id, reason="again")).receipt["outcome"] == "not_current"


async def l6_stop_run_across_processes():
    """Client B stops the run client A's process runs."""
    a, b = client(), client()
    await a.connect(**realm("l6"))
    await b.connect(**realm("l6"))
    try:
        s = await a.create_session("hi")
        run_id = None
        async with s.stream("slow", provider_params=SLOW) as events:
            try:
                async for event in events:
                    if isinstance(event, RunStarted):
                        run_id = event.identity["run_id"]
                    if isinstance(event, TextDelta) and run_id is not None:
                        # The SDK's own path of Session.stop_run, from a client that holds only the id.
                        stopped = await b._stop_run(s.id, run_id, "from b")  # noqa: SLF001
                        assert stopped.receipt["outcome"] == "stopped", stopped.receipt
                        run_id = None
            except MeerkatError as exc:
                assert str(exc.code) == "-32005", exc.code
            else:
                raise AssertionError("a turn stopped from another process succeeded")
        assert (await s.history()).messages[-1].stop_reason == "cancelled"
    finally:
        await a.close()
        await b.close()


async def l7_inject_and_instructions():
    """Injected context is a durable system row the model sees; additional_instructions last one turn."""
    async with proxied("l7") as c:
        s = await c.create_session("hello")
        first = await s.inject_context("The secret word is PAPAYA.", source="ops", idempotency_key="k-1")
        assert first["status"] == "applied"
        again = await s.inject_context("The secret word is PAPAYA.", source="ops", idempotency_key="k-1")
        assert again["status"] == "duplicate"
        state = await c.input_state(s.id, idempotency_key="k-1")
        assert state["current_state"] == "applied" and state["idempotency_key"] == "k-1"
        assert await c.input_state(s.id, idempotency_key="nope") is None
        await raises("-32004", s.inject_context("Another text", idempotency_key="k-1"))
        rows = (await s.history()).messages
        assert [r.role for r in rows].count("system") == 1 and rows[-1].role == "system"
        assert rows[-1].content == "The secret word is PAPAYA."
        seen = await s.turn("mock:system", additional_instructions=["Answer in French."])
        assert "PAPAYA" in seen.text and "Answer in French." in seen.text, seen.text
        later = await s.turn("mock:system")
        assert "PAPAYA" in later.text and "French" not in later.text, later.text
    async with client() as c:
        await raises("-32001", c.inject_context("01936f8a-7b2c-7000-8000-000000000099", "x"))


async def l8_external_events():
    """An external event queues, runs as a turn, and is found again by its key; the inbox is bounded."""
    async with client() as c:
        s = await c.create_session("hello")
        sub = await s.subscribe_events()
        reader = asyncio.create_task(collect_until_terminal(sub))
        await asyncio.sleep(0.05)
        accepted = await s.send_external_event("build.finished", {"status": "green", "n": 3},
                                               idempotency_key="ev-1")
        assert accepted["outcome_type"] == "accepted" and accepted["policy"] == "queue"
        events = await asyncio.wait_for(reader, 20)
        started = events[0].payload
        assert isinstance(started, RunStarted) and "build.finished" in str(started.input), started
        await sub.close()

        async def consumed():
            state = await c.input_state(s.id, idempotency_key="ev-1")
            return state if state["current_state"] == "consumed" else None

        state = await wait_for(consumed)
        assert state["terminal_outcome"] == "completed" and state["last_run_id"]
        dup = await s.send_external_event("build.finished", {"n": 3, "status": "green"}, idempotency_key="ev-1")
        assert dup["outcome_type"] == "deduplicated" and dup["existing_id"] == accepted["input_id"]
        generation = (await c.get_config())["generation"]
        await c.patch_config({"limits": {"inbox_capacity": 1}}, expected_generation=generation)
        async with s.stream("busy", provider_params=SLOW) as events:
            try:
                async for event in events:
                    if isinstance(event, TextDelta):
                        break
                assert (await s.send_external_event("e", {"k": 1}))["outcome_type"] == "accepted"
                full = await raises("-32002", s.send_external_event("e", {"k": 2}))
                assert "inbox" in full.message
                await s.interrupt()
                async for _ in events:
                    pass
            except MeerkatError as exc:
                assert str(exc.code) == "-32005", exc.code


async def l9_discovery():
    """Realms, runtime host info, health and capabilities parse as the SDK expects."""
    async with proxied("l9") as c:
        realms = await c.list_realms()
        assert realms and all(set(r) >= {"realm_id", "backend_count", "auth_profile_count", "binding_count"}
                              for r in realms)
        current = [r for r in realms if r.get("current")][0]
        one = await c.get_realm(current["realm_id"])
        assert one["realm_id"] == current["realm_id"] and one["bindings"] == {}
        await raises("-32602", c.get_realm("no-such-realm"))
        info = await c.get_runtime_host_info()
        assert info["process_name"] == "rkat-rpc" and info["health"]["status"] == "ok"
        features = (await c.get_runtime_host_capabilities())["features"]
        assert features["event_replay"] and features["session_streams"] and not features["mobs"]
        assert (await c.get_runtime_host_health())["status"] == "ok"
        assert c.has_capability("sessions") and c.has_capability("streaming")


async def l10_archived_history():
    """After archive, history stays readable; read, list and turn leave the session out."""
    async with client() as c:
        s = await c.create_session("keep me")
        await s.archive()
        page = await s.history()
        assert [m.role for m in page.messages] == ["user", "block_assistant"]
        await raises("-32001", c.read_session(s.id))
        await raises("-32001", s.turn("x"))
        assert (await c.list_events_since({"scope": scope(s.id)}))["events"]


SCENARIOS = [l1_subscription_sees_every_delta, l2_subscription_follows_another_process,
             l3_event_log_cursors_survive_restart, l4_stale_cursor, l5_stop_run, l6_stop_run_across_processes,
             l7_inject_and_instructions, l8_external_events, l9_discovery, l10_archived_history]


if __name__ == "__main__":
    run_scenarios(SCENARIOS)
