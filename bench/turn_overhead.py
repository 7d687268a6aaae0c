"""Host overhead per turn: sequential ``start_turn`` calls on one session.

The mock provider answers ``"ok"`` with no delay, so what is timed is the host:
mailbox hop, actor dispatch, settings, the turn loop, the event bus, and (for
sqlite) ``begin_run`` + ``commit_run``, each queued to the supervisor's
``StoreIO`` (``actors/storeio.py``), whose worker task runs it in a worker thread.

Baselines measured in the same run, interleaved round by round with the host
measurements so machine noise hits all of them alike:

* ``bare loop``: ``meerkat.agent.run_loop`` driving the same mock provider with a
  no-op emit, no actors and no store; its history grows exactly as the
  session's does, so the mock's own per-turn work (it walks every transcript
  row to count words for usage, so a turn's cost grows with the transcript) is
  the same on both sides.
* ``bare sqlite commit``: one ``BEGIN IMMEDIATE; INSERT; COMMIT`` on a WAL /
  synchronous=NORMAL database, via ``trio.to_thread.run_sync``. A sqlite turn
  makes two such writes (begin_run, commit_run), so ``bare loop + 2 x commit``
  is the floor for a sqlite turn.
* ``bare sqlite commit via StoreIO``: the same write through a ``StoreIO`` of
  the host's own (``actors/storeio.py``). A sequential caller gains nothing from
  its batching and pays the hand-over to a worker task; the difference to the
  ``to_thread`` commit sizes that, per store call.

Targets: p50 <= 2 ms and p99 <= 10 ms per turn (sqlite backend).

    .venv/bin/python bench/turn_overhead.py [--turns N] [--rounds R] [--wal-autocheckpoint PAGES]
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
from actors.storeio import StoreIO
from meerkat.agent import RunSettings, RunState, builtin_tools, run_loop
from meerkat.ids import new_uuid7
from meerkat.providers import build_provider
from meerkat.transcript import UserMessage, now_rfc3339
from meerkat.usage import Usage

PARAMS = {"reply": "ok"}
TARGET_P50_MS = 2.0
TARGET_P99_MS = 10.0


class BareLoop:
    """run_loop + mock provider, no actors, no bus, no store."""

    def __init__(self) -> None:
        self.tools = builtin_tools()
        self.provider = build_provider("mock", {"token_delay_ms": 0.0, "first_token_latency_ms": 0.0})
        self.settings = RunSettings(model="mock", provider="mock", provider_params=dict(PARAMS))
        self.history: list = []
        self.usage = Usage()
        self.session_id = new_uuid7()

    async def turn(self, prompt: str) -> None:
        run_id = new_uuid7()
        user = UserMessage(content=prompt, created_at=now_rfc3339(), run_id=run_id)
        state = RunState(session_id=self.session_id, run_id=run_id, history=[*self.history, user],
                         new_rows=[], usage=self.usage)
        await run_loop(state, self.settings, self.provider, self.tools, _noop)
        self.history = self.history + [user, *state.new_rows]
        self.usage = state.usage


def _noop(_event: object) -> None:
    pass


class BareSqlite:
    """One tiny write transaction per call, in a worker thread, like the store's writes."""

    def __init__(self, path: Path) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB NOT NULL)")
        self.limiter = trio.CapacityLimiter(8)

    def _commit(self) -> None:
        self.conn.execute("BEGIN IMMEDIATE")
        self.conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (new_uuid7(), b"x" * 200))
        self.conn.execute("COMMIT")

    async def commit(self) -> None:
        await trio.to_thread.run_sync(self._commit, limiter=self.limiter)

    async def commit_via(self, io: StoreIO) -> None:
        await io.call(self._commit)


