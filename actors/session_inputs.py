"""What a session actor does with inputs other than a user's turn: injected context,
queued external events, and a stop aimed at one run.

A mixin of :class:`actors.session.SessionActor` (it uses the actor's state), kept
apart so the turn machinery stays readable.

* Injected context is a durable ``system`` row (with its ``source``) appended to
  the transcript at once, with the input record, in one store write. The model
  sees it from its next call on: a running turn of this process gets it before
  its next model call, any later turn reads it from the transcript.
* An external event is queued in the store (a bounded inbox: INBOX_FULL past the
  realm's ``limits.inbox_capacity``) and runs as a turn of its own when the
  session is free; that run's commit marks it consumed.
* ``stop_run`` stops a run only if it is the session's current one, in this
  process or another, and answers a typed receipt.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any, Awaitable, Callable

import msgspec
import trio

from meerkat.errors import MeerkatError, SessionNotFound
from meerkat.store import RunRecord
from meerkat.store.eventlog import DEFAULT_INBOX_CAPACITY, InputRecord
from meerkat.transcript import SystemMessage, rfc3339_from_ms

from .messages import InjectContext, QueueExternalEvent, StartTurn, StopRun, TurnRequest
from .session_host import SessionHost

__all__ = ["SessionInputs", "external_event_prompt", "stop_receipt"]

log = logging.getLogger("rkat.session")

#: How often a queued external event checks whether another process's turn on the session has ended.
_BUSY_RETRY_SECS = 0.25


def external_event_prompt(record: InputRecord) -> str | list[dict[str, Any]]:
    """The user content an external event's turn starts with: its type and JSON payload, then its blocks."""
    text = f"[external event: {record.event_type}]\n{json.dumps(record.payload, ensure_ascii=False, sort_keys=True)}"
    if not record.blocks:
        return text
    return [{"type": "text", "text": text}, *record.blocks]


def stop_receipt(outcome: str, run_id: str, **fields: Any) -> dict[str, Any]:
    """A ``turn/stop_run`` receipt: ``stopped`` (contributors), ``not_current`` (current_run_id), ``not_stoppable`` (state)."""
    return {"outcome": outcome, "run_id": run_id, **fields}


class SessionInputs:
    """Mixin: the input and stop handlers of a session actor."""

    # State the actor provides (see SessionActor.__init__).
    session_id: str
    _supervisor: SessionHost
    _archived: bool
    _retired: bool
    _nursery: "trio.Nursery | None"
    _history: Any
    _running: Any
    _bus: Any
    #: External events may wait in the store (set on admission, cleared when the inbox reads empty).
    _inbox_pending: bool = False
    _draining: bool = False

    # Provided by the sibling mixins (annotations only: a stub here could shadow them in the MRO).
    _start_turn: Callable[..., None]  # TurnRunner
    _stop_foreign: Callable[[str | None], Awaitable[tuple[RunRecord | None, bool]]]  # ForeignRuns

    async def _admit_input(self, record: InputRecord, row: SystemMessage | None) -> InputRecord | None:
        """Store an input under the realm's inbox capacity; the earlier record if its key was seen."""
        sup = self._supervisor
        capacity = sup.current_config().limits.inbox_capacity or DEFAULT_INBOX_CAPACITY
        try:
            return await sup.store_call(partial(sup.store.admit_input, record, row, inbox_capacity=capacity))
        except KeyError:
            raise SessionNotFound(self.session_id) from None

    # -- injected context ------------------------------------------------------

    def _inject(self, message: InjectContext) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        assert self._nursery is not None
        self._nursery.start_soon(self._apply_inject, message)

    async def _apply_inject(self, message: InjectContext) -> None:
        record = msgspec.structs.replace(message.record, boundary_seq=self._bus.last_seq if self._bus else None)
        row = SystemMessage(content=record.text or "", created_at=rfc3339_from_ms(record.created_at_ms),
                            source=record.source or "inject_context")
        try:
            existing = await self._admit_input(record, row)
        except MeerkatError as exc:
            message.reply.fail(exc)
            return
        if existing is None:
            # The next turn re-reads the transcript; a turn of ours running now gets it at its next call.
            self._history = None
            turn = self._running
            if turn is not None and turn.state is not None:
                turn.state.context.append(row.content)
        message.reply.send(existing)

    # -- external events -------------------------------------------------------

    def _queue_external(self, message: QueueExternalEvent) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        assert self._nursery is not None
        self._nursery.start_soon(self._admit_external, message)

    async def _admit_external(self, message: QueueExternalEvent) -> None:
        try:
            existing = await self._admit_input(message.record, None)
        except MeerkatError as exc:
            message.reply.fail(exc)
            return
        message.reply.send(existing)
        if existing is None:
            self._inbox_pending = True
            self._drain_inbox_soon()

    def _drain_inbox_soon(self) -> None:
        """Start the next queued external event as a turn, if there may be one and the session is free."""
        if (self._inbox_pending and not self._draining and self._running is None and not self._archived
                and not self._retired and self._nursery is not None):
            self._draining = True
            self._nursery.start_soon(self._drain_inbox)

    async def _drain_inbox(self) -> None:
        """Start the oldest queued event as a turn; while another process runs a turn here, retry after it."""
        sup = self._supervisor
        try:
            while True:
                queued = await sup.store_call(sup.store.queued_inputs, self.session_id)
                if not queued:
                    self._inbox_pending = False
                    return
                if self._running is not None or self._archived or self._retired:
                    return  # the turn running now drains it when it ends
                record = await sup.store_call(sup.store.get_session, self.session_id)
                if record is None:
                    return
                if record.active_run_id is None and self._running is None:
                    break
                # Busy in another process: its commit is seen by polling, as a follower's would be.
                await trio.sleep(_BUSY_RETRY_SECS)
        except MeerkatError as exc:
            log.warning("could not read the inbox of session %s: %s", self.session_id, exc)
            return
        finally:
            self._draining = False
        item = queued[0]
        self._start_turn(StartTurn(TurnRequest(prompt=external_event_prompt(item)), stream=False), inputs=[item])

    # -- stop_run --------------------------------------------------------------

    def _stop(self, message: StopRun) -> None:
        if self._archived:
            message.reply.fail(SessionNotFound(self.session_id))
            return
        turn = self._running
        if turn is not None:
            if turn.run_id != message.run_id:
                message.reply.send(stop_receipt("not_current", message.run_id, current_run_id=turn.run_id))
            elif not turn.began:
                message.reply.send(stop_receipt("not_stoppable", message.run_id, state="initializing"))
            else:
                turn.stop_replies.append(message.reply)
                turn.stop_reason = message.reason
                turn.cancel_scope.cancel()
            return
        assert self._nursery is not None
        self._nursery.start_soon(self._stop_elsewhere, message)

    async def _stop_elsewhere(self, message: StopRun) -> None:
        """No run of ours: stop it in the process that runs it, if it is the current one."""
        try:
            run, stopped = await self._stop_foreign(message.run_id)
        except MeerkatError as exc:
            message.reply.fail(exc)
            return
        if run is not None and run.run_id == message.run_id and stopped:
            message.reply.send(stop_receipt("stopped", message.run_id, contributors=[]))
        elif run is not None and run.run_id == message.run_id:
            message.reply.send(stop_receipt("not_stoppable", message.run_id, state="running"))
        else:
            current = run.run_id if run is not None and run.status == "running" else None
            message.reply.send(stop_receipt("not_current", message.run_id, current_run_id=current))

