"""The durable event log: what it costs a turn, and how fast ``list_since`` reads it back.

Part 1, turn overhead with the log on vs off, in the same run: two sqlite
services; on one the store's event-log write is switched off (its
``_log_events`` replaced by a no-op, so the commit writes rows and the record
only, as before the log). Both run the same turns, interleaved round by round.
Each turn is ``run_started``, ``turn_started``, N text deltas, ``text_complete``,
``turn_completed``, ``run_completed``: ``--words`` sets N (default 20, a short
answer; 200 is a long one).

Part 2, ``list_since`` of 10,000 events: one session whose log holds 10,000
events (100 runs of 100 events, committed through the store), read back from
cursor 0 with ``SessionService.list_events`` page by page (1,000 a page, the
most one call gives), per backend. Baseline in the same run: the bare SQL
read of the same 10,000 rows (``SELECT body ... ORDER BY seq``) with no decoding.

    .venv/bin/python bench/event_log.py [--turns N] [--rounds R] [--words N]
"""

from __future__ import annotations

import argparse
import contextlib
import sqlite3
import tempfile
from pathlib import Path

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import fmt_summary, header, now, summary_ms, verdict

import trio

from actors import HostOptions, open_service
from meerkat.events import TextDelta, make_envelope
from meerkat.store import RunCommit, RunRecord
from meerkat.transcript import BlockAssistantMessage, UserMessage, now_rfc3339, text_block
from meerkat.usage import Usage

TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0
EVENTS = 10_000
PER_RUN = 100


async def part1(root: Path, turns: int, rounds: int, words: int) -> None:
    print(f"-- part 1: host turn, sqlite, a {words}-word answer ({words + 5} events a turn) --")
    options = HostOptions(idle_timeout=3600.0)
    params = {"reply_words": words}
    async with contextlib.AsyncExitStack() as stack:
        on = await stack.enter_async_context(open_service("log-on", state_root=root, backend="sqlite",
                                                          options=options))
        off = await stack.enter_async_context(open_service("log-off", state_root=root, backend="sqlite",
                                                           options=options))
        off.supervisor.store._log_events = lambda conn, record, commit: None  # the store as before the log
        sids = {}
        for name, service in (("log on", on), ("log off", off)):
            sids[name] = (service, (await service.create_session(provider="mock", provider_params=params,
                                                                 run_immediately=False)).session_id)
        samples: dict[str, list[float]] = {name: [] for name in sids}
        for service, sid in sids.values():
            for i in range(20):
                await service.start_turn(sid, f"warm {i}")
        for _ in range(rounds):
            for name, (service, sid) in sids.items():
                for i in range(turns):
                    t0 = now()
                    await service.start_turn(sid, f"turn {i}")
                    samples[name].append(now() - t0)
        stats = {name: summary_ms(s) for name, s in samples.items()}
        for name, s in stats.items():
            print(fmt_summary(f"host turn, sqlite, {name}", s))
        latest = await on.latest_event_seq(sids["log on"][1])
        print(f"the 'log on' session logged {latest:,} events; retention (10,000) pruned the oldest during the run")
        ratio = stats["log on"]["p50"] / stats["log off"]["p50"]
        print(f"RATIO log on / log off, p50: {ratio:.2f}x (+{stats['log on']['p50'] - stats['log off']['p50']:.3f} ms)")
        print(f"RATIO log on / log off, p99: {stats['log on']['p99'] / stats['log off']['p99']:.2f}x")
        print(f"TARGET p50 <= {TARGET_P50_MS} ms (sqlite, log on): {stats['log on']['p50']:.3f} ms  "
              f"{verdict(stats['log on']['p50'] <= TARGET_P50_MS)}")
        print(f"TARGET p99 <= {TARGET_P99_MS} ms (sqlite, log on): {stats['log on']['p99']:.3f} ms  "
              f"{verdict(stats['log on']['p99'] <= TARGET_P99_MS)}")


def _fill(store, session_id: str) -> None:
    """10,000 events in 100 committed runs of 100 (what 100 turns of ~95-word answers log)."""
    seq = 0
    for n in range(EVENTS // PER_RUN):
        run_id = f"run-{n}"
        store.begin_run(RunRecord(run_id=run_id, session_id=session_id, status="running", started_at_ms=n,
                                  owner="bench:1", prompt="q", seq_start=seq))
        events = [make_envelope(session_id, seq + i + 1, TextDelta(delta=f"word{i} ")) for i in range(PER_RUN)]
        seq += PER_RUN
        store.commit_run(RunCommit(
            run_id=run_id, session_id=session_id, status="completed",
            messages=[UserMessage(content="q", created_at=now_rfc3339(), run_id=run_id),
                      BlockAssistantMessage(blocks=[text_block("a")], stop_reason="end_turn",
                                            created_at=now_rfc3339(), run_id=run_id)],
            usage=Usage(), last_assistant_text="a", last_seq=seq, finished_at_ms=n, model="mock", provider="mock",
            events=events, event_retention=EVENTS * 2))


async def part2(root: Path, repeats: int) -> None:
    print(f"-- part 2: list_since of {EVENTS:,} events (pages of 1,000 from cursor 0), {repeats} reads each --")
    results: dict[str, dict[str, float]] = {}
    for backend in ("sqlite", "jsonl", "memory"):
        async with open_service(f"list-{backend}", state_root=root, backend=backend,
                                options=HostOptions(idle_timeout=3600.0)) as service:
            sid = (await service.create_session(provider="mock", run_immediately=False)).session_id
            await trio.to_thread.run_sync(_fill, service.supervisor.store, sid)
            times = []
            for _ in range(repeats):
                t0 = now()
                got, after = 0, 0
                while True:
                    page = await service.list_events(sid, after_seq=after)
                    got += len(page.events)
                    if not page.has_more:
                        break
                    after = page.events[-1].seq
                times.append(now() - t0)
                assert got == EVENTS, got
            results[backend] = summary_ms(times)
            print(fmt_summary(f"list_since {EVENTS:,}, {backend}", results[backend]))
            if backend == "sqlite":
                path = service.realm.paths.sessions_sqlite_path
                bare = []
                for _ in range(repeats):
                    t0 = now()
                    conn = sqlite3.connect(path)
                    rows = conn.execute("SELECT body FROM events WHERE session_id = ? ORDER BY seq", (sid,)).fetchall()
                    conn.close()
                    bare.append(now() - t0)
                    assert len(rows) == EVENTS
                results["bare"] = summary_ms(bare)
                print(fmt_summary(f"bare SELECT of the {EVENTS:,} rows (no decode)", results["bare"]))
    for backend in ("sqlite", "jsonl", "memory"):
        per_event_us = results[backend]["p50"] * 1000 / EVENTS
        print(f"RATIO list_since {backend} / bare SELECT, p50: {results[backend]['p50'] / results['bare']['p50']:.1f}x "
              f"({per_event_us:.2f} us per event)")


async def main(turns: int, rounds: int, words: int, repeats: int) -> None:
    header("event_log: the durable event log's write cost per turn, and list_since of 10,000 events")
    with tempfile.TemporaryDirectory(prefix="rkat-bench-") as tmp:
        await part1(Path(tmp), turns, rounds, words)
        await part2(Path(tmp), repeats)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--words", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    trio.run(main, args.turns, args.rounds, args.words, args.repeats)
