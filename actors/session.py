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

import dataclasses

import logging
from contextlib import aclosing, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

import msgspec
import trio

from meerkat import observability
from meerkat.agent import RunFailure, RunSettings, RunState, run_loop
from meerkat.errors import (
    BudgetExhausted,
    InternalError,
    InvalidParams,
    LeaseLost,
    MeerkatError,
    RequestCancelled,
    SessionBusy,
    SessionNotFound,
    StoreError,
)
from meerkat.events import (
    TERMINAL_EVENT_TYPES,
    AgentEvent,
    ContentInput,
    EventEnvelope,
    ErrorReport,
    RunCompleted,
    RunFailed,
    RunIdentity,
    RunStarted,
    make_envelope,
)
from meerkat.ids import new_uuid7
from meerkat.config.durations import parse_duration
from meerkat.providers import RetryPolicy, effective_provider_params, resolve_model, validate_provider_params
from meerkat.providers.wire_cache import WireCache
from meerkat.store import RunCommit, RunRecord, RunStatus, SessionRecord
from meerkat.store.eventlog import DEFAULT_EVENT_RETENTION, InputRecord
from meerkat.usage import Usage
from meerkat.transcript import BlockAssistantMessage, Message, SystemMessage, UserMessage, now_ms, now_rfc3339
from meerkat.validation import validate_prompt
from meerkat.views import InterruptResult, RunResult, SessionView, session_ref

from .bus import EventBus, Subscription
from .live import follow_run, interrupt_run
from .mailbox import Mailbox
from .messages import (
    Archive,
    InjectContext,
    Interrupt,
    QueueExternalEvent,
    Read,
    SessionMessage,
    StartTurn,
    StopRun,
    Subscribe,
    TurnRequest,
)
from .session_inputs import SessionInputs, stop_receipt

if TYPE_CHECKING:
    from .realm import RealmSupervisor

__all__ = ["SessionActor", "SessionActorStatistics", "is_cancellation"]

log = logging.getLogger("rkat.session")

#: Furthest a relayed event's seq may run ahead of this process's last one. Legitimate
#: jumps are the events of turns this process has not seen yet (thousands at most);
#: a forged push naming seq 10**15 would otherwise become the session's counter.
MAX_RELAY_SEQ_JUMP = 1_000_000
#: Longest a turn that just took the lease waits for the previous turn's relayed events.
RELAY_DRAIN_SECS = 1.0


