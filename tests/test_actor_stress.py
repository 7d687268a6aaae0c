"""Many callers at once on a few sessions: nothing sticks busy, nothing committed goes missing."""

from __future__ import annotations

import random

import pytest
import trio

from meerkat.errors import RequestCancelled, SessionBusy
from meerkat.transcript import BlockAssistantMessage, UserMessage

from helpers import running_service


async def test_random_concurrent_turns_interrupts_and_reads(tmp_path, backend):  # every backend (conftest)
    rng = random.Random(1234)
    outcomes = {"completed": 0, "cancelled": 0, "busy": 0}
    async with running_service(tmp_path, backend, idle_timeout=0.05) as service:
        ids = [(await service.create_session("seed")).session_id for _ in range(4)]

        async def caller(n: int) -> None:
            for _ in range(12):
                sid = rng.choice(ids)
                action = rng.random()
                if action < 0.55:
                    try:
                        await service.start_turn(sid, f"caller {n}", provider_params={
                            "reply_words": rng.randint(1, 20), "token_delay_ms": rng.choice([0, 1, 3])})
                        outcomes["completed"] += 1
                    except SessionBusy:
                        outcomes["busy"] += 1
                    except RequestCancelled:
                        outcomes["cancelled"] += 1
                elif action < 0.75:
                    await service.interrupt(sid)
                elif action < 0.9:
                    await service.read_session(sid)
                else:
                    async with await service.subscribe(sid) as sub:
                        with trio.move_on_after(0.01):
                            await sub.receive()
                await trio.sleep(rng.random() * 0.01)

        async def each_outcome_once() -> None:
            """A schedule that yields each outcome whatever the machine's speed: a slow turn,
            a second turn refused while it runs, then the slow turn interrupted, then a quick one."""
            sid = ids[0]
            slow = await service.start_turn_streaming(sid, "slow", provider_params={
                "reply_words": 500, "token_delay_ms": 20})
            with pytest.raises(SessionBusy):
                await service.start_turn(sid, "refused")
            outcomes["busy"] += 1
            await service.interrupt(sid)
            with pytest.raises(RequestCancelled):
                await slow.result()
            await slow.aclose()
            outcomes["cancelled"] += 1
            await service.start_turn(sid, "quick")
            outcomes["completed"] += 1

        with trio.fail_after(60):
            await each_outcome_once()
            async with trio.open_nursery() as nursery:
                for n in range(16):
                    nursery.start_soon(caller, n)

        total_turns = 0
        for sid in ids:
            view = await service.read_session(sid)
            assert view.is_active is False
            history = await service.read_history(sid, limit=1000)
            rows = history.messages
            assert history.message_count == len(rows)
            assert len(rows) % 2 == 0
            for user, answer in zip(rows[::2], rows[1::2]):
                assert isinstance(user, UserMessage) and isinstance(answer, BlockAssistantMessage)
                assert answer.run_id == user.run_id or user.run_id is None
            total_turns += len(rows) // 2
        assert total_turns == len(ids) + outcomes["completed"] + outcomes["cancelled"]
        assert await service.supervisor.store_call(service.supervisor.store.open_runs) == []
        # How the random callers' turns split between outcomes depends on the machine's
        # speed; the schedule above guarantees each outcome at least once.
        assert outcomes["completed"] >= 1 and outcomes["busy"] >= 1 and outcomes["cancelled"] >= 1, outcomes
