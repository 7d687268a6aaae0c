"""The live-session part of :class:`actors.SessionService`: the event log, injected
context, external events, run-fenced stop, and following a session from a cursor.

A mixin of ``SessionService`` (it uses the service's supervisor), so each surface
calls one method per ability, with the same rules and errors everywhere.
"""

from __future__ import annotations

from contextlib import aclosing
from functools import partial
from typing import TYPE_CHECKING, Any, AsyncGenerator, AsyncIterator

from meerkat.errors import ErrorCode, InvalidParams, SessionNotFound, StaleCursor, error_from_code
from meerkat.events import EventEnvelope
from meerkat.ids import new_uuid7
from meerkat.store import MAX_LIST_LIMIT
from meerkat.store.eventlog import EventPage, InputRecord, input_fingerprint
from meerkat.transcript import now_ms
from meerkat.validation import known_session_id, validate_cursor

from .messages import InjectContext, QueueExternalEvent, StopRun

if TYPE_CHECKING:
    from .bus import Subscription
    from .realm import RealmSupervisor

__all__ = ["LiveSessionAPI", "InputOutcome"]

#: Longest text / reason / key / event type accepted (bytes of UTF-8).
_MAX_TEXT_BYTES = 1 << 20
_MAX_KEY_CHARS = 256


class InputOutcome:
    """What admitting an input did: ``accepted`` (new) or ``deduplicated`` (a retry of ``record``)."""

    __slots__ = ("accepted", "record")

    def __init__(self, accepted: bool, record: InputRecord) -> None:
        self.accepted = accepted
        self.record = record


