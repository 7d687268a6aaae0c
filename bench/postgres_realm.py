"""Two hosts on one PostgreSQL realm: what crossing hosts through the database costs, against a sqlite realm.

Both "hosts" run in this process (one trio loop, one clock), each a service with
its own ``RKAT_HOST_ID`` (and, on postgres, its own state root), so neither can
use the other's pid; the
postgres realm lives on a real server the script starts (``meerkat.testing.postgres``,
``fsync`` on, as a deployment would). The baseline is the same pair of hosts on a
sqlite realm, where the live link runs over loopback TCP.

* **live-event lag**: B subscribes to a session, A runs a turn (100 words, 5 ms a
  word); each event's arrival at B minus its arrival on A's own turn stream.
* **cross-host interrupt**: A runs a long turn; once its first delta arrived, B
  interrupts it; the time until B's ``interrupt`` returns (the run committed as
  interrupted). Baseline: A interrupting its own turn.
* **turn overhead**: sequential short mock turns on one host, postgres vs sqlite.

    .venv/bin/python bench/postgres_realm.py [--rounds 10] [--turns 200]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import fmt_summary, header, now, summary_ms

import trio

from actors import SessionService, open_service
from meerkat.events import TERMINAL_EVENT_TYPES
from meerkat.testing.postgres import running_postgres

REALM = "bench-hosts"
WATCHED = {"reply_words": 100, "token_delay_ms": 5}
SLOW = {"reply_words": 3000, "token_delay_ms": 20}
#: As a deployment would run the server (the test cluster turns these off).
DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


@asynccontextmanager
async def host(root: Path, backend: str, url: str | None, host_id: str) -> AsyncIterator[SessionService]:
    os.environ["RKAT_HOST_ID"] = host_id  # read when the realm's supervisor starts
    # A sqlite realm is its files: both hosts share them. A postgres host needs only its own cache.
    state_root = root / host_id if backend == "postgres" else root
    async with open_service(REALM, state_root=state_root, backend=backend, database_url=url) as service:
        if backend == "postgres":
            await service.supervisor.coordinator.listening.wait()
        yield service


async def live_lag(a: SessionService, b: SessionService, rounds: int) -> list[float]:
    session_id = (await a.create_session("warm up", provider_params={"reply_words": 2})).session_id
    lags: list[float] = []
    for _ in range(rounds):
        on_b = await b.subscribe(session_id)
        arrived_b: dict[int, float] = {}
        arrived_a: dict[int, float] = {}

        async def follow() -> None:
            async for envelope in on_b:
                arrived_b[envelope.seq] = now()
                if envelope.type in TERMINAL_EVENT_TYPES:
                    return

        with trio.fail_after(60):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(follow)
                await trio.sleep(0.05)
                stream = await a.start_turn_streaming(session_id, "watched", provider_params=WATCHED)
                async for envelope in stream:
                    arrived_a[envelope.seq] = now()
        on_b.close()
        lags += [arrived_b[seq] - at for seq, at in arrived_a.items() if seq in arrived_b]
    return lags


async def interrupt_latency(a: SessionService, asker: SessionService, rounds: int) -> list[float]:
    session_id = (await a.create_session("warm up", provider_params={"reply_words": 2})).session_id
    times: list[float] = []
    for _ in range(rounds):
        stream = await a.start_turn_streaming(session_id, "long", provider_params=SLOW)
        async for envelope in stream:
            if envelope.type == "text_delta":
                break
        started = now()
        with trio.fail_after(60):
            result = await asker.interrupt(session_id)
        times.append(now() - started)
        assert result.interrupted, result
        async for _ in stream:
            pass
    return times


async def turns_per_second(service: SessionService, turns: int) -> float:
    session_id = (await service.create_session("warm up", provider_params={"reply_words": 5})).session_id
    for _ in range(10):
        await service.start_turn(session_id, "warm", provider_params={"reply_words": 5})
    started = now()
    for _ in range(turns):
        await service.start_turn(session_id, "again", provider_params={"reply_words": 5})
    return turns / (now() - started)


async def measure(backend: str, url: str | None, rounds: int, turns: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix=f"bench-{backend}-") as tmp:
        root = Path(tmp)
        async with AsyncExitStack() as stack:
            a = await stack.enter_async_context(host(root, backend, url, f"{backend}-a"))
            b = await stack.enter_async_context(host(root, backend, url, f"{backend}-b"))
            return {
                "lag": summary_ms(await live_lag(a, b, rounds)),
                "interrupt_elsewhere": summary_ms(await interrupt_latency(a, b, rounds)),
                "interrupt_local": summary_ms(await interrupt_latency(a, a, rounds)),
                "turns_per_s": await turns_per_second(a, turns),
            }


async def main(rounds: int, turns: int) -> None:
    with running_postgres(settings=DURABLE) as server:
        url = server.create_database("bench_hosts")
        pg = await measure("postgres", url, rounds, turns)
    sq = await measure("sqlite", None, rounds, turns)
    header("two hosts on one realm: postgres (database) vs sqlite (loopback link)")
    for label, key in (("live-event lag B vs A", "lag"), ("interrupt from the other host", "interrupt_elsewhere"),
                       ("interrupt by the owner itself", "interrupt_local")):
        print(fmt_summary(f"postgres {label}", pg[key]))  # type: ignore[arg-type]
        print(fmt_summary(f"sqlite   {label}", sq[key]))  # type: ignore[arg-type]
    pg_lag, sq_lag = pg["lag"], sq["lag"]
    pg_int, sq_int = pg["interrupt_elsewhere"], sq["interrupt_elsewhere"]
    print(f"RATIO live-event lag p50 postgres/sqlite: {pg_lag['p50'] / sq_lag['p50']:.2f}"  # type: ignore[index]
          f"  p99: {pg_lag['p99'] / sq_lag['p99']:.2f}")  # type: ignore[index]
    print(f"RATIO cross-host interrupt p50 postgres/sqlite: {pg_int['p50'] / sq_int['p50']:.2f}")  # type: ignore[index]
    print(f"turns/s on one host: postgres {pg['turns_per_s']:.0f}, sqlite {sq['turns_per_s']:.0f}, "
          f"RATIO {pg['turns_per_s'] / sq['turns_per_s']:.2f}")  # type: ignore[operator]


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--turns", type=int, default=200)
    options = parser.parse_args()
    trio.run(main, options.rounds, options.turns)
