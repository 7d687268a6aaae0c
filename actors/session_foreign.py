"""What a session actor does about turns of other processes on its session.

A mixin of :class:`actors.session.SessionActor`, kept apart so the actor's own
mailbox and turn machinery stay readable. Everything that crosses a process goes
through the realm's :class:`actors.coordination.Coordinator`:

* mirroring: another process's running turn is copied into this session's bus
  with the owner's seq, pulled (:meth:`ForeignRuns.mirror`) or pushed to us
  (:meth:`ForeignRuns.relay` under :meth:`ForeignRuns.relaying`);
* catching up: turns another process committed before this one followed them
  (their pings still on the way) are read back from the session's event log,
  so readers here get those events whole rather than a ``stream_truncated`` marker;
* stopping: an interrupt or ``turn/stop_run`` for a run another process owns
  asks the owner, falling back on the store's interrupt flag and the lease.
"""

from __future__ import annotations

import logging
from contextlib import aclosing, contextmanager
from functools import partial
from typing import Any, Iterator

import trio

from meerkat import observability
from meerkat.errors import MeerkatError, SessionNotFound
from meerkat.events import TERMINAL_EVENT_TYPES, EventEnvelope
from meerkat.store import RunRecord
from meerkat.views import InterruptResult

from .bus import EventBus, Subscription
from .coordination import Backlog
from .messages import Interrupt
from .session_host import SessionHost

__all__ = ["ForeignRuns", "MAX_RELAY_SEQ_JUMP"]

log = logging.getLogger("rkat.session")

#: Furthest a relayed event's seq may run ahead of this process's last one. Legitimate
#: jumps are the events of turns this process has not seen yet (thousands at most);
#: a forged push naming seq 10**15 would otherwise become the session's counter.
MAX_RELAY_SEQ_JUMP = 1_000_000
#: Longest a turn that just took the lease waits for the previous turn's relayed events.
RELAY_DRAIN_SECS = 1.0
#: Most committed events read back from the log for readers here in one catch-up; an older
#: part of a longer gap reaches them as a ``stream_truncated`` marker counting it.
LOG_CATCH_UP_MAX = 1024