async def main(turns: int, rounds: int, warmup: int, wal_autocheckpoint: int | None) -> None:
    header("turn_overhead: host overhead per turn (mock 'ok', no delay)")
    with tempfile.TemporaryDirectory(prefix="rkat-bench-") as tmp:
        root = Path(tmp)
        options = HostOptions(idle_timeout=3600.0)
        async with contextlib.AsyncExitStack() as stack:
            sq = await stack.enter_async_context(
                open_service("bench-sqlite", state_root=root, backend="sqlite", options=options))
            mem = await stack.enter_async_context(
                open_service("bench-memory", state_root=root, backend="memory", options=options))
            if wal_autocheckpoint is not None:  # experiment: reaches into the store's connection
                sq.supervisor.store._conn.execute(f"PRAGMA wal_autocheckpoint = {wal_autocheckpoint}")
                print(f"experiment: PRAGMA wal_autocheckpoint = {wal_autocheckpoint} on the host's sqlite store")
            sq_sid = (await sq.create_session(provider="mock", provider_params=PARAMS,
                                              run_immediately=False)).session_id
            mem_sid = (await mem.create_session(provider="mock", provider_params=PARAMS,
                                                run_immediately=False)).session_id
            bare = BareLoop()
            db = BareSqlite(root / "bare.sqlite3")
            io = StoreIO()  # the host's store-call queue, on its own, for the bare commit
            io_nursery = await stack.enter_async_context(trio.open_nursery())
            await io_nursery.start(io.run)

            async def host_turn(service, sid, i: int) -> None:
                await service.start_turn(sid, f"turn {i}")

            cases = {
                "bare loop (run_loop + mock, no-op emit)": lambda i: bare.turn(f"turn {i}"),
                "bare sqlite commit via to_thread": lambda i: db.commit(),
                "host turn, memory backend": lambda i: host_turn(mem, mem_sid, i),
                "host turn, sqlite backend": lambda i: host_turn(sq, sq_sid, i),
                "bare sqlite commit via StoreIO": lambda i: db.commit_via(io),
            }
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for name, fn in cases.items():  # warm up: imports, caches, the sessions' first turns
                for i in range(warmup):
                    await fn(i)
            for r in range(rounds):  # interleave so noise hits every case alike
                for name, fn in cases.items():
                    out = samples[name]
                    for i in range(turns):
                        t0 = now()
                        await fn(i)
                        out.append(now() - t0)

            # The turn cost grows with the transcript (the mock walks every row to count
            # words; the host copies the history list): show it round by round.
            print(f"{rounds} rounds x {turns} turns per case after {warmup} warm-up turns; "
                  f"transcript at the end: {len(bare.history)} rows")
            stats = {name: summary_ms(s) for name, s in samples.items()}
            for name, s in stats.items():
                print(fmt_summary(name, s))
            print("p50 per round (ms); the transcript grows by 2 rows per turn:")
            short = ["bare loop", "bare commit", "memory", "sqlite", "via StoreIO", "mem-loop", "sqlite-floor"]
            print("  round  rows_at_end " + " ".join(f"{c:>12}" for c in short))
            names = list(cases)
            for r in range(rounds):
                p = [summary_ms(samples[n][r * turns:(r + 1) * turns])["p50"] for n in names]
                rows = 2 * (warmup + (r + 1) * turns)
                cols = p + [p[2] - p[0], p[3] - (p[0] + 2 * p[1])]
                print(f"  {r:>5}  {rows:>11} " + " ".join(f"{c:12.3f}" for c in cols))
            slow = sum(1 for t in samples["host turn, sqlite backend"] if t > 0.003)
            print(f"sqlite turns slower than 3 ms: {slow} of {len(samples['host turn, sqlite backend'])} "
                  f"(these are the WAL auto-checkpoints, see bench/README.md)")

            loop = stats["bare loop (run_loop + mock, no-op emit)"]
            commit = stats["bare sqlite commit via to_thread"]
            via_io = stats["bare sqlite commit via StoreIO"]
            memory = stats["host turn, memory backend"]
            sqlite_ = stats["host turn, sqlite backend"]
            floor_p50 = loop["p50"] + 2 * commit["p50"]
            print()
            print(f"floor for a sqlite turn (bare loop + 2 x bare commit), p50: {floor_p50:.3f} ms")
            print(f"ratio host/bare loop, memory backend, p50: {memory['p50'] / loop['p50']:.1f}x "
                  f"(host overhead {memory['p50'] - loop['p50']:.3f} ms)")
            print(f"ratio host/floor,     sqlite backend, p50: {sqlite_['p50'] / floor_p50:.1f}x "
                  f"(host overhead above floor {sqlite_['p50'] - floor_p50:.3f} ms)")
            print(f"of which StoreIO's hand-over (commit via StoreIO - via to_thread), p50: "
                  f"{via_io['p50'] - commit['p50']:+.3f} ms per store call, 2 calls per turn")
            print()
            print(f"TARGET p50 <= {TARGET_P50_MS} ms (sqlite): {sqlite_['p50']:.3f} ms  "
                  f"{verdict(sqlite_['p50'] <= TARGET_P50_MS)}")
            print(f"TARGET p99 <= {TARGET_P99_MS} ms (sqlite): {sqlite_['p99']:.3f} ms  "
                  f"{verdict(sqlite_['p99'] <= TARGET_P99_MS)}")
            print(f"(memory backend for comparison: p50 {memory['p50']:.3f} ms, p99 {memory['p99']:.3f} ms)")
            io_nursery.cancel_scope.cancel()
        db.conn.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=100, help="turns per case per round (default 100)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds (default 5)")
    parser.add_argument("--warmup", type=int, default=30, help="warm-up turns per case (default 30)")
    parser.add_argument("--wal-autocheckpoint", type=int, default=None, metavar="PAGES",
                        help="experiment: set the host store's PRAGMA wal_autocheckpoint (sqlite default 1000; "
                             "0 turns checkpoints off) to show where the p99 comes from")
    args = parser.parse_args()
    trio.run(main, args.turns, args.rounds, args.warmup, args.wal_autocheckpoint)
