"""Memory of live idle session actors, and proof that hibernated ones cost no task.

Part 1: with ``HostOptions(idle_timeout=3600)`` create N sessions (default
10,000) with ``run_immediately=False`` on the memory backend; every one keeps
a live actor (one trio task, a mailbox, an event bus). Report RSS growth
(VmRSS) in total and per actor. Baseline: the RSS of the same process with the
service open and no session, measured in the same run. The memory backend
keeps each session's record in the process too, so part of the growth is the
store, not the actor: after part 2 the actors are gone and the store is not,
which splits the two.

Part 2: the same with ``idle_timeout=0.05``: wait until
``service.statistics().live_actors == 0`` and count trio tasks (a walk of the
root task's nurseries) before any session, at the peak, and after hibernation.

Part 4: CPU an idle *shared* realm (sqlite, where the host also watches for
other processes' turns) spends with M live idle actors (default 5,000), against
the same realm with 16: the background loops must cost per followed session,
not per live actor.

Target: <= 150 MB RSS growth for 10,000 live idle actors.

    .venv/bin/python bench/idle_actors.py [--sessions N] [--shared-sessions M]
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
import tracemalloc

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import count_tasks, header, mb, now, rss_bytes, verdict

import trio

from actors import HostOptions, open_service

TARGET_MB = 150.0
CREATORS = 8  # concurrent create_session callers (the supervisor mailbox holds 64)


async def create_many(service, n: int) -> list[str]:
    ids: list[str] = []

    async def creator(count: int) -> None:
        for _ in range(count):
            result = await service.create_session(provider="mock", run_immediately=False)
            ids.append(result.session_id)

    async with trio.open_nursery() as nursery:
        for i in range(CREATORS):
            nursery.start_soon(creator, n // CREATORS + (1 if i < n % CREATORS else 0))
    return ids


async def idle_cpu(sessions: int, seconds: float = 3.0) -> float:
    """Percent of a core an idle sqlite realm with ``sessions`` live idle actors uses."""
    with tempfile.TemporaryDirectory() as root:
        async with open_service("idle-shared", state_root=root, backend="sqlite",
                                options=HostOptions(idle_timeout=3600.0)) as service:
            await create_many(service, sessions)
            await trio.sleep(0.5)  # let creation's after-effects (checkpoints) settle
            cpu, wall = time.process_time(), time.monotonic()
            await trio.sleep(seconds)
            return (time.process_time() - cpu) / (time.monotonic() - wall) * 100


async def main(n: int, shared: int = 5000) -> None:
    header(f"idle_actors: {n} live idle session actors (memory backend)")

    # -- part 1: live idle actors ---------------------------------------------------
    async with open_service(backend="memory", options=HostOptions(idle_timeout=3600.0)) as service:
        # Warm-up: a few sessions first, so imports and one-time allocations are not
        # charged to the actors measured below.
        await create_many(service, 16)
        gc.collect()
        tasks_base = count_tasks()
        rss_base = rss_bytes()
        t0 = now()
        await create_many(service, n)
        elapsed = now() - t0
        gc.collect()
        await trio.sleep(0.2)  # let every actor reach its idle wait
        rss_live = rss_bytes()
        tasks_live = count_tasks()
        live = service.statistics().live_actors
        growth = rss_live - rss_base
        print(f"created {n} sessions in {elapsed:.2f} s ({n / elapsed:,.0f}/s); live actors: {live}")
        print(f"baseline RSS (service open, 16 warm-up sessions): {mb(rss_base):8.1f} MB, tasks {tasks_base}")
        print(f"RSS with {n} more live idle actors:        {mb(rss_live):8.1f} MB, tasks {tasks_live} "
              f"(+{tasks_live - tasks_base})")
        print(f"RSS growth: {mb(growth):.1f} MB total, {growth / n / 1024:.2f} KiB per actor (incl. its store row)")

    # -- part 2: hibernation ----------------------------------------------------------
    # tracemalloc is on from here (it costs memory itself, so part 1's RSS ran without it):
    # Python-heap bytes still held per session once every actor has hibernated is the
    # memory store's row, which splits part 1's growth into store and actors.
    tracemalloc.start()
    async with open_service(backend="memory", options=HostOptions(idle_timeout=0.05)) as service:
        await create_many(service, 16)
        while service.statistics().live_actors:
            await trio.sleep(0.02)
        gc.collect()
        tasks_before = count_tasks()
        traced_before = tracemalloc.get_traced_memory()[0]
        peak = 0
        peak_tasks = 0

        async def watch(cancel: trio.CancelScope) -> None:
            nonlocal peak, peak_tasks
            with cancel:
                while True:
                    live_now = service.statistics().live_actors
                    if live_now > peak:
                        peak, peak_tasks = live_now, count_tasks()
                    await trio.sleep(0.01)

        t0 = now()
        async with trio.open_nursery() as nursery:
            cancel = trio.CancelScope()
            nursery.start_soon(watch, cancel)
            await create_many(service, n)
            created = now()
            while service.statistics().live_actors:
                await trio.sleep(0.01)
            all_gone = now()
            cancel.cancel()
        gc.collect()
        tasks_after = count_tasks()
        store_bytes = tracemalloc.get_traced_memory()[0] - traced_before
        stats = service.statistics()
        print()
        print(f"hibernation (idle_timeout=0.05 s): created {n} in {created - t0:.2f} s, all hibernated "
              f"{all_gone - created:.2f} s later")
        print(f"  trio tasks: before sessions {tasks_before}, at peak {peak_tasks} (live actors {peak}), "
              f"after hibernation {tasks_after} (live actors {stats.live_actors})")
        print(f"  actors started {stats.actors_started}, retired {stats.actors_retired}, "
              f"crashed {stats.actors_crashed}")
        print(f"  Python heap still held after hibernation: {mb(store_bytes):.1f} MB = "
              f"{store_bytes / n / 1024:.2f} KiB per session (the memory store's rows; no actor left)")
        hibernated_ok = tasks_after == tasks_before and stats.live_actors == 0

    # -- part 3: the same live actors, by tracemalloc ----------------------------------
    async with open_service(backend="memory", options=HostOptions(idle_timeout=3600.0)) as service:
        await create_many(service, 16)
        gc.collect()
        traced_before = tracemalloc.get_traced_memory()[0]
        await create_many(service, n)
        await trio.sleep(0.2)
        gc.collect()
        live_bytes = tracemalloc.get_traced_memory()[0] - traced_before
    tracemalloc.stop()
    actor_bytes = live_bytes - store_bytes
    print()
    print(f"Python heap per live idle session (tracemalloc): {live_bytes / n / 1024:.2f} KiB = "
          f"store row {store_bytes / n / 1024:.2f} KiB + actor {actor_bytes / n / 1024:.2f} KiB")
    print(f"  (RSS growth per session in part 1: {growth / n / 1024:.2f} KiB; the rest is allocator "
          f"overhead and fragmentation)")

    # -- part 4: an idle shared realm's background loops ---------------------------------
    few = await idle_cpu(16)
    many = await idle_cpu(shared)
    print()
    print(f"idle shared (sqlite) realm, CPU while nothing happens: {shared} live actors {many:.1f}% "
          f"of a core, 16 live actors {few:.1f}%")
    print(f"RATIO idle CPU {shared} / 16 live actors: {many / max(few, 0.1):.1f}x")

    print()
    print(f"TARGET <= {TARGET_MB:.0f} MB RSS for {n} live idle actors: {mb(growth):.1f} MB "
          f"({mb(growth) / TARGET_MB:.2f}x of target)  {verdict(mb(growth) <= TARGET_MB)}")
    print(f"hibernated sessions cost no task: {tasks_after - tasks_before:+d} tasks  {verdict(hibernated_ok)}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sessions", type=int, default=10_000, help="sessions to create (default 10000)")
    parser.add_argument("--shared-sessions", type=int, default=5000,
                        help="live idle actors on the shared realm of part 4 (default 5000)")
    args = parser.parse_args()
    trio.run(main, args.sessions, args.shared_sessions)
