"""The ``postgres`` session store against ``sqlite``, store calls only (no actors), in the same run.

A store turn is what a host's turn costs its store: ``begin_run`` then
``commit_run`` with 2 transcript rows and ``--events`` logged events (default
25: a short streamed answer). Each is timed from the calling thread, as the
actors' store worker threads call them.

* sequential: one session, turns one after the other, interleaved round by
  round across the backends so machine noise hits all of them alike;
* concurrent: ``--threads`` threads (default 4), each turning its own session,
  through one store (its pool holds one connection per thread) and, for
  postgres, through two stores (two pools: two hosts on one realm): turns/s.

Backends: ``sqlite`` (WAL, ``synchronous=NORMAL``: a commit is not fsynced),
``postgres`` with ``synchronous_commit=off`` (the same promise: a server crash
may lose the last commits, never corrupts) and with ``synchronous_commit=on``
(PostgreSQL's default: every commit waits for its WAL flush). The server is a
throw-away one started here (``meerkat/testing/postgres.py``) with ``fsync=on``
and ``full_page_writes=on``, as in production. Baseline: a bare round trip
(``SELECT 1``) on a psycopg connection, the floor of any postgres call.

    .venv/bin/python bench/postgres_store.py [--turns N] [--rounds R] [--events N] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import threading
from pathlib import Path
from typing import Callable

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import fmt_summary, header, now, summary_ms

import psycopg

from meerkat.events import TextDelta, make_envelope
from meerkat.store import RunCommit, RunRecord, SessionRecord, SessionStore
from meerkat.store.postgres import PostgresStore
from meerkat.store.sqlite import SqliteStore
from meerkat.testing.postgres import running_postgres
from meerkat.transcript import BlockAssistantMessage, UserMessage, now_rfc3339, text_block
from meerkat.usage import Usage

DURABLE = {"fsync": "on", "full_page_writes": "on", "synchronous_commit": "on"}


class Turner:
    """Runs store turns on one session, numbering runs and events as a host does."""

    def __init__(self, store: SessionStore, session_id: str, events: int) -> None:
        self.store, self.session_id, self.events = store, session_id, events
        self.turns, self.seq = 0, 0
        ts = 1_000
        store.create_session(SessionRecord(session_id=session_id, created_at_ms=ts, updated_at_ms=ts,
                                           model="m", provider="mock"), [])

    def turn(self) -> None:
        self.turns += 1
        run_id = f"{self.session_id}-r{self.turns}"
        self.store.begin_run(RunRecord(run_id=run_id, session_id=self.session_id, status="running",
                                       started_at_ms=self.turns, owner="bench:1", prompt="q", seq_start=self.seq))
        first = self.seq + 1
        self.seq += self.events
        created = now_rfc3339()
        rows = [UserMessage(content="question " * 20, created_at=created, run_id=run_id),
                BlockAssistantMessage(blocks=[text_block("answer " * 40)], stop_reason="end_turn",
                                      created_at=created, run_id=run_id)]
        self.store.commit_run(RunCommit(
            run_id=run_id, session_id=self.session_id, status="completed", messages=rows,
            usage=Usage(input_tokens=10, output_tokens=20), last_assistant_text="answer", last_seq=self.seq,
            finished_at_ms=self.turns, model="m", provider="mock",
            events=[make_envelope(self.session_id, seq, TextDelta(delta="word ")) for seq in range(first, self.seq + 1)]))


def concurrent(stores: list[SessionStore], name: str, threads: int, turns: int, events: int) -> float:
    """Turns/s of ``threads`` threads, each on its own session, spread over ``stores``."""
    turners = [Turner(stores[i % len(stores)], f"{name}-c{i}", events) for i in range(threads)]
    barrier = threading.Barrier(threads + 1)

    def work(t: Turner) -> None:
        barrier.wait()
        for _ in range(turns):
            t.turn()

    workers = [threading.Thread(target=work, args=(t,)) for t in turners]
    for w in workers:
        w.start()
    barrier.wait()
    started = now()
    for w in workers:
        w.join()
    return threads * turns / (now() - started)


def timed(call: Callable[[], None]) -> float:
    t0 = now()
    call()
    return now() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=100, help="turns per round (sequential part)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--events", type=int, default=25, help="events logged per turn")
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    header("postgres store vs sqlite store")
    with running_postgres(settings=DURABLE) as server, tempfile.TemporaryDirectory() as tmp:
        print(f"# {server.version}")
        url = server.create_database("bench")
        fast_url = url + "?options=-c%20synchronous_commit%3Doff"
        stores: dict[str, SessionStore] = {
            "sqlite (WAL, NORMAL)": SqliteStore(Path(tmp) / "bench.sqlite3"),
            "postgres, synchronous_commit=off": PostgresStore(fast_url, realm_id="seq-off", pool_size=args.threads),
            "postgres, synchronous_commit=on": PostgresStore(url, realm_id="seq-on", pool_size=args.threads),
        }
        try:
            turners = {name: Turner(store, f"seq{i}", args.events) for i, (name, store) in enumerate(stores.items())}
            samples: dict[str, list[float]] = {name: [] for name in [*stores, "bare round trip (SELECT 1)"]}
            with psycopg.connect(url, autocommit=True) as bare:
                for _ in range(args.rounds):
                    for name, turner in turners.items():
                        samples[name] += [timed(turner.turn) for _ in range(args.turns)]
                    samples["bare round trip (SELECT 1)"] += [timed(lambda: bare.execute("SELECT 1").fetchone())
                                                              for _ in range(args.turns)]
            print(f"-- sequential store turns (begin_run + commit_run, 2 rows, {args.events} events) --")
            summaries = {name: summary_ms(s) for name, s in samples.items()}
            for name, s in summaries.items():
                print(fmt_summary(name, s))
            base = summaries["sqlite (WAL, NORMAL)"]["p50"]
            for name in list(stores)[1:]:
                print(f"RATIO {name} / sqlite turn p50: {summaries[name]['p50'] / base:.2f}x")

            print(f"-- concurrent store turns: {args.threads} threads, one session each, {args.turns} turns --")
            rates = {"sqlite (WAL, NORMAL)": concurrent([stores["sqlite (WAL, NORMAL)"]], "sq", args.threads,
                                                        args.turns, args.events)}
            for name in list(stores)[1:]:
                rates[f"{name}, 1 host"] = concurrent([stores[name]], name[-3:] + "1", args.threads, args.turns,
                                                      args.events)
            second = PostgresStore(fast_url, realm_id="seq-off", pool_size=args.threads)
            try:
                rates["postgres, synchronous_commit=off, 2 hosts"] = concurrent(
                    [stores["postgres, synchronous_commit=off"], second], "two", args.threads, args.turns,
                    args.events)
            finally:
                second.close()
            for name, rate in rates.items():
                print(f"{name:<46} {rate:8.0f} turns/s")
            print(f"RATIO postgres (synchronous_commit=off, 1 host) / sqlite concurrent turns/s: "
                  f"{rates['postgres, synchronous_commit=off, 1 host'] / rates['sqlite (WAL, NORMAL)']:.2f}x")
        finally:
            for store in stores.values():
                store.close()


if __name__ == "__main__":
    main()
