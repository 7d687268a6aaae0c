"""Lease renewals racing a turn's own commit are not "lost its lease" warnings (a 1,000-turn
load logged 94 of them, none true); a refused late commit is one warning line, no traceback."""

from __future__ import annotations

import logging

import trio

from helpers import running_service


async def test_renewals_racing_commits_log_no_false_lease_loss(tmp_path, caplog):
    caplog.set_level(logging.WARNING)
    async with running_service(tmp_path, "sqlite", lease_renew_interval=0.001) as service:
        ids = [(await service.create_session("seed")).session_id for _ in range(8)]

        async def turns(sid: str) -> None:
            for n in range(25):
                await service.start_turn(sid, f"turn {n}", provider_params={"reply_words": 3})

        with trio.fail_after(120):
            async with trio.open_nursery() as nursery:
                for sid in ids:
                    nursery.start_soon(turns, sid)
    assert "lost its lease" not in caplog.text, caplog.text[-2000:]
    assert "Traceback" not in caplog.text
