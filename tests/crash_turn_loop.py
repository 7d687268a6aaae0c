"""The turns a host of a crash test runs until it is killed (tests/test_crash_turns.py, tests/test_crash_hosts.py).

Imported by the host processes, which report on stdout, one line per step:
``try KIND TAG`` before a call (the prompt TAG is unique), ``done SESSION RUN TAG
TEXT`` right after the service returned, ``busy TAG`` when another host's run
held the session (a new one too: a host that just listed it may begin a turn on it
between its creation and its creator's first turn), ``lost TAG`` when this host stalled past its lease and
another one closed its run. Any other error ends the host, which the test notices.
"""

from __future__ import annotations

import json
import os
import random
from typing import Any

from meerkat.errors import LeaseLost, SessionBusy


def say(*parts: Any) -> None:
    """One write of one short line: a kill can cut the host before or after it, never inside."""
    os.write(1, (json.dumps(parts) + "\n").encode())


async def turn_loop(service: Any, sessions: list[str], rng: random.Random, prefix: str, labels: dict[str, str]) -> None:
    """New sessions, quick turns and streamed ones (paced, so a kill lands mid-stream), forever."""
    i = 0
    while True:
        i += 1
        tag = f"{prefix}-{i}"
        kind = rng.choices(("create", "quick", "stream"), weights=(2, 5, 3))[0]
        if kind == "create" or not sessions:
            say("try", "create", tag)
            try:
                result = await service.create_session(tag, labels=labels)
            except SessionBusy as busy:
                sessions.append(busy.session_id)
                say("busy", tag)
                continue
            sessions.append(result.session_id)
        else:
            session_id = rng.choice(sessions)
            say("try", kind, tag)
            try:
                if kind == "quick":
                    result = await service.start_turn(session_id, tag)
                else:
                    stream = await service.start_turn_streaming(session_id, tag, provider_params={
                        "reply_words": rng.randint(4, 30), "token_delay_ms": rng.choice((1, 2))})
                    async for _ in stream:
                        pass
                    result = await stream.result()
            except SessionBusy:
                say("busy", tag)
                continue
            except LeaseLost:
                say("lost", tag)
                continue
        say("done", result.session_id, result.run_id, tag, result.text)
