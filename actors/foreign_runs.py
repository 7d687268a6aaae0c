"""ForeignRunWatch: mirror other processes' turns into the sessions followed here.

Used by coordinators. A session with a reader in this process (and no turn of
its own) is looked at now and then, and at once when a reader arrives or a peer
says something changed: if the store shows another process's turn running on it,
the session's actor pulls that turn's events (:meth:`LocalSession.mirror`). Only
sessions that gained a reader are looked at, never every live actor: thousands
may idle.
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

import trio

from meerkat.errors import MeerkatError

from .coordination import CoordinationHost, LocalSession

__all__ = ["ForeignRunWatch"]

log = logging.getLogger("rkat.realm")


class ForeignRunWatch:
    """The followed sessions of one realm in this process, and the loop that mirrors foreign turns."""

    def __init__(self, host: CoordinationHost, publish: Callable[[], Awaitable[None]] | None = None, *,
                 interval: float | None = None) -> None:
        self._host = host
        #: Seconds between looks when nothing pokes (default: ``HostOptions.foreign_poll_interval``).
        self._interval = interval if interval is not None else host.options.foreign_poll_interval
        #: Called each round before looking (a coordinator telling others what is followed here).
        self._publish = publish
        #: Sessions that gained a reader here since they were last seen without one.
        self._read_sessions: set[str] = set()
        self._poke = trio.Event()

    def note_reader(self, session_id: str) -> None:
        """A session got a reader here."""
        self._read_sessions.add(session_id)

    def follows(self, session_id: str) -> bool:
        """Whether a subscriber here follows ``session_id`` (a turn's own stream does not count)."""
        if session_id not in self._read_sessions:
            return False
        actor = self._host.live_actor(session_id)
        return actor is not None and actor.has_readers()

    def readers(self) -> list[LocalSession]:
        """The actors with readers here; sessions that lost theirs are forgotten."""
        actors = [self._host.live_actor(sid) for sid in tuple(self._read_sessions)]
        reading = [a for a in actors if a is not None and a.has_readers()]
        self._read_sessions = {a.session_id for a in reading}
        return reading

    def followed(self) -> frozenset[str]:
        """The sessions someone in this process follows now."""
        return frozenset(actor.session_id for actor in self.readers())

    def poke(self) -> None:
        """Look for other processes' turns now (someone just subscribed here, or a peer pinged)."""
        self._poke.set()

    async def run(self) -> None:
        """Mirror other processes' turns into the buses of sessions followed here, until cancelled."""
        while True:
            with trio.move_on_after(self._interval):
                await self._poke.wait()
            self._poke = trio.Event()
            if self._publish is not None:
                try:
                    await self._publish()
                except MeerkatError as exc:
                    log.warning("could not publish followed sessions: %s", exc)
            watched = [a for a in self.readers() if a.wants_foreign_events()]
            if watched:
                try:
                    await self._mirror_foreign_runs(watched)
                except MeerkatError as exc:
                    log.warning("could not look for turns of other processes: %s", exc)

    async def _mirror_foreign_runs(self, watched: list[LocalSession]) -> None:
        host = self._host
        for actor in watched:
            record = await host.store_call(host.store.get_session, actor.session_id)
            if record is None:  # archived by another process: end the streams that follow it here
                actor.notice_archived_elsewhere()
                continue
            if record.active_run_id is None:
                continue
            run = await host.store_call(host.store.get_run, record.active_run_id)
            if run is not None and run.status == "running" and run.owner != host.owner:
                actor.mirror(run, record.last_seq)
