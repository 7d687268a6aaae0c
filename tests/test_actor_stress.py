"""Many callers at once on a few sessions: nothing sticks busy, nothing committed goes missing."""

from __future__ import annotations

import random

import pytest
import trio

from meerkat.errors import RequestCancelled, SessionBusy
from meerkat.transcript import BlockAssistantMessage, UserMessage

from helpers import running_service


@pytest.mark.parametrize("backend", ["memory", "sqlite", "jsonl"])
async def test_random_concurrent_turns_interrupts_and_reads(tmp_path, backend):
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

        with trio.fail_after(60):
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
        assert outcomes["completed"] > 10 and outcomes["busy"] > 0 and outcomes["cancelled"] > 0, outcomes
