"""A postgres host runs as many store calls at once as its pool has connections.

Store calls leave the event loop through the supervisor's ``StoreIO``. For sqlite
it batches queued calls into two worker threads (one hop for many commits); for a
database server that would queue every session's round trips behind each other
and leave the pool idle (bench/postgres_scaleout.py: 8 turn loops on one host
ran no faster than one).
"""

from __future__ import annotations

import threading

import trio

from actors import open_service


async def test_as_many_store_calls_run_at_once_as_the_pool_has_connections(tmp_path, postgres_migrated_url):
    async with open_service("team", state_root=tmp_path, backend="postgres",
                            database_url=postgres_migrated_url) as service:
        supervisor = service.supervisor
        size = supervisor.store.database.pool.max_size
        assert size == 4  # storage.postgres.pool_size's default
        # Each call waits until all of them are in flight: run one after another (or two by two), they never are.
        together = threading.Barrier(size, timeout=10)
        finished: list[int] = []

        async def call() -> None:
            finished.append(await supervisor.store_call(together.wait))

        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                for _ in range(size):
                    nursery.start_soon(call)
        assert sorted(finished) == list(range(size))
