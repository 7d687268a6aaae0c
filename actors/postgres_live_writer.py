"""LiveEventWriter: a postgres host's running turns' events, written for the other hosts.

Each turn of this host is followed by a relay subscription of its bus; the
events it yields are queued and written to ``rkat.live_events`` in small
batches (at most one write per :data:`BATCH_WINDOW` seconds, the first event
after a quiet spell at once, and at once past :data:`BATCH_ROWS` events), each batch one short transaction in a worker thread that also pings the
realm's live channel for every session in it. The rows of a run that ended are
deleted :data:`DELETE_GRACE` seconds after its terminal event (followers still
reading them then read the committed log); rows that owners which died left
behind go with a sweep every :data:`SWEEP_INTERVAL` seconds. A write that fails
is tried again with the next batch (a bounded backlog); what a long outage
drops loses nothing committed: followers fall back on the log when the run ends.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

import psycopg
import trio

from meerkat.errors import StoreError
from meerkat.events import EventEnvelope, encode_envelope
from meerkat.store.postgres_live import LiveRow, append_live, delete_live_runs, sweep_live
from meerkat.transcript import now_ms

from .bus import Subscription

__all__ = ["LiveEventWriter", "BATCH_WINDOW", "BATCH_ROWS", "DELETE_GRACE"]

log = logging.getLogger("rkat.realm")

#: Seconds between two writes at most: an event waits at most this long to be written for other hosts.
BATCH_WINDOW = 0.01
#: Events that are written at once, without waiting for the window.
BATCH_ROWS = 256
#: Unwritten events kept for the next write after a failed one (the newest, in a long outage).
RETRY_ROWS = 16 * BATCH_ROWS
#: Seconds between retries while writes fail.
RETRY_DELAY = 0.2
#: Seconds a finished run's live rows stay for followers still reading them (then: the log).
DELETE_GRACE = 5.0
#: Seconds between sweeps of rows left by owners that died, and their age before they go.
SWEEP_INTERVAL = 60.0


class LiveEventWriter:
    """See the module docstring. ``db(fn, *args)`` runs ``fn(connection, *args)`` in a worker thread."""

    def __init__(self, realm_id: str, db: Callable[..., Awaitable[Any]]) -> None:
        self._realm_id = realm_id
        self._db = db
        self._outbox: list[LiveRow] = []
        self._outbox_ready = trio.Event()
        self._outbox_full = trio.Event()
        #: (due time, run_id): live rows to delete once followers had their chance.
        self._ended: list[tuple[float, str]] = []
        #: One warning per streak of failed writes (a database outage), not one per batch.
        self._write_failing = False

    async def publish(self, session_id: str, run_id: str, subscription: Subscription) -> None:
        """Queue a turn's events from its subscription until its terminal event (or a shutdown)."""
        try:
            async for envelope in subscription:
                self._queue(session_id, run_id, envelope)
        finally:  # cancelled by a shutdown: what the turn already published still goes out
            subscription.close()
            while True:
                try:
                    self._queue(session_id, run_id, subscription.receive_nowait())
                except (trio.WouldBlock, trio.EndOfChannel):
                    break
            self._ended.append((trio.current_time() + DELETE_GRACE, run_id))

    def _queue(self, session_id: str, run_id: str, envelope: EventEnvelope) -> None:
        if envelope.seq <= 0:
            return  # a truncation marker of this subscription, not one of the session's events
        self._outbox.append(LiveRow(session_id, envelope.seq, run_id, encode_envelope(envelope)))
        self._outbox_ready.set()
        if len(self._outbox) >= BATCH_ROWS:
            self._outbox_full.set()

    async def run(self) -> None:
        """Write queued events in batches and sweep stale rows, until cancelled."""
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._sweep_loop)
            await self._write_loop()

    async def _write_loop(self) -> None:
        last_write = -BATCH_WINDOW
        while True:
            with trio.move_on_after(DELETE_GRACE):
                await self._outbox_ready.wait()
            # At most one write per window: an event after a quiet spell goes out at once, a
            # burst gathers behind the write before it (one transaction for all of it).
            wait = last_write + BATCH_WINDOW - trio.current_time()
            if self._outbox and len(self._outbox) < BATCH_ROWS and wait > 0:
                with trio.move_on_after(wait):
                    await self._outbox_full.wait()
            if self._write_failing:  # the database is in trouble: retry the backlog calmly
                await trio.sleep(RETRY_DELAY)
            last_write = trio.current_time()
            await self.flush()

    async def flush(self) -> None:
        """Write what is queued, and drop the rows of runs that ended a while ago."""
        rows, self._outbox = self._outbox, []
        self._outbox_ready, self._outbox_full = trio.Event(), trio.Event()
        now = trio.current_time()
        due = [run_id for at, run_id in self._ended if at <= now]
        self._ended = [(at, run_id) for at, run_id in self._ended if at > now]
        if not rows and not due:
            return
        try:
            await self._db(_write, self._realm_id, rows, due)
        except StoreError as exc:
            log.log(logging.DEBUG if self._write_failing else logging.WARNING,
                    "could not write live events for other hosts: %s", exc)
            self._write_failing = True
            # Kept for the next write, in order: followers read live rows after their cursor, so a
            # batch lost while later ones land would be a gap they show as stream_truncated (one
            # pool timeout on a busy host was enough). Bounded: in a long outage the oldest go, and
            # followers catch up from the committed log when the run ends.
            self._outbox = (rows + self._outbox)[-RETRY_ROWS:]
            self._ended = [(now, run_id) for run_id in due] + self._ended
            if self._outbox:
                self._outbox_ready.set()
        else:
            if self._write_failing:
                log.warning("postgres realm %s: writing live events for other hosts again", self._realm_id)
            self._write_failing = False

    async def _sweep_loop(self) -> None:
        while True:
            await trio.sleep(SWEEP_INTERVAL)
            try:
                await self._db(sweep_live, self._realm_id, now_ms() - int(SWEEP_INTERVAL * 1000))
            except StoreError as exc:
                log.warning("could not sweep stale live events: %s", exc)


def _write(conn: psycopg.Connection[Any], realm_id: str, rows: list[LiveRow], ended: list[str]) -> None:
    append_live(conn, realm_id, rows, now_ms())
    delete_live_runs(conn, realm_id, ended)
