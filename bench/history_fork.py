"""Forking a long session costs about what reading it costs (issue 16).

A 5,000-row session (prompts, tool calls, tool results, answers; the same mix as
``long_sessions.py``) is seeded into a realm; then, interleaved round by round in
the same process:

* ``read``: the whole transcript through ``SessionService.read_history`` (what a
  client reading the session pays: the rows decoded from the store);
* ``fork``: ``SessionService.fork_session`` of the whole session (a new session
  with all 5,000 rows, checked and written in one store transaction);
* ``fork@half``: a fork keeping 2,500 rows;
* ``rewrite`` / ``restore``: replacing one row as a new revision (the old
  revision's 5,000 rows kept), and restoring the original.

Also the longest time a 1 ms ticker task could not run during the forks (the
event loop is shared by every session of the process).

Target: fork <= 2x read, sqlite (the default backend). jsonl is shown too.

    .venv/bin/python bench/history_fork.py [--rows 5000] [--rounds 7] [--backends sqlite,jsonl]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import header, now, verdict  # noqa: E402
from long_sessions import Ticker, seed, seeded_rows  # noqa: E402

from actors import open_service  # noqa: E402

TARGET_RATIO = 2.0


async def read_all(service, sid: str) -> int:
    rows = 0
    while True:
        page = await service.read_history(sid, offset=rows, limit=1000)
        rows += len(page.messages)
        if not page.has_more:
            return rows


async def measure(backend: str, rows: int, rounds: int) -> list[str]:
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as root:
        async with open_service("bench-fork", state_root=root, backend=backend) as service:
            sid = await seed(service, "mock", seeded_rows(rows))
            total = await read_all(service, sid)
            times: dict[str, list[float]] = {"read": [], "fork": [], "fork@half": [], "rewrite": [], "restore": []}
            ticker = Ticker()
            async with trio.open_nursery() as nursery:
                nursery.start_soon(ticker.run)
                worst_stall = 0.0
                for _ in range(rounds):
                    start = now()
                    await read_all(service, sid)
                    times["read"].append(now() - start)
                    forks = []

                    async def fork_all() -> None:
                        forks.append(await service.fork_session(sid))

                    elapsed, _, cpu = await ticker.measure(fork_all)
                    times["fork"].append(elapsed)
                    worst_stall = max(worst_stall, cpu)
                    assert forks[0].message_count == total
                    start = now()
                    await service.fork_session(sid, message_index=total // 2)
                    times["fork@half"].append(now() - start)
                    start = now()
                    done = await service.rewrite_transcript(
                        sid, selection={"type": "message_range", "start": 1, "end": 2},
                        replacement=[{"role": "user", "content": "edited"}], reason={"kind": "bench"})
                    times["rewrite"].append(now() - start)
                    start = now()
                    await service.restore_transcript_revision(sid, done.commit.parent_revision,
                                                              reason={"kind": "bench"})
                    times["restore"].append(now() - start)
                nursery.cancel_scope.cancel()
            med = {name: statistics.median(samples) * 1000 for name, samples in times.items()}
            lines.append(f"{backend}: {total} rows, median of {rounds}: " + ", ".join(
                f"{name} {ms:.1f} ms" for name, ms in med.items()))
            lines.append(f"{backend}: longest event-loop CPU block during a fork: {worst_stall * 1000:.1f} ms")
            ratio = med["fork"] / med["read"]
            if backend == "sqlite":
                lines.append(f"TARGET {backend} fork of {total} rows <= {TARGET_RATIO}x reading them: {ratio:.2f}x  "
                             f"{verdict(ratio <= TARGET_RATIO)}")
            else:
                lines.append(f"RATIO {backend} fork of {total} rows / reading them: {ratio:.2f}x")
    return lines


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--backends", default="sqlite,jsonl")
    args = parser.parse_args()
    header(f"history_fork: fork / rewrite / restore of a {args.rows}-row session vs reading it")
    for backend in args.backends.split(","):
        for line in await measure(backend, args.rows, args.rounds):
            print(line, flush=True)


if __name__ == "__main__":
    trio.run(main)