def _text(name: str, value: Any, *, allow_empty: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidParams(f"{name} must be a string, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise InvalidParams(f"{name} must not be empty")
    if len(value.encode("utf-8", "surrogatepass")) > _MAX_TEXT_BYTES:
        raise InvalidParams(f"{name} is too long (over {_MAX_TEXT_BYTES} bytes)")
    return value


def _key(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value or len(value) > _MAX_KEY_CHARS:
        raise InvalidParams(f"idempotency_key must be a non-empty string of at most {_MAX_KEY_CHARS} characters")
    return value


class LiveSessionAPI:
    """Mixin: the live-session methods of :class:`actors.SessionService`."""

    _sup: "RealmSupervisor"

    # -- the event log ---------------------------------------------------------

    async def list_events(self, session_id: str, *, after_seq: int = 0, limit: int | None = None) -> EventPage:
        """Logged events after ``after_seq`` (0: from the start), oldest first, at most ``limit`` (<= 1000).

        Archived sessions stay readable. STALE_CURSOR when retention pruned
        events after the cursor (its details name the oldest resumable cursor).
        """
        after = validate_cursor(after_seq) or 0
        if limit is None:
            limit = MAX_LIST_LIMIT
        if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= MAX_LIST_LIMIT:
            raise InvalidParams(f"limit must be an integer from 1 to {MAX_LIST_LIMIT}, got {limit!r}")
        sid = known_session_id(session_id)
        store = self._sup.store
        page = await self._sup.store_call(partial(store.read_events, sid, after_seq=after, limit=limit))
        if page is None:
            raise SessionNotFound(session_id)
        if after < page.floor:
            raise StaleCursor(sid, after, page.floor)
        return page

    async def latest_event_seq(self, session_id: str) -> int:
        """The seq of the newest logged event of the session (0: none yet)."""
        sid = known_session_id(session_id)
        store = self._sup.store
        page = await self._sup.store_call(partial(store.read_events, sid, after_seq=2 ** 62, limit=1))
        if page is None:
            raise SessionNotFound(session_id)
        return page.latest

    async def follow_events(self, session_id: str, *, after_seq: int = 0,
                            follow: bool = True) -> AsyncGenerator[EventEnvelope, None]:
        """The session's events after ``after_seq``: from the durable log, then (``follow``) live.

        Without ``follow`` it ends after the logged events (archived sessions
        included). With it, it is :meth:`subscribe` from the cursor, ending when
        the session is archived or the host shuts down. Use it under ``aclosing``.
        """
        after = validate_cursor(after_seq) or 0
        if follow:
            subscription = await self.subscribe(session_id, after_seq=after)  # type: ignore[attr-defined]
            async with subscription:
                async for envelope in subscription:
                    yield envelope
            return
        last = after
        while True:
            page = await self.list_events(session_id, after_seq=last)
            for envelope in page.events:
                last = envelope.seq
                yield envelope
            if not page.has_more:
                return

    async def _resume_from_log(self, session_id: str, subscription: "Subscription", after_seq: int) -> None:
        """Fill the gap a resumed subscription's ring left with the durable log's events."""
        if not subscription.starts_with_gap:
            return  # the ring held everything after the cursor
        try:
            logged: list[EventEnvelope] = []
            last = after_seq
            while True:
                page = await self.list_events(session_id, after_seq=last)
                logged += page.events
                if not page.has_more or not page.events:
                    break
                last = page.events[-1].seq
        except BaseException:
            subscription.close()
            raise
        subscription.fill_gap(logged)

    # -- inputs ------------------------------------------------------------------

    async def inject_context(self, session_id: str, text: str, *, source: str | None = None,
                             idempotency_key: str | None = None) -> InputOutcome:
        """Append a durable system row the model sees from its next call on.

        With ``idempotency_key``, a retry applies nothing and answers the first
        admission (``accepted`` False); the same key with other text is
        INPUT_IDEMPOTENCY_CONFLICT.
        """
        text = _text("text", text)
        if source is not None:
            source = _text("source", source, allow_empty=False)[:200]
        key = _key(idempotency_key)
        now = now_ms()
        record = InputRecord(input_id=new_uuid7(), session_id=known_session_id(session_id), kind="inject_context",
                             state="applied", created_at_ms=now, updated_at_ms=now, idempotency_key=key,
                             fingerprint=input_fingerprint("inject_context", text, source), source=source, text=text)
        message = InjectContext(record)
        await self._sup.deliver(session_id, message)
        return _outcome(record, await message.reply.wait())

    async def send_external_event(self, session_id: str, event_type: str | None, payload: Any, *,
                                  blocks: list[dict[str, Any]] | None = None,
                                  idempotency_key: str | None = None) -> InputOutcome:
        """Queue an external event: it runs as a turn of its own once the session is free.

        INBOX_FULL when the session's inbox is full (``limits.inbox_capacity``).
        """
        event_type = _text("event_type", event_type, allow_empty=False)
        if blocks is not None and (not isinstance(blocks, list) or not all(isinstance(b, dict) for b in blocks)):
            raise InvalidParams("blocks must be a list of content block objects")
        key = _key(idempotency_key)
        now = now_ms()
        record = InputRecord(input_id=new_uuid7(), session_id=known_session_id(session_id), kind="external_event",
                             state="queued", created_at_ms=now, updated_at_ms=now, idempotency_key=key,
                             fingerprint=input_fingerprint("external_event", event_type, payload, blocks),
                             event_type=event_type, payload=payload, blocks=blocks)
        message = QueueExternalEvent(record)
        await self._sup.deliver(session_id, message)
        return _outcome(record, await message.reply.wait())

    async def input_state(self, session_id: str, *, input_id: str | None = None,
                          idempotency_key: str | None = None) -> InputRecord | None:
        """An input by id or by idempotency key (exactly one); None when none matches."""
        if (input_id is None) == (idempotency_key is None):
            raise InvalidParams("give exactly one of input_id or idempotency_key")
        sid = known_session_id(session_id)
        store = self._sup.store
        record = await self._sup.store_call(partial(store.get_session, sid, include_archived=True))
        if record is None:
            raise SessionNotFound(session_id)
        return await self._sup.store_call(partial(store.get_input, sid, input_id=input_id,
                                                  idempotency_key=idempotency_key))

    # -- run-fenced stop --------------------------------------------------------

    async def stop_run(self, session_id: str, run_id: str, *, reason: str = "") -> dict[str, Any]:
        """Stop run ``run_id`` only if it is the session's current run (in any process).

        Answers a receipt: ``{"outcome": "stopped", "run_id", "contributors"}``
        once the run has ended (committed as interrupted, partial answer kept),
        ``{"outcome": "not_current", "run_id", "current_run_id"}`` when another
        run or none is current, ``{"outcome": "not_stoppable", "run_id", "state"}``.
        """
        if not isinstance(run_id, str) or not run_id:
            raise InvalidParams("run_id must be a non-empty string")
        reason = _text("reason", reason)
        message = StopRun(run_id, reason)
        await self._sup.deliver(session_id, message)
        return await message.reply.wait()


def _outcome(record: InputRecord, existing: InputRecord | None) -> InputOutcome:
    if existing is None:
        return InputOutcome(True, record)
    if existing.fingerprint and existing.fingerprint != record.fingerprint:
        raise error_from_code(ErrorCode.INPUT_IDEMPOTENCY_CONFLICT,
                              f"idempotency key {record.idempotency_key!r} was already used for other content "
                              f"(input {existing.input_id})",
                              {"idempotency_key": record.idempotency_key, "existing_id": existing.input_id})
    return InputOutcome(False, existing)


async def drain(events: AsyncIterator[EventEnvelope]) -> list[EventEnvelope]:
    """Every event of a finite ``follow_events(..., follow=False)`` (for tests and the CLI)."""
    out = []
    async with aclosing(events) as stream:  # type: ignore[type-var]
        async for envelope in stream:
            out.append(envelope)
    return out
