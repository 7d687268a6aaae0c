"""How a session actor runs a turn: admission, settings, the run loop, the commit.

A mixin of :class:`actors.session.SessionActor`. A turn is accepted (or refused
busy) at once, runs in a child task of the actor under its own cancel scope, and
ends in exactly one terminal event published after its commit (see
docs/architecture.md, "A run").
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import msgspec
import trio

from meerkat import observability
from meerkat.agent import RunFailure, RunSettings, RunState, run_loop
from meerkat.config.durations import parse_duration
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
from meerkat.providers import RetryPolicy, effective_provider_params, resolve_model, validate_provider_params
from meerkat.providers.wire_cache import WireCache
from meerkat.store import RunCommit, RunRecord, RunStatus, SessionRecord
from meerkat.store.eventlog import DEFAULT_EVENT_RETENTION, InputRecord
from meerkat.transcript import BlockAssistantMessage, Message, SystemMessage, UserMessage, now_ms, now_rfc3339
from meerkat.usage import Usage
from meerkat.validation import MAX_OUTPUT_TOKENS, validate_optional_positive_int, validate_prompt
from meerkat.views import InterruptResult, RunResult, session_ref

from .bus import EventBus, Subscription
from .messages import SessionMessage, StartTurn, TurnRequest
from .session_host import SessionHost
from .session_inputs import stop_receipt

__all__ = ["TurnRunner", "fail_message", "is_cancellation"]

log = logging.getLogger("rkat.session")


def is_cancellation(exc: BaseException) -> bool:
    """True for trio.Cancelled, alone or as the only kind inside an exception group."""
    if isinstance(exc, trio.Cancelled):
        return True
    if isinstance(exc, BaseExceptionGroup):
        rest = exc.split(trio.Cancelled)[1]
        return rest is None
    return False



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



class TurnRunner:
    """Mixin: a session actor's turns."""

    # State the actor provides (see SessionActor.__init__).
    session_id: str
    _supervisor: SessionHost
    _record: SessionRecord | None
    _history: list[Message] | None
    _wire: WireCache
    _context: list[str]
    _bus: EventBus | None
    _running: "_RunningTurn | None"
    _archived: bool
    _nursery: trio.Nursery | None
    _completed: int
    _failed: int
    _interrupted: int

    def retire(self, error: MeerkatError | None) -> None:
        raise NotImplementedError  # provided by SessionActor

    def _catch_up(self, store_last_seq: int, *, except_for: Subscription | None = None) -> None:
        raise NotImplementedError  # provided by SessionActor

    # Provided by the sibling mixins: declared for the type checker only, since a stub that
    # exists at run time would shadow them in the MRO.
    if TYPE_CHECKING:
        async def _let_relays_finish(self) -> None: ...  # ForeignRuns

        async def replay_committed(self, upto_seq: int, *, except_for: Subscription | None = None) -> None: ...

        def _drain_inbox_soon(self) -> None: ...  # SessionInputs

    def _start_turn(self, message: StartTurn, inputs: list[InputRecord] | None = None) -> None:
        if self._archived:
            fail_message(message, SessionNotFound(self.session_id))
            return
        if self._running is not None:
            fail_message(message, SessionBusy(self.session_id, self._running.run_id))
            return
        try:
            settings = self._settings_for(message.request)
            prompt = validate_prompt(message.request.prompt)
        except MeerkatError as exc:
            fail_message(message, exc)
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
        validate_optional_positive_int(max_tokens, "max_tokens", MAX_OUTPUT_TOKENS)
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
            provider = await sup.providers.aget(settings.provider, sup.current_config())
            endpoint, token = await sup.coordinator.run_link()
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
            # Another process's turns that committed before their events reached readers here
            # (a ping not taken yet): read back from the log, not a stream_truncated marker.
            await self.replay_committed(fresh.last_seq, except_for=turn.subscription)
            self._catch_up(fresh.last_seq, except_for=turn.subscription)
            turn.numbering = True
            if turn.message.request.system_prompt is None and fresh.system_prompt != settings.system_prompt:
                # The prompt was updated (maybe by another process) since the turn was accepted.
                settings = turn.settings = dataclasses.replace(settings, system_prompt=fresh.system_prompt)
            self._record = record = fresh
            bus = self._bus  # processes that follow this session get its events as we publish them
            await sup.coordinator.broadcast_turn(self.session_id, turn.run_id, lambda: bus.subscribe(
                capacity=sup.options.turn_stream_capacity, until_terminal=True, relay=True))
        except BaseException as exc:
            if turn.began:  # release the run so the session is not left busy
                with trio.CancelScope(shield=True):
                    await self._release(turn, record)
            self._running = None
            if turn.subscription is not None:
                turn.subscription.close()
            error = exc if isinstance(exc, MeerkatError) else InternalError(f"could not start the turn: {exc!r}")
            fail_message(turn.message, error)
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
            if not isinstance(exc, LeaseLost):  # still "running" in the store, with nobody renewing it
                sup.close_after_failed_commit(self.session_id, turn.run_id,
                                              exc.message if isinstance(exc, MeerkatError) else repr(exc))
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


def fail_message(message: SessionMessage, error: BaseException) -> None:
    """Fail a message's replies (both of a StartTurn's)."""
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
