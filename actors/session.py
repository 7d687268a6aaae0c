"""SessionActor: one live session, its mailbox, its event bus and at most one turn.

The actor keeps reading its mailbox while a turn runs, so interrupts, reads and
subscriptions are served mid-turn. A turn runs in a child task under its own
cancel scope; an interrupt cancels that scope, and the turn then commits what
the user already saw (their message and the partial answer, stop reason
``cancelled``) and ends with ``run_failed`` of class ``cancelled``: the
acknowledgement. Every run ends in exactly one terminal event, published only
after its commit. An idle actor with no subscribers hibernates: it leaves the
supervisor's table and costs nothing but its row in the store.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import trio

from meerkat import observability
from meerkat.errors import InternalError, MeerkatError, SessionNotFound
from meerkat.providers.wire_cache import WireCache
from meerkat.store import SessionRecord
from meerkat.transcript import Message
from meerkat.views import InterruptResult, SessionView

from .bus import EventBus, Subscription
from .mailbox import Mailbox
from .messages import Archive, InjectContext, Interrupt, QueueExternalEvent, Read, SessionMessage, StartTurn, StopRun, Subscribe
from .session_foreign import ForeignRuns
from .session_host import SessionHost
from .session_inputs import SessionInputs
from .session_turn import TurnRunner, _RunningTurn, fail_message, is_cancellation

__all__ = ["SessionActor", "SessionActorStatistics", "is_cancellation"]

log = logging.getLogger("rkat.session")


@dataclass(frozen=True, slots=True)
class SessionActorStatistics:
    """One actor: mailbox, bus, running turn and lifetime counters."""

    session_id: str
    running_run_id: str | None
    mailbox_queued: int
    mailbox_handled: int
    bus_last_seq: int
    subscribers: int
    runs_completed: int
    runs_failed: int
    runs_interrupted: int


class SessionActor(TurnRunner, ForeignRuns, SessionInputs):
    """See the module docstring. Created and supervised by the realm supervisor (a :class:`SessionHost`)."""

    def __init__(self, supervisor: SessionHost, session_id: str, record: SessionRecord | None = None,
                 history: list[Message] | None = None) -> None:
        self.session_id = session_id
        self.mailbox: Mailbox[SessionMessage] = Mailbox(supervisor.options.mailbox_capacity)
        self._supervisor = supervisor
        self._record = record
        #: Committed rows the model sees (no system rows); None until first needed.
        self._history: list[Message] | None = history
        #: The wire form of the rows already sent to the model, per vendor format.
        self._wire = WireCache()
        #: The injected context rows' texts (they reach the model after the system prompt).
        self._context: list[str] = []
        self._bus: EventBus | None = None
        self._running: _RunningTurn | None = None
        self._archived = False
        self._retired = False
        self._nursery: trio.Nursery | None = None
        self._completed = self._failed = self._interrupted = 0
        #: The message being dispatched, failed too if dispatching crashes the actor.
        self._current: SessionMessage | None = None
        #: Streams of another process's turn being copied into this bus (pulled or pushed).
        self._relays = 0
        #: The store's change stamp taken just before ``_record`` was last read from it.
        self._record_stamp: tuple[int, ...] | None = None

    @property
    def running_run_id(self) -> str | None:
        """The id of the turn running now, if any."""
        return self._running.run_id if self._running else None

    @property
    def last_seq(self) -> int:
        """The seq of the last event published here (0 before the actor has loaded)."""
        return self._bus.last_seq if self._bus is not None else 0

    @property
    def leased_run_id(self) -> str | None:
        """The id of this process's turn that holds the session's lease in the store, if any."""
        turn = self._running
        return turn.run_id if turn is not None and turn.began else None

    def stop_run(self, run_id: str, *, lease_lost: bool) -> None:
        """Interrupt the running turn ``run_id``: another process asked, or the lease is gone."""
        turn = self._running
        if turn is not None and turn.run_id == run_id:
            if lease_lost and turn.committing:
                return  # the renewal raced our own commit (the run just stopped "running"): not a loss
            if lease_lost:
                log.warning("run %s of session %s lost its lease; stopping it", run_id, self.session_id)
            turn.cancel_scope.cancel()

    # -- other processes ------------------------------------------------------


    def notice_history_change(self, record: SessionRecord) -> None:
        """This process rewrote the session's transcript: take the new record, reload rows at the next turn."""
        if self._running is None:
            self._history = None
        self._adopt(record)

    def notice_store_change(self) -> None:
        """Another process changed the session: reload its record (when no turn of ours runs)."""
        if self._nursery is not None and not self._retired:
            try:
                self._nursery.start_soon(self._reload_record)
            except RuntimeError:
                # Closed, and run() not back yet to say so: a relay in the coordinator's nursery
                # ended as the actor stopped (nothing left here to reload for).
                pass

    async def _reload_record(self) -> None:
        sup = self._supervisor
        try:
            record = await sup.store_call(sup.store.get_session, self.session_id)
        except MeerkatError as exc:
            log.warning("could not reload session %s: %s", self.session_id, exc)
            return
        if record is None:
            return
        if self._running is None and self._relays == 0:
            # Turns another process committed since our last event: their events, not a marker.
            await self.replay_committed(record.last_seq)
        self._adopt(record)

    def _adopt(self, record: SessionRecord, stamp: tuple[int, ...] | None = None) -> None:
        """Take a record read from the store as this actor's view, unless a turn of ours owns it.

        ``stamp`` is the store's change stamp taken before the read: while the
        store still shows it, reads may answer from this record.
        """
        if self._running is None:
            self._record = record
            self._record_stamp = stamp
        # While another process's events are being relayed here, they bring the seq up
        # to date themselves (and the relay reloads the record when it ends).
        if self._relays == 0 and (self._running is None or not self._running.numbering):
            self._catch_up(record.last_seq)

    def _catch_up(self, store_last_seq: int, *, except_for: Subscription | None = None) -> None:
        """Number on from the store's last seq; subscribers learn of events they never got here."""
        bus = self._bus
        if bus is not None and store_last_seq > bus.last_seq:
            bus.publish_missing(store_last_seq - bus.last_seq, except_for=except_for)
            bus.last_seq = store_last_seq


    # -- lifecycle ----------------------------------------------------------

    async def run(self) -> None:
        """The actor's life: load, serve the mailbox, hibernate or retire."""
        sup = self._supervisor
        if self._record is None:
            try:
                self._record = await sup.store_call(sup.store.get_session, self.session_id)
            except MeerkatError as exc:
                self.retire(exc)
                return
            if self._record is None:
                self.retire(SessionNotFound(self.session_id))
                return
        self._bus = EventBus(self.session_id, last_seq=self._record.last_seq,
                             ring_size=sup.options.ring_size, subscriber_capacity=sup.options.subscriber_capacity)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await self._serve()
        finally:
            self._nursery = None  # closed: relays of other processes' turns must not start work here
        if not self._retired:
            self.retire(InternalError(f"session actor {self.session_id} stopped"))

    async def _serve(self) -> None:
        idle_timeout = self._supervisor.options.idle_timeout
        while not self._retired:
            message = None
            with trio.move_on_after(idle_timeout):
                try:
                    message = await self.mailbox.receive()
                except (trio.EndOfChannel, trio.ClosedResourceError):
                    return
            if message is None:
                if self._can_hibernate():
                    self.retire(None)
                    return
                continue
            self._current = message
            self._dispatch(message)
            self._current = None

    def _can_hibernate(self) -> bool:
        assert self._bus is not None
        return (self._running is None and self._relays == 0 and self._bus.subscriber_count == 0
                and self.mailbox.is_empty())

    def retire(self, error: MeerkatError | None) -> None:
        """Leave the supervisor's table, refuse new mail, fail what is queued, end streams."""
        if self._retired:
            return
        self._retired = True
        self._supervisor.forget(self)
        observability.actor_stopped(self.session_id, hibernated=error is None)
        for message in self.mailbox.close():
            fail_message(message, error or InternalError(f"session actor {self.session_id} stopped"))
        if self._bus is not None:
            self._bus.close()

    def crash(self, exc: BaseException) -> None:
        """Called by the supervisor when the actor itself failed: fail everything pending."""
        error = InternalError(f"session actor {self.session_id} crashed: {exc!r}")
        if self._current is not None:
            fail_message(self._current, error)
        if self._running is not None:
            self._running.message.accepted.fail(error)
            self._running.message.done.fail(error)
            for reply in self._running.interrupt_replies:
                reply.fail(error)
        self.retire(error)

    # -- dispatch -------------------------------------------------------------

    def _dispatch(self, message: SessionMessage) -> None:
        if isinstance(message, StartTurn):
            self._start_turn(message)
        elif isinstance(message, Interrupt):
            self._interrupt(message)
        elif isinstance(message, Read):
            self._read(message)
        elif isinstance(message, Subscribe):
            self._subscribe(message)
        elif isinstance(message, Archive):
            assert self._nursery is not None
            self._nursery.start_soon(self._archive, message)
        elif isinstance(message, InjectContext):
            self._inject(message)
        elif isinstance(message, QueueExternalEvent):
            self._queue_external(message)
        elif isinstance(message, StopRun):
            self._stop(message)
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown message {message!r}")

    def _read(self, message: Read) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        sup = self._supervisor
        assert self._record is not None
        if sup.shared:  # another process may have changed it since we looked
            stamp = sup.store.change_stamp(self.session_id)
            if stamp is None or stamp != self._record_stamp or self._running is not None:
                assert self._nursery is not None
                self._nursery.start_soon(self._read_fresh, message, stamp)
                return
        message.reply.send(SessionView.from_record(self._record,
                                                   running_run_id=self.running_run_id or self._record.active_run_id,
                                                   realm_id=sup.realm_id))

    async def _read_fresh(self, message: Read, stamp: tuple[int, ...] | None) -> None:
        sup = self._supervisor
        try:
            record = await sup.store_call(sup.store.get_session, self.session_id)
        except MeerkatError as exc:
            message.reply.fail(exc)
            return
        if record is None:  # archived by another process
            message.reply.fail(SessionNotFound(self.session_id))
            return
        self._adopt(record, stamp)
        message.reply.send(SessionView.from_record(record, running_run_id=self.running_run_id or record.active_run_id,
                                                   realm_id=sup.realm_id))

    def _subscribe(self, message: Subscribe) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        assert self._bus is not None and self._nursery is not None
        subscription = self._bus.subscribe(after_seq=message.after_seq)
        if self._supervisor.shared:
            # Answer once other processes can know: a turn begun anywhere after that reaches this subscriber.
            self._nursery.start_soon(self._announce_reader, message, subscription)
        else:
            message.reply.send(subscription)

    async def _announce_reader(self, message: Subscribe, subscription: Subscription) -> None:
        try:
            await self._supervisor.coordinator.reader_added(self.session_id)
        except Exception:  # the subscription still works for this process's own turns
            log.exception("could not announce a follower of session %s", self.session_id)
        message.reply.send(subscription)

    def follow(self, after_seq: int) -> Subscription | None:
        """For another process: this session's events after ``after_seq``, ending after a terminal event."""
        if self._bus is None or self._retired:
            return None
        return self._bus.subscribe(after_seq=after_seq, capacity=self._supervisor.options.turn_stream_capacity,
                                   until_terminal=True, relay=True)

    def _interrupt(self, message: Interrupt) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        turn = self._running
        if turn is None:
            if self._supervisor.shared:  # the turn may be running in another process
                assert self._nursery is not None
                self._nursery.start_soon(self._interrupt_elsewhere, message)
            else:
                message.reply.send(InterruptResult(session_id=self.session_id, interrupted=False))
            return
        turn.interrupt_replies.append(message.reply)
        turn.cancel_scope.cancel()


    async def _archive(self, message: Archive) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        sup = self._supervisor
        try:
            changed = await sup.store_call(sup.store.archive_session, self.session_id)
        except MeerkatError as exc:
            message.reply.fail(exc)
            return
        if not changed:
            message.reply.fail(SessionNotFound(self.session_id))
            self.retire(SessionNotFound(self.session_id))
            return
        self._archived = True
        message.reply.send(True)
        if self._running is None:
            self.retire(SessionNotFound(self.session_id))

    # -- turns ----------------------------------------------------------------


    def statistics(self) -> SessionActorStatistics:
        """A snapshot of this actor."""
        mailbox = self.mailbox.statistics()
        bus = self._bus.statistics() if self._bus else None
        return SessionActorStatistics(
            session_id=self.session_id,
            running_run_id=self.running_run_id,
            mailbox_queued=mailbox.queued,
            mailbox_handled=mailbox.handled,
            bus_last_seq=bus.last_seq if bus else 0,
            subscribers=bus.subscribers if bus else 0,
            runs_completed=self._completed,
            runs_failed=self._failed,
            runs_interrupted=self._interrupted,
        )

