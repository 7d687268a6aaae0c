"""1,000 sessions each running a turn at once against a 50 ms mock latency (sqlite).

Sessions are created first (``run_immediately=False``, untimed), then every
turn is started at the same moment in one nursery, and the wall time until the
last one finishes is measured. That is repeated on fresh sessions (the target
figure is the median of those first turns), and each repetition also times a
second turn on the same sessions. Each turn waits 50 ms for its first token
(``first_token_latency_ms``), answers ``"ok"``, and makes two store calls,
``begin_run`` and ``commit_run`` (a session just created hands its actor an
empty transcript, so a first turn reads nothing back). Store calls are queued to
the supervisor's ``StoreIO`` (``actors/storeio.py``): 2 worker tasks each take
every queued call and run them back to back in one thread hop, each call still
its own transaction. So this measures how well the host overlaps 1,000 turns'
waiting and how fast it gets their store work done.

Baseline in the same run: 1,000 concurrent ``trio.sleep(0.05)`` tasks, the
ideal for the waiting alone; the ratio host / ideal is printed. Also printed:
the store calls and thread hops each round took (``StoreIO.statistics()``); one
turn back to back with no latency (times n, the work that cannot overlap); and
a decomposition: the same concurrent turns on the memory backend (the host
without a store), and what one bare thread hop per store call would cost.

Target: <= 1.5 s wall for 1,000 concurrent turns.

    .venv/bin/python bench/concurrent_turns.py [--sessions N] [--latency-ms MS] [--repeat R]
        [--store-timing] [--store-workers N]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
from pathlib import Path

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now, verdict

import trio

from actors import HostOptions, open_service

TARGET_S = 1.5


async def ideal(n: int, latency: float) -> float:
    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(trio.sleep, latency)
    return now() - t0


def _noop() -> None:
    pass


async def concurrent_round(service, ids: list[str], label: str) -> tuple[float, list[float], int]:
    """Start one turn on every session at once; wall until the last is done."""
    finish: list[float] = []
    failures: list[BaseException] = []

    async def one(sid: str) -> None:
        try:
            await service.start_turn(sid, label)
        except Exception as exc:  # count, don't abort the nursery
            failures.append(exc)
        finish.append(now())

    t0 = now()
    async with trio.open_nursery() as nursery:
        for sid in ids:
            nursery.start_soon(one, sid)
    wall = now() - t0
    if failures:
        print(f"  {len(failures)} failures, first: {failures[0]!r}")
    return wall, sorted(f - t0 for f in finish), len(failures)


def instrument_store(store) -> dict[str, list[float]]:
    """Experiment: wrap the store's methods on this instance to time them inside the
    worker thread (including waiting for the store's lock). Host code is untouched.
    ``read_messages`` shows up only if a turn reloads a transcript."""
    import time as _time

    timings: dict[str, list[float]] = {}
    for name in ("read_messages", "begin_run", "commit_run"):
        fn = getattr(store, name)

        def timed(*args, _fn=fn, _name=name, **kwargs):
            t0 = _time.perf_counter()
            try:
                return _fn(*args, **kwargs)
            finally:
                timings.setdefault(_name, []).append(_time.perf_counter() - t0)

        setattr(store, name, timed)
    return timings


def io_counts(service) -> tuple[int, int]:
    """(store calls, thread hops) the supervisor's StoreIO has made so far."""
    stats = service.supervisor.io.statistics()
    return stats.calls, stats.hops


async def main(n: int, latency_ms: float, repeat: int, store_timing: bool, store_workers: int | None) -> None:
    header(f"concurrent_turns: {n} sessions, one turn each at once, mock first_token_latency {latency_ms} ms, sqlite")
    params = {"first_token_latency_ms": latency_ms, "reply": "ok"}
    latency = latency_ms / 1000.0
    first: list[float] = []
    second: list[float] = []
    ideals: list[float] = []
    failures = 0
    hops_per_round: list[tuple[int, int]] = []
    if store_workers is not None:  # experiment: how many StoreIO worker tasks the supervisor runs (2)
        import actors.realm as realm_module
        from actors.storeio import StoreIO

        realm_module.StoreIO = functools.partial(StoreIO, workers=store_workers)  # type: ignore[misc]
        print(f"experiment: the supervisor's StoreIO runs {store_workers} worker task(s)")
    with tempfile.TemporaryDirectory(prefix="rkat-bench-") as tmp:
        options = HostOptions(idle_timeout=3600.0)
        async with open_service("bench-concurrent", state_root=Path(tmp), backend="sqlite",
                                options=options) as service:
            await ideal(100, 0.001)  # warm-up of the nursery machinery
            timings = instrument_store(service.supervisor.store) if store_timing else None
            for r in range(repeat):
                # Fresh sessions each repetition: the timed scenario is the first turn after
                # creation; a second turn on the same sessions follows.
                t0 = now()
                ids = [(await service.create_session(provider="mock", provider_params=params,
                                                     run_immediately=False)).session_id for _ in range(n)]
                created = now() - t0
                ideals.append(await ideal(n, latency))
                calls0, hops0 = io_counts(service)
                wall1, fin1, f1 = await concurrent_round(service, ids, f"first {r}")
                calls1, hops1 = io_counts(service)
                wall2, fin2, f2 = await concurrent_round(service, ids, f"second {r}")
                calls2, hops2 = io_counts(service)
                hops_per_round += [(calls1 - calls0, hops1 - hops0), (calls2 - calls1, hops2 - hops1)]
                if timings is not None:
                    parts = ", ".join(f"{k} {sum(v):.3f} s ({len(v)} calls, mean {sum(v) / len(v) * 1e3:.3f} ms)"
                                      for k, v in timings.items())
                    print(f"  in-thread store time, both rounds: {parts}")
                    timings.clear()
                first.append(wall1)
                second.append(wall2)
                failures += f1 + f2
                print(f"rep {r}: created {n} sessions in {created:.2f} s (untimed); ideal {ideals[-1]:.3f} s; "
                      f"first turns {wall1:.3f} s (first done {fin1[0]:.3f}, median {fin1[len(fin1) // 2]:.3f}); "
                      f"second turns {wall2:.3f} s")
                print(f"       store calls / thread hops: first round {calls1 - calls0} / {hops1 - hops0}, "
                      f"second round {calls2 - calls1} / {hops2 - hops1}")

            # The store work alone, back to back, without the wait: the serial floor.
            k = min(200, n)
            t0 = now()
            for sid in ids[:k]:
                await service.start_turn(sid, "serial", provider_params={"reply": "ok"})
            serial = (now() - t0) / k
            print(f"serial turns without latency: {serial * 1000:.3f} ms each, i.e. {serial * n:.2f} s for {n} "
                  f"back to back (the 50 ms waits overlap; the store work and the GIL do not)")
            stats = service.statistics()
            print(f"actors live {stats.live_actors}, crashed {stats.actors_crashed}, failures {failures}")

    # Decomposition, same run: the host without a store (memory backend), and what the
    # store calls would cost in bare thread hops if each took its own (2 per turn, through an
    # 8-thread limiter as before StoreIO), issued from n concurrent tasks; StoreIO batches
    # them into far fewer hops.
    mem_walls = []
    async with open_service(backend="memory", options=HostOptions(idle_timeout=3600.0)) as mem:
        for r in range(2):
            mem_ids = [(await mem.create_session(provider="mock", provider_params=params,
                                                 run_immediately=False)).session_id for _ in range(n)]
            mem_walls.append((await concurrent_round(mem, mem_ids, f"memory {r}"))[0])

    limiter = trio.CapacityLimiter(8)  # as the supervisor's thread limiter was before StoreIO

    async def hops() -> None:
        for _ in range(2):
            await trio.to_thread.run_sync(_noop, limiter=limiter)

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(hops)
    hop_wall = now() - t0
    calls_total = sum(c for c, _ in hops_per_round)
    hops_total = sum(h for _, h in hops_per_round)
    print(f"decomposition: same {n} concurrent turns on the memory backend {min(mem_walls):.3f} s; "
          f"{2 * n} no-op trio.to_thread hops (one per store call) from {n} tasks {hop_wall:.3f} s; "
          f"StoreIO made {calls_total} store calls in {hops_total} hops over all rounds "
          f"({calls_total / max(hops_total, 1):.0f} calls per hop)")

    ideal_med = statistics.median(ideals)
    med1, med2 = statistics.median(first), statistics.median(second)
    print()
    print(f"ideal ({n} x trio.sleep) median {ideal_med:.3f} s")
    print(f"first turn after creation: median {med1:.3f} s (min {min(first):.3f}, max {max(first):.3f}), "
          f"ratio to ideal {med1 / ideal_med:.1f}x")
    print(f"second turn:               median {med2:.3f} s (min {min(second):.3f}, max {max(second):.3f}), "
          f"ratio to ideal {med2 / ideal_med:.1f}x")
    print(f"TARGET <= {TARGET_S} s for {n} concurrent turns (first turn, median of {repeat}): {med1:.3f} s "
          f"({med1 / TARGET_S:.2f}x of target)  {verdict(med1 <= TARGET_S and failures == 0)}")
    print(f"  (second turn on the same sessions: {med2:.3f} s  {verdict(med2 <= TARGET_S)})")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=1000)
    parser.add_argument("--latency-ms", type=float, default=50.0)
    parser.add_argument("--repeat", type=int, default=3, help="repetitions on fresh sessions (default 3)")
    parser.add_argument("--store-timing", action="store_true",
                        help="experiment: time each store call inside its worker thread")
    parser.add_argument("--store-workers", type=int, default=None, metavar="N",
                        help="experiment: run the supervisor's StoreIO with N worker tasks (host default 2)")
    args = parser.parse_args()
    trio.run(main, args.sessions, args.latency_ms, args.repeat, args.store_timing, args.store_workers)