class ForeignRuns:
    """Mixin: other processes' turns on the session (mirroring, relaying, stopping them)."""

    # State the actor provides (see SessionActor.__init__).
    session_id: str
    _supervisor: SessionHost
    _bus: EventBus | None
    _running: Any
    _archived: bool
    _retired: bool
    _nursery: trio.Nursery | None
    #: Streams of another process's turn being copied into this bus (pulled or pushed).
    _relays: int

    @property
    def leased_run_id(self) -> str | None:
        raise NotImplementedError  # provided by SessionActor

    def retire(self, error: MeerkatError | None) -> None:
        raise NotImplementedError  # provided by SessionActor

    def notice_store_change(self) -> None:
        raise NotImplementedError  # provided by SessionActor

    def _catch_up(self, store_last_seq: int, *, except_for: Subscription | None = None) -> None:
        raise NotImplementedError  # provided by SessionActor

    def has_readers(self) -> bool:
        """Whether someone in this process follows the session's events."""
        return self._bus is not None and self._bus.reader_count > 0 and not self._archived and not self._retired

    def wants_foreign_events(self) -> bool:
        """Whether someone here follows the session while no turn of ours runs on it and none is relayed."""
        # A local turn request still waiting for the lease (and about to be refused busy)
        # does not count: only a turn of ours that holds the lease numbers the events.
        return self.has_readers() and self.leased_run_id is None and self._relays == 0

    def mirror(self, run: RunRecord, last_committed_seq: int) -> None:
        """Pull the events of another process's running turn into this bus, with their seq."""
        if self._nursery is None or not self.wants_foreign_events():
            return
        assert self._bus is not None
        try:
            self._nursery.start_soon(self._mirror, run, last_committed_seq)
        except RuntimeError:
            return  # the actor is stopping (its nursery closed, run() not back yet to say so)
        self._relays += 1  # before _mirror runs: start_soon only schedules it

    async def _mirror(self, run: RunRecord, last_committed_seq: int) -> None:
        assert self._bus is not None
        try:
            await self.replay_committed(last_committed_seq)
            self._catch_up(last_committed_seq)
            async with aclosing(self._supervisor.coordinator.follow(run, self._bus.last_seq)) as events:
                backlog = False
                async for item in events:
                    if isinstance(item, Backlog):
                        backlog = item.open
                        continue
                    if not self.relay(item, backlog=backlog):
                        break
                    if item.type in TERMINAL_EVENT_TYPES:
                        break
        except Exception:  # losing the relay must not take the session's actor down
            log.exception("relay of run %s into session %s failed", run.run_id, self.session_id)
        finally:
            self._relays -= 1
        self.notice_store_change()

    async def replay_committed(self, upto_seq: int, *, except_for: Subscription | None = None) -> None:
        """Publish committed events this process never saw, up to ``upto_seq``, read from the log.

        Another process's quick turns can commit before their pings reach us: the
        store then shows a seq past this bus's. Readers here are owed those
        events, so they get them (as a backlog: queued past their capacity, at
        most :data:`LOG_CATCH_UP_MAX`) rather than a ``stream_truncated`` marker.
        Nothing is read without readers; what the log no longer holds (pruned, or
        an unreadable store) is left for :meth:`_catch_up` to count as missing.
        ``except_for``: a subscriber that is not a reader of those events (a turn's
        own stream, which starts with that turn).
        """
        bus = self._bus
        if (bus is None or upto_seq <= bus.last_seq or not self.has_readers()
                or not bus.readers_besides(except_for)):
            return
        sup = self._supervisor
        after = max(bus.last_seq, upto_seq - LOG_CATCH_UP_MAX)
        self._relays += 1  # nothing else publishes another process's events here meanwhile
        try:
            page = await sup.store_call(partial(sup.store.read_events, self.session_id, after_seq=after,
                                                limit=upto_seq - after))
        except MeerkatError as exc:
            log.warning("could not read the events of session %s after seq %d from its log: %s",
                        self.session_id, after, exc)
            return
        finally:
            self._relays -= 1
        for envelope in page.events if page is not None else ():
            if envelope.seq > upto_seq or not self.relay(envelope, backlog=True, except_for=except_for):
                break

    @contextmanager
    def relaying(self) -> Iterator[None]:
        """While another process pushes a turn's events here (keeps the actor awake)."""
        self._relays += 1
        try:
            yield
        finally:
            self._relays -= 1
            self.notice_store_change()

    def relay(self, envelope: EventEnvelope, *, backlog: bool = False,
              except_for: Subscription | None = None) -> bool:
        """Publish an event of another process's turn, unless it is old news or a turn of ours runs.

        ``backlog``: the other process published it before we followed its turn. Readers here
        joined mid-turn and were not owed it, so it is queued for them like a replay, never
        counted as lost (see :meth:`EventBus.publish_envelope`). ``except_for``: a subscriber
        not offered it (a turn's own stream, which starts with that turn).

        Returns False for an event that does not follow this session's numbering (another
        session's, or a seq far past the last one): the link that sent it is dropped, so a
        forged push cannot move the session's seq counter. A short jump (events this process
        never saw) reaches subscribers behind a ``stream_truncated`` marker counting them.
        """
        bus = self._bus
        if bus is None or self._retired or (self._running is not None and self._running.numbering):
            return True
        if envelope.source.session_id != self.session_id or envelope.seq > bus.last_seq + MAX_RELAY_SEQ_JUMP:
            log.warning("dropped a relayed event of session %s with seq %d (session %s, last seq here %d): "
                        "it does not follow the session's numbering", self.session_id, envelope.seq,
                        envelope.source.session_id, bus.last_seq)
            return False
        if envelope.seq <= bus.last_seq:
            return True  # old news: this process published it already
        if envelope.seq > bus.last_seq + 1:
            bus.publish_missing(envelope.seq - bus.last_seq - 1, except_for=except_for)
        bus.publish_envelope(envelope, replay=backlog, except_for=except_for)
        return True

    def notice_archived_elsewhere(self) -> None:
        """Another process archived the session: end its streams here, as a local archive does."""
        if self._running is None and self._relays == 0:
            self._archived = True
            self.retire(SessionNotFound(self.session_id))

    async def _let_relays_finish(self) -> None:
        """Another process's turn ended just before ours began: let its last relayed events
        (its terminal event, usually) reach subscribers before ours start."""
        with trio.move_on_after(RELAY_DRAIN_SECS):
            while self._relays:
                await trio.sleep(0.005)

    async def _interrupt_elsewhere(self, message: Interrupt) -> None:
        """Interrupt a turn another process runs on this session, and answer once it has ended.

        The owner is asked through the coordinator (it answers after committing).
        If it can't be reached, a dead owner's run is closed here; a live one is
        flagged in the store, which the owner reads when it renews its lease, and
        closed here once the lease runs out.
        """
        try:
            run, answer = await self._stop_foreign(None)
        except MeerkatError as exc:
            message.reply.fail(exc)
            return
        if run is None:
            message.reply.send(InterruptResult(session_id=self.session_id, interrupted=False))
            return
        message.reply.send(InterruptResult(session_id=self.session_id, interrupted=answer, run_id=run.run_id))

    async def _stop_foreign(self, expected_run_id: str | None) -> tuple[RunRecord | None, bool]:
        """Stop the run another process runs on this session (only if it is ``expected_run_id``, when given).

        Returns the session's active run (None when there is none) and whether it was stopped.
        """
        sup = self._supervisor
        record = await sup.store_call(sup.store.get_session, self.session_id)
        if record is None:
            raise SessionNotFound(self.session_id)
        run = None if record.active_run_id is None else await sup.store_call(sup.store.get_run,
                                                                              record.active_run_id)
        if run is None or run.status != "running" or sup.holds(self.session_id, run.run_id):
            return None, False
        if expected_run_id is not None and run.run_id != expected_run_id:
            return run, False
        observability.cross_process_interrupt("sent")
        answer = await sup.coordinator.interrupt(run, sup.options.lease_ttl)
        if answer is None:
            answer = await self._interrupt_unreachable(run)
        self.notice_store_change()
        return run, answer

    async def _interrupt_unreachable(self, run: RunRecord) -> bool:
        sup = self._supervisor
        if await sup.close_if_stale(self.session_id, run.run_id):
            return True
        if not await sup.store_call(sup.store.request_interrupt, self.session_id, run.run_id):
            return False  # it ended meanwhile
        deadline = trio.current_time() + sup.options.lease_ttl + 2 * sup.options.lease_renew_interval
        while trio.current_time() < deadline:
            await trio.sleep(0.05)
            current = await sup.store_call(sup.store.get_run, run.run_id)
            if current is None or current.status != "running":
                return True
            if await sup.close_if_stale(self.session_id, run.run_id):
                return True
        return False
