"""``meerkat_inject_context``, ``meerkat_stop_run``, ``meerkat_events_since`` and
``meerkat_external_event``: what an autonomous agent needs to steer a live session
(see :mod:`actors.live_api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import msgspec

from surfaces import live_wire

from .arguments import SessionId, _Arguments

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["InjectArguments", "StopRunArguments", "EventsSinceArguments", "ExternalEventArguments", "LiveTools",
           "INJECT_DESCRIPTION", "STOP_RUN_DESCRIPTION", "EVENTS_SINCE_DESCRIPTION", "EXTERNAL_EVENT_DESCRIPTION"]

_D = msgspec.Meta

INJECT_DESCRIPTION = (
    "Add context to a session without starting a turn: `text` becomes a durable system message the model sees "
    "from its next call on (also the next call of a turn running now in this server). With `idempotency_key` "
    "a retry is answered status \"duplicate\" and adds nothing; the same key with other text is refused "
    "(INPUT_IDEMPOTENCY_CONFLICT). Returns status \"applied\" or \"duplicate\" and input_id.")
STOP_RUN_DESCRIPTION = (
    "Stop one run of a session, only if it is still the session's current run (in any process of the realm): "
    "safer than meerkat_interrupt when a new turn may have started meanwhile. Take `run_id` from the "
    "run_started event (payload.identity.run_id). The receipt is outcome \"stopped\" (the run ended, what was "
    "written is kept), \"not_current\" (current_run_id names the run that is current, or null) or "
    "\"not_stoppable\".")
EVENTS_SINCE_DESCRIPTION = (
    "Read a session's events after a cursor from the durable event log (it survives restarts and sees turns "
    "of every process): `after` is the seq of the last event you have (0: from the start). Returns events "
    "(full envelopes, oldest first, at most `limit`), has_more and latest_cursor.sequence (pass it as `after` "
    "next time). A cursor older than the log retains is refused with STALE_CURSOR; its details.watermark is "
    "where to resume. Events of a turn still running appear once it ends (follow live ones with "
    "meerkat_event_stream_open).")
EXTERNAL_EVENT_DESCRIPTION = (
    "Queue an external event (a webhook, a job finishing...) as input for a session: it runs as a turn of its "
    "own once the session is free (accepted even while a turn runs). `payload` is any JSON. With "
    "`idempotency_key` a retry is \"deduplicated\". A full inbox is refused with INBOX_FULL. Returns "
    "outcome_type, input_id and the input's state.")


class InjectArguments(_Arguments):
    """Arguments of ``meerkat_inject_context``."""

    session_id: SessionId
    text: Annotated[str, _D(description="The context to add, as the model should read it.")]
    source: Annotated[str, _D(description="Who adds it (kept with the message).")] | None = None
    idempotency_key: Annotated[str, _D(min_length=1, max_length=256,
                                       description="Makes a retry safe: the same key applies once.")] | None = None


class StopRunArguments(_Arguments):
    """Arguments of ``meerkat_stop_run``."""

    session_id: SessionId
    run_id: Annotated[str, _D(min_length=1, description="The run to stop (run_started's identity.run_id).")]
    reason: Annotated[str, _D(description="Why (for the record).")] = ""


class EventsSinceArguments(_Arguments):
    """Arguments of ``meerkat_events_since``."""

    session_id: SessionId
    after: Annotated[int, _D(ge=0, description="The seq of the last event you have; 0 for the start.")] = 0
    limit: Annotated[int, _D(ge=1, le=1000, description="Most events to return (default 100).")] = 100


class ExternalEventArguments(_Arguments):
    """Arguments of ``meerkat_external_event``."""

    session_id: SessionId
    event_type: Annotated[str, _D(min_length=1, description="What happened, e.g. \"build.finished\".")]
    payload: Annotated[Any, _D(description="The event's data (any JSON).")] = None
    idempotency_key: Annotated[str, _D(min_length=1, max_length=256)] | None = None


class LiveTools:
    """The handlers, bound to one service."""

    def __init__(self, service: "SessionService") -> None:
        self._service = service

    async def inject(self, ctx: Any, args: InjectArguments) -> dict[str, Any]:
        """``meerkat_inject_context``."""
        outcome = await self._service.inject_context(args.session_id, args.text, source=args.source,
                                                     idempotency_key=args.idempotency_key)
        return {"session_id": args.session_id, **live_wire.inject_result_wire(outcome)}

    async def stop_run(self, ctx: Any, args: StopRunArguments) -> dict[str, Any]:
        """``meerkat_stop_run``."""
        receipt = await self._service.stop_run(args.session_id, args.run_id, reason=args.reason)
        return {"session_id": args.session_id, "receipt": receipt}

    async def events_since(self, ctx: Any, args: EventsSinceArguments) -> dict[str, Any]:
        """``meerkat_events_since``."""
        page = await live_wire.list_since_wire(self._service, args.session_id, args.after, args.limit)
        return msgspec.to_builtins(page)

    async def external_event(self, ctx: Any, args: ExternalEventArguments) -> dict[str, Any]:
        """``meerkat_external_event``."""
        outcome = await self._service.send_external_event(args.session_id, args.event_type, args.payload,
                                                          idempotency_key=args.idempotency_key)
        return {"session_id": args.session_id, **live_wire.accept_result_wire(outcome)}