def is_cancellation(exc: BaseException) -> bool:
    """True for trio.Cancelled, alone or as the only kind inside an exception group."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.split(trio.Cancelled)[1]
        return rest is None
    return False


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


@dataclass
class _RunningTurn:
    run_id: str
    message: StartTurn
    settings: RunSettings
    user_row: UserMessage
    subscription: Subscription | None
    cancel_scope: trio.CancelScope = field(default_factory=trio.CancelScope)
    interrupt_replies: list[Any] = field(default_factory=list)
    start_usage: Usage = Usage()
    #: True once the run is recorded in the store (and holds the session's lease).
    began: bool = False
    #: True once this turn numbers the session's events (relayed ones are then old news).
    numbering: bool = False
    #: True once its commit is on its way: the store, not a lease renewal, then says whether it holds.
    committing: bool = False
    #: What watches this turn for metrics and traces (None when nothing does).
    probe: observability.TurnProbe | None = None
    #: The run's progress (set once it starts): injected context reaches it through ``state.context``.
    state: RunState | None = None
    #: Every event the run published, in order: written to the event log with its commit.
    events: list[EventEnvelope] = field(default_factory=list)
    #: The queued inputs (external events) this run consumes.
    inputs: list[InputRecord] = field(default_factory=list)
    #: turn/stop_run callers waiting for the run to end, and the reason they gave.
    stop_replies: list[Any] = field(default_factory=list)
    stop_reason: str | None = None


class SessionActor(SessionInputs):
    """See the module docstring. Created and supervised by :class:`RealmSupervisor`."""

    def __init__(self, supervisor: "RealmSupervisor", session_id: str, record: SessionRecord | None = None,
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
        self._catch_up(last_committed_seq)
        self._relays += 1
        self._nursery.start_soon(self._mirror, run)

    async def _mirror(self, run: RunRecord) -> None:
        assert self._bus is not None
        try:
            async with aclosing(follow_run(run, self._bus.last_seq)) as events:
                async for envelope in events:
                    if not self.relay(envelope):
                        break
                    if envelope.type in TERMINAL_EVENT_TYPES:
                        break
        except Exception:  # losing the relay must not take the session's actor down
            log.exception("relay of run %s into session %s failed", run.run_id, self.session_id)
        finally:
            self._relays -= 1
        self.notice_store_change()

    @contextmanager
    def relaying(self) -> Iterator[None]:
        """While another process pushes a turn's events here (keeps the actor awake)."""
        self._relays += 1
        try:
            yield
        finally:
            self._relays -= 1
            self.notice_store_change()

    def relay(self, envelope: EventEnvelope) -> bool:
        """Publish an event of another process's turn, unless it is old news or a turn of ours runs.

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
            bus.publish_missing(envelope.seq - bus.last_seq - 1)
        bus.publish_envelope(envelope)
        return True

    def notice_archived_elsewhere(self) -> None:
        """Another process archived the session: end its streams here, as a local archive does."""
        if self._running is None and self._relays == 0:
            self._archived = True
            self.retire(SessionNotFound(self.session_id))

    def notice_history_change(self, record: SessionRecord) -> None:
        """This process rewrote the session's transcript: take the new record, reload rows at the next turn."""
        if self._running is None:
            self._history = None
        self._adopt(record)

    def notice_store_change(self) -> None:
        """Another process changed the session: reload its record (when no turn of ours runs)."""
        if self._nursery is not None and not self._retired:
            self._nursery.start_soon(self._reload_record)

    async def _reload_record(self) -> None:
        sup = self._supervisor
        try:
            record = await sup.store_call(sup.store.get_session, self.session_id)
        except MeerkatError as exc:
            log.warning("could not reload session %s: %s", self.session_id, exc)
            return
        if record is not None:
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

    async def _let_relays_finish(self) -> None:
        """Another process's turn ended just before ours began: let its last relayed events
        (its terminal event, usually) reach subscribers before ours start."""
        with trio.move_on_after(RELAY_DRAIN_SECS):
            while self._relays:
                await trio.sleep(0.005)

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
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            await self._serve()
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
        self._supervisor._forget(self)
        observability.actor_stopped(self.session_id, hibernated=error is None)
        for message in self.mailbox.close():
            _fail(message, error or InternalError(f"session actor {self.session_id} stopped"))
        if self._bus is not None:
            self._bus.close()

    def crash(self, exc: BaseException) -> None:
        """Called by the supervisor when the actor itself failed: fail everything pending."""
        error = InternalError(f"session actor {self.session_id} crashed: {exc!r}")
        if self._current is not None:
            _fail(self._current, error)
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
            self._supervisor.note_reader(self.session_id)
            # Answer once other processes can know: a turn begun anywhere after that reaches this subscriber.
            self._nursery.start_soon(self._announce_reader, message, subscription)
        else:
            message.reply.send(subscription)

    async def _announce_reader(self, message: Subscribe, subscription: Subscription) -> None:
        sup = self._supervisor
        try:
            await sup.publish_followed()
        except Exception:  # the subscription still works for this process's own turns
            log.exception("could not announce a follower of session %s", self.session_id)
        message.reply.send(subscription)
        sup.poke_foreign_watch()  # a turn may already be running elsewhere

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

    async def _interrupt_elsewhere(self, message: Interrupt) -> None:
        """Interrupt a turn another process runs on this session, and answer once it has ended.

        The owner is asked over its live link (it answers after committing). If
        the link can't be reached, a dead owner's run is closed here; a live one
        is flagged in the store, which the owner reads when it renews its lease,
        and closed here once the lease runs out.
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
        # A run on our own link that no turn here holds was left by a failed commit: no one
        # can stop it over the link, it is closed once its lease runs out.
        orphan = run.live_endpoint is not None and run.live_endpoint == sup.live.endpoint
        observability.cross_process_interrupt("sent")
        answer = None if orphan else await interrupt_run(run, timeout=sup.options.lease_ttl)
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

    def _start_turn(self, message: StartTurn, inputs: list[InputRecord] | None = None) -> None:
        if self._archived:
            _fail(message, SessionNotFound(self.session_id))
            return
        if self._running is not None:
            _fail(message, SessionBusy(self.session_id, self._running.run_id))
            return
        try:
            settings = self._settings_for(message.request)
            prompt = validate_prompt(message.request.prompt)
        except MeerkatError as exc:
            _fail(message, exc)
            return
        assert self._bus is not None and self._nursery is not None
        run_id = new_uuid7()
        subscription = self._bus.subscribe(capacity=self._supervisor.options.turn_stream_capacity,
                                           until_terminal=True) if message.stream else None
        user_row = UserMessage(content=prompt, created_at=now_rfc3339(), run_id=run_id)
        self._running = _RunningTurn(run_id, message, settings, user_row, subscription, inputs=inputs or [])
        self._nursery.start_soon(self._turn, self._running)

    def _settings_for(self, request: TurnRequest) -> RunSettings:
        assert self._record is not None
        config = self._supervisor.current_config()
        record = self._record
        if request.model is not None or request.provider is not None:
            model, provider = resolve_model(request.model, request.provider, config)
        else:
            model, provider = record.model, record.provider
        if request.system_prompt is not None and not isinstance(request.system_prompt, str):
            raise InvalidParams("system_prompt must be a string")
        params = record.provider_params if request.provider_params is None else request.provider_params
        params = effective_provider_params(provider, model, validate_provider_params(provider, params, model), config)
        max_tokens = (request.max_tokens if request.max_tokens is not None
                      else record.max_tokens or config.agent.max_tokens_per_turn)
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens <= 0:
            raise InvalidParams("max_tokens must be a positive integer")
        budget = record.budget_max_tokens
        if budget is None:
            budget = config.budget.max_tokens or config.limits.budget
        return RunSettings(
            model=model,
            provider=provider,
            system_prompt=request.system_prompt if request.system_prompt is not None else record.system_prompt,
            max_tokens=max_tokens,
            provider_params=params,
            max_turns=config.agent.max_turns,
            budget_max_tokens=budget,
            tool_timeout_secs=config.tools.default_timeout_secs,
            max_concurrent_tools=config.tools.max_concurrent,
            retry=RetryPolicy.from_config(config.retry),
            max_turn_duration_s=(parse_duration(config.limits.max_turn_duration, "limits.max_turn_duration")
                                 if config.limits.max_turn_duration else None),
        )

    async def _turn(self, turn: _RunningTurn) -> None:
        sup = self._supervisor
        assert self._record is not None and self._bus is not None
        record = self._record
        settings = turn.settings
        # Log lines of this turn's task (provider, tools, commit) name it; see meerkat.observability.logs.
        observability.set_log_context(session_id=self.session_id, run_id=turn.run_id, realm_id=sup.realm_id)
        try:
            if settings.budget_max_tokens is not None and record.usage.total_tokens >= settings.budget_max_tokens:
                raise BudgetExhausted(
                    f"token budget exhausted: {record.usage.total_tokens} of {settings.budget_max_tokens} used",
                    details={"used": record.usage.total_tokens, "limit": settings.budget_max_tokens})
            # Raises PROVIDER_ERROR (naming the variables to set) when the provider has no key.
            provider = sup.providers.get(settings.provider, sup.current_config())
            endpoint, token = await sup.live_link()
            now = now_ms()
            fresh = await sup.begin_run(RunRecord(
                run_id=turn.run_id, session_id=self.session_id, status="running", started_at_ms=now,
                owner=sup.owner, prompt=turn.user_row.content, seq_start=self._bus.last_seq,
                lease_expires_at_ms=now + int(sup.options.lease_ttl * 1000), live_endpoint=endpoint,
                live_token=token))
            turn.began = True
            if (self._history is None or fresh.message_count != record.message_count
                    or fresh.transcript_revision != record.transcript_revision):
                # First turn of this actor, or another process committed runs since
                # we last looked: the model must see the transcript as stored.
                rows = await sup.store_call(sup.store.read_messages, self.session_id)
                self._history = [r for r in rows if not isinstance(r, SystemMessage)]
                self._wire.clear()
                self._context = [r.content for r in rows if isinstance(r, SystemMessage)
                                 and (r.source is not None or r.instruction_activation is not None)]
            await self._let_relays_finish()
            self._catch_up(fresh.last_seq, except_for=turn.subscription)
            turn.numbering = True
            if turn.message.request.system_prompt is None and fresh.system_prompt != settings.system_prompt:
                # The prompt was updated (maybe by another process) since the turn was accepted.
                settings = turn.settings = dataclasses.replace(settings, system_prompt=fresh.system_prompt)
            self._record = record = fresh
            for watcher in await sup.watchers_of(self.session_id):  # processes that follow this session
                sup.start_push(watcher, self.session_id, self._bus.subscribe(
                    capacity=sup.options.turn_stream_capacity, until_terminal=True, relay=True))
        except BaseException as exc:
            if turn.began:  # release the run so the session is not left busy
                with trio.CancelScope(shield=True):
                    await self._release(turn, record)
            self._running = None
            if turn.subscription is not None:
                turn.subscription.close()
            error = exc if isinstance(exc, MeerkatError) else InternalError(f"could not start the turn: {exc!r}")
            _fail(turn.message, error)
            for reply in turn.interrupt_replies:
                reply.send(InterruptResult(session_id=self.session_id, interrupted=False))
            if not isinstance(exc, Exception):
                raise
            return
        turn.start_usage = record.usage
        turn.message.accepted.send((turn.run_id, turn.subscription))

        state = RunState(session_id=self.session_id, run_id=turn.run_id, history=[*self._history, turn.user_row],
                         new_rows=[], usage=record.usage, last_assistant_text=record.last_assistant_text,
                         wire_cache=self._wire,
                         context=[*self._context, *turn.message.request.additional_instructions])
        turn.state = state
        bus, logged = self._bus, turn.events

        def publish(payload: AgentEvent) -> EventEnvelope:
            envelope = bus.publish(payload)
            logged.append(envelope)  # for the event log, written with the run's commit
            return envelope

        if observability.enabled():
            turn.probe = observability.turn_probe(observability.TurnInfo(
                realm_id=sup.realm_id, session_id=self.session_id, run_id=turn.run_id, provider=settings.provider,
                model=settings.model, prompt=turn.user_row.content, trace_context=turn.message.trace_context))
        emit = observability.observe_events(publish, turn.probe)
        publish(RunStarted(session_id=self.session_id, input=ContentInput(turn.user_row.content),
                           identity=RunIdentity(run_id=turn.run_id)))
        outcome: BaseException | None = None
        pending: BaseException | None = None
        try:
            with turn.cancel_scope:
                await run_loop(state, settings, provider, sup.tools, emit)
        except RunFailure as failure:
            outcome = failure
        except BaseException as exc:
            if is_cancellation(exc) or isinstance(exc, KeyboardInterrupt):
                outcome = RequestCancelled("request cancelled")
                pending = exc
            elif isinstance(exc, Exception):
                log.exception("turn %s of session %s crashed", turn.run_id, self.session_id)
                outcome = exc
            else:
                raise
        if outcome is None and turn.cancel_scope.cancelled_caught:
            outcome = RequestCancelled("request cancelled")
        with trio.CancelScope(shield=True):
            await self._finish(turn, state, outcome)
        if pending is not None:
            raise pending

    async def _release(self, turn: _RunningTurn, record: SessionRecord) -> None:
        """Close a run that began in the store but never started (nothing to keep)."""
        sup = self._supervisor
        try:
            self._record = await sup.store_call(sup.store.commit_run, RunCommit(
                run_id=turn.run_id, session_id=self.session_id, status="failed", messages=[], usage=record.usage,
                last_assistant_text=None, last_seq=record.last_seq, finished_at_ms=now_ms(),
                model=record.model, provider=record.provider, error="the turn could not start"))
        except Exception:
            log.exception("could not release run %s", turn.run_id)

    async def _finish(self, turn: _RunningTurn, state: RunState, outcome: BaseException | None) -> None:
        sup = self._supervisor
        assert self._bus is not None and self._record is not None
        rows: list[Message] = [turn.user_row, *state.new_rows]
        status: RunStatus = ("completed" if outcome is None
                             else "interrupted" if isinstance(outcome, RequestCancelled) else "failed")
        if outcome is not None:
            # The vendor charges an interrupted call's input (and what it streamed): count what it
            # reported so far (Anthropic reports the input as the stream starts).
            in_flight = state.partial_usage
            if in_flight is not None:
                state.usage = state.usage.add(in_flight)
            # An interrupt or a failure mid-stream keeps what the user already saw.
            partial = state.partial_row("cancelled")
            if partial is not None:
                rows.append(partial)
                state.last_assistant_text = "".join(state.partial_text) or state.last_assistant_text
                # The vendor reports usage only when a reply ends; an interrupted one would count
                # 0 output tokens for text the user saw. Estimate it (about 4 characters a token).
                shown = sum(len(part) for part in (*state.partial_text, *state.partial_reasoning))
                reported = in_flight.output_tokens if in_flight is not None else 0
                state.usage = msgspec.structs.replace(
                    state.usage, output_tokens=state.usage.output_tokens
                    + max(0, -(-shown // _CHARS_PER_TOKEN) - reported))
            elif status == "interrupted":
                rows.append(BlockAssistantMessage(blocks=[], stop_reason="cancelled", created_at=now_rfc3339(),
                                                  run_id=turn.run_id))
        terminal_seq = self._bus.last_seq + 1
        finished = now_ms()
        terminal = make_envelope(self.session_id, terminal_seq, _terminal_payload(self.session_id, turn, state,
                                                                                  outcome))
        consumed = [msgspec.structs.replace(item, state="abandoned" if status == "interrupted" else "consumed",
                                            run_id=turn.run_id, updated_at_ms=finished, boundary_seq=terminal_seq)
                    for item in turn.inputs]
        commit = RunCommit(
            run_id=turn.run_id, session_id=self.session_id, status=status, messages=rows, usage=state.usage,
            last_assistant_text=state.last_assistant_text, last_seq=terminal_seq, finished_at_ms=finished,
            model=turn.settings.model, provider=turn.settings.provider,
            error=None if outcome is None else str(outcome), events=[*turn.events, terminal], inputs=consumed,
            event_retention=sup.current_config().limits.event_retention or DEFAULT_EVENT_RETENTION)
        turn.committing = True
        try:
            self._record = await sup.store_call(sup.store.commit_run, commit)
            if self._history is not None:  # None: context was injected meanwhile, the next turn re-reads
                self._history.extend(rows)
        except BaseException as exc:  # the store failed: the run fails, the actor reloads next time
            if isinstance(exc, LeaseLost):  # another process closed the run meanwhile: expected, one line
                log.warning("commit of run %s of session %s refused: %s", turn.run_id, self.session_id,
                            exc.message)
            elif isinstance(exc, MeerkatError):
                log.error("commit of run %s of session %s failed: %s", turn.run_id, self.session_id, exc.message)
            else:
                log.exception("commit of run %s failed", turn.run_id)
            self._history = None
            self._wire.clear()
            if outcome is None or isinstance(outcome, RequestCancelled):
                outcome = exc if isinstance(exc, MeerkatError) else InternalError(f"commit failed: {exc!r}")
                terminal = make_envelope(self.session_id, terminal_seq,
                                         _terminal_payload(self.session_id, turn, state, outcome))
        self._bus.publish_envelope(terminal)
        run_usage = state.usage.minus(turn.start_usage)
        if outcome is None:
            self._completed += 1
            result = RunResult(session_id=self.session_id, run_id=turn.run_id, text=state.final_text,
                               turns=state.turns, tool_calls=state.tool_calls, usage=state.usage,
                               run_usage=run_usage, terminal_cause_kind=state.terminal_cause_kind,
                               session_ref=session_ref(sup.realm_id, self.session_id),
                               stop_reason=_last_stop_reason(state.new_rows), model=turn.settings.model)
            turn.message.done.send(result)
            if turn.probe is not None:
                turn.probe.finish(status, run_usage, None, state.terminal_cause_kind)
        else:
            if isinstance(outcome, RequestCancelled):
                self._interrupted += 1
            else:
                self._failed += 1
            report, error, cause = _failure_report(outcome)
            turn.message.done.fail(error)
            if turn.probe is not None:
                turn.probe.finish(status, run_usage, report, cause)
        self._running = None
        for reply in turn.interrupt_replies:
            reply.send(InterruptResult(session_id=self.session_id, interrupted=True, run_id=turn.run_id))
        contributors = [{"input_id": item.input_id, "completion": "cancelled"} for item in turn.inputs]
        for reply in turn.stop_replies:
            reply.send(stop_receipt("stopped", turn.run_id, contributors=contributors))
        if self._archived:
            self.retire(SessionNotFound(self.session_id))
        else:
            self._drain_inbox_soon()

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


def _fail(message: SessionMessage, error: BaseException) -> None:
    if isinstance(message, StartTurn):
        message.accepted.fail(error)
        message.done.fail(error)
    else:
        message.reply.fail(error)


def _terminal_payload(session_id: str, turn: _RunningTurn, state: RunState,
                      outcome: BaseException | None) -> AgentEvent:
    """The run's terminal event: ``run_completed``, or ``run_failed`` with its report."""
    identity = RunIdentity(run_id=turn.run_id)
    if outcome is None:
        return RunCompleted(session_id=session_id, result=state.final_text, usage=state.usage,
                            extraction_required=False, terminal_cause_kind=state.terminal_cause_kind,
                            identity=identity)
    report, _, cause = _failure_report(outcome)
    return RunFailed(session_id=session_id, error_report=report, terminal_cause_kind=cause, identity=identity)


def _failure_report(outcome: BaseException) -> tuple[ErrorReport, MeerkatError, str | None]:
    if isinstance(outcome, RunFailure):
        return outcome.report, outcome.error, outcome.terminal_cause_kind
    if isinstance(outcome, RequestCancelled):
        return ErrorReport(error_class="cancelled", message="Run was cancelled"), outcome, None
    if isinstance(outcome, MeerkatError):
        error_class = "store" if isinstance(outcome, StoreError) else "internal"
        return ErrorReport(error_class=error_class, message=outcome.message), outcome, "fatal_failure"
    return (ErrorReport(error_class="internal", message=f"internal error: {outcome!r}"),
            InternalError(f"internal error: {outcome!r}"), "fatal_failure")


#: Characters per token when an interrupted reply's output must be estimated.
_CHARS_PER_TOKEN = 4


def _last_stop_reason(rows: list[Message]) -> str | None:
    """Why the run's last model call stopped, from its last assistant row."""
    for row in reversed(rows):
        if isinstance(row, BlockAssistantMessage):
            return row.stop_reason
    return None
