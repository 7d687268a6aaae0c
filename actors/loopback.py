"""LoopbackCoordinator: the processes of one machine sharing a file realm (sqlite, jsonl).

* Liveness: an owner on this host id is alive while its pid is (a lease covers
  owners with another host id and hung ones).
* Links: each process serves a live link on a loopback port (:mod:`actors.live`),
  started on first use and written into the run records it begins; others follow
  a run's events or interrupt it through it.
* Followers: processes with subscribers say so in ``<realm>/live/``
  (:mod:`actors.watchers`); a process beginning a turn pushes its events to them,
  and a follower also pulls a turn already running when a subscriber arrives
  (:class:`actors.foreign_runs.ForeignRunWatch`).
"""

from __future__ import annotations

import logging
from contextlib import aclosing
from pathlib import Path
from typing import AsyncGenerator, Callable

import trio

from meerkat.events import EventEnvelope
from meerkat.store import RunRecord
from meerkat.transcript import now_ms

from .bus import Subscription
from .coordination import BACKLOG, LIVE, Backlog, CoordinationHost, Coordinator
from .foreign_runs import ForeignRunWatch
from .live import LiveServer, follow_run, interrupt_run, push_events
from .watchers import Watcher, WatchRegistry

__all__ = ["LoopbackCoordinator", "PUSH_GRACE"]

log = logging.getLogger("rkat.realm")

#: Seconds a process shutting down gives its pushes to other processes to deliver a turn's last events.
PUSH_GRACE = 2.0


class LoopbackCoordinator(Coordinator):
    """See the module docstring."""

    def __init__(self, host: CoordinationHost, realm_root: Path) -> None:
        self._host = host
        self.live = LiveServer(host)
        self._live_started = False
        self._live_lock = trio.Lock()
        #: One publish of followed sessions at a time, each computed when its turn comes, so an
        #: older set can never land after a newer one (a subscriber is answered only once it is on file).
        self._publish_lock = trio.Lock()
        self.watch = WatchRegistry(realm_root, host.owner)
        self.foreign = ForeignRunWatch(host, self.publish_followed)
        #: Cancel scopes of event pushes to other processes (shielded: they may finish after a shutdown starts).
        self._pushes: set[trio.CancelScope] = set()
        self._closing = False

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Mirror other processes' turns into sessions followed here (the link starts on first use)."""
        task_status.started()
        await self.foreign.run()

    def close(self) -> None:
        """Bound the pushes still running, and remove this process's entry from ``live/``."""
        self._closing = True
        deadline = trio.current_time() + PUSH_GRACE
        for scope in self._pushes:
            scope.deadline = min(scope.deadline, deadline)
        self.watch.close()

    async def run_link(self) -> tuple[str | None, str | None]:
        """This process's live link (endpoint, token); started on first use."""
        async with self._live_lock:
            if not self._live_started:
                try:
                    await self._host.nursery.start(self.live.run)
                except OSError as exc:  # no loopback socket: turns still run, others just can't follow them
                    log.warning("cannot serve the live link: %s", exc)
                    return None, None
                self._live_started = True
        return self.live.endpoint, self.live.token

    async def follow(self, run: RunRecord, after_seq: int) -> AsyncGenerator[EventEnvelope | Backlog, None]:
        """The run's events from its owner's live link. Those it had published before we asked (the
        owner's ring replays them first) are the :data:`BACKLOG`: the owner is on this machine, so
        its event timestamps and our clock are one clock."""
        asked_ms = now_ms()
        yield BACKLOG
        backlog = True
        async with aclosing(follow_run(run, after_seq)) as events:
            async for envelope in events:
                if backlog and envelope.timestamp_ms > asked_ms:
                    backlog = False
                    yield LIVE
                yield envelope

    async def interrupt(self, run: RunRecord, timeout: float) -> bool | None:
        """Ask the owner over its live link."""
        if run.live_endpoint is not None and run.live_endpoint == self.live.endpoint:
            # A run on our own link that no turn here holds was left by a failed commit: no one
            # can stop it over the link, it is closed once its lease runs out.
            return None
        return await interrupt_run(run, timeout=timeout)

    async def reader_added(self, session_id: str) -> None:
        """Note the reader, put the session on file in ``live/``, then look for a running turn."""
        self.foreign.note_reader(session_id)
        try:
            await self.publish_followed()
        finally:
            self.foreign.poke()  # a turn may already be running elsewhere

    async def publish_followed(self) -> None:
        """Tell other processes which sessions are followed here (so their turns push events)."""
        async with self._publish_lock:
            followed = self.foreign.followed()
            if followed == self.watch.published:
                return
            endpoint, token = await self.run_link()
            if endpoint is None or token is None:
                return
            await self._host.io.call(self.watch.publish, endpoint, token, self.foreign.followed())

    async def broadcast_turn(self, session_id: str, run_id: str, subscribe: Callable[[], Subscription]) -> None:
        """Push the turn's events to every process that follows the session."""
        for watcher in await self._watchers_of(session_id):
            self._host.nursery.start_soon(self._push, watcher, session_id, subscribe())

    async def _watchers_of(self, session_id: str) -> list[Watcher]:
        cached = self.watch.cached_watchers_of(session_id)  # one stat on the loop: nothing changed
        if cached is not None:
            return cached
        return await self._host.io.call(self.watch.watchers_of, session_id)

    async def _push(self, watcher: Watcher, session_id: str, subscription: Subscription) -> None:
        # Shielded so a process shutting down right after its turn (``rkat run``) still
        # delivers the turn's last events; close() bounds how long.
        with trio.CancelScope(shield=True) as scope:
            self._pushes.add(scope)
            if self._closing:
                scope.deadline = trio.current_time() + PUSH_GRACE
            try:
                await push_events(watcher, session_id, subscription)
            except Exception:  # a bug must cost this push only, never the realm's other work
                log.exception("push of session %s to %s failed", session_id, watcher.owner)
            finally:
                self._pushes.discard(scope)
