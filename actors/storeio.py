"""Store I/O off the event loop, batched.

sqlite and file writes block (locks, fsync), so under trio they run in worker
threads. One thread hop per call costs more than a sqlite commit itself when a
thousand sessions commit at once, so calls are queued and a few worker tasks
each take every queued call and run them back to back in one hop. Each call
is still its own store transaction: batching saves hops, not atomicity.

A caller waits for its call even if it is cancelled meanwhile (as with
``trio.to_thread.run_sync``): a write that reached the store is never orphaned.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, TypeVar

import trio

from .mailbox import Reply

__all__ = ["StoreIO", "StoreIOStatistics"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class StoreIOStatistics:
    """Queued calls, and how many calls and thread hops ran so far."""

    queued: int
    calls: int
    hops: int


def _run_batch(batch: list[tuple[Callable[[], Any], Reply[Any]]]) -> list[tuple[bool, Any]]:
    outcomes: list[tuple[bool, Any]] = []
    for fn, _ in batch:
        try:
            outcomes.append((True, fn()))
        except BaseException as exc:  # shipped back to the caller's task
            outcomes.append((False, exc))
    return outcomes


class StoreIO:
    """Runs blocking store calls in worker threads, batching what is queued."""

    def __init__(self, workers: int = 2, max_batch: int = 256) -> None:
        self._workers = workers
        self._max_batch = max_batch
        self._queue: deque[tuple[Callable[[], Any], Reply[Any]]] = deque()
        self._wakeup = trio.lowlevel.ParkingLot()
        self._running = False
        self._calls = 0
        self._hops = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve calls until cancelled."""
        async with trio.open_nursery() as nursery:
            for _ in range(self._workers):
                nursery.start_soon(self._worker)
            self._running = True
            task_status.started()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(*args)`` in a worker thread and return its result (or raise its error)."""
        job = partial(fn, *args)
        if not self._running:
            return await trio.to_thread.run_sync(job)
        reply: Reply[T] = Reply()
        self._queue.append((job, reply))
        self._wakeup.unpark()
        with trio.CancelScope(shield=True):
            result = await reply.wait()
        return result

    async def _worker(self) -> None:
        try:
            while True:
                if not self._queue:
                    await self._wakeup.park()
                    continue
                await self._run_queued()
        finally:
            # Shutting down: later calls go straight to a thread, and what is
            # already queued (a turn's final commit, say) still runs.
            self._running = False
            with trio.CancelScope(shield=True):
                while self._queue:
                    await self._run_queued()

    async def _run_queued(self) -> None:
        batch: list[tuple[Callable[[], Any], Reply[Any]]] = []
        while self._queue and len(batch) < self._max_batch:
            batch.append(self._queue.popleft())
        self._hops += 1
        self._calls += len(batch)
        with trio.CancelScope(shield=True):  # never drop replies of calls already taken
            outcomes = await trio.to_thread.run_sync(_run_batch, batch)
        for (_, reply), (ok, value) in zip(batch, outcomes):
            if ok:
                reply.send(value)
            else:
                reply.fail(value)

    def statistics(self) -> StoreIOStatistics:
        """Queue depth and counters."""
        return StoreIOStatistics(queued=len(self._queue), calls=self._calls, hops=self._hops)
