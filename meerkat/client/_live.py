"""The live-session calls of the SDK: event subscriptions, the durable event log,
run-fenced stop, injected context, external events, realms and runtime info.

A mixin of :class:`~meerkat.client.MeerkatClient`; results are typed msgspec
structs, events are the host's own :class:`~meerkat.events.EventEnvelope`::

    async with await client.subscribe_events(session.id) as events:
        async for envelope in events:          # every turn of the session, any client's
            print(envelope.seq, envelope.type)

    page = await client.list_events_since(session.id, after=cursor)
    receipt = await client.stop_run(session.id, run_id, reason="user pressed stop")
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Literal

import anyio
import msgspec

from meerkat.events import EventEnvelope

from ._types import decode

if TYPE_CHECKING:
    from ._transport import Connection

__all__ = ["stream_item", "EventSubscription", "EventsPage", "StopReceipt", "InjectResult", "InputState", "ExternalEventResult",
           "RealmInfo", "LiveCalls"]


class EventsPage(msgspec.Struct, frozen=True, kw_only=True):
    """``list_events_since``: events after ``after``, oldest first; ``latest`` is the log's newest seq."""

    events: list[EventEnvelope]
    after: int
    latest: int
    has_more: bool


class StopReceipt(msgspec.Struct, frozen=True, kw_only=True):
    """``stop_run``: ``outcome`` ``stopped``, ``not_current`` (``current_run_id``) or ``not_stoppable`` (``state``)."""

    outcome: Literal["stopped", "not_current", "not_stoppable"]
    run_id: str
    current_run_id: str | None = None
    contributors: list[dict[str, Any]] = []
    state: str | None = None


class InjectResult(msgspec.Struct, frozen=True, kw_only=True):
    """``inject_context``: ``applied``, or ``duplicate`` for a retry of the same idempotency key."""

    status: Literal["applied", "duplicate"]
    input_id: str


class InputState(msgspec.Struct, frozen=True, kw_only=True):
    """An input's stored state (injected context or external event)."""

    input_id: str
    current_state: str
    created_at: str
    updated_at: str
    idempotency_key: str | None = None
    last_run_id: str | None = None
    last_boundary_sequence: int | None = None
    terminal_outcome: str | None = None
    policy: str | None = None
    durability: str | None = None


class ExternalEventResult(msgspec.Struct, frozen=True, kw_only=True):
    """``send_external_event``: ``accepted`` (queued) or ``deduplicated`` (``existing_id``)."""

    outcome_type: Literal["accepted", "deduplicated", "rejected"]
    input_id: str | None = None
    existing_id: str | None = None
    policy: str | None = None
    state: InputState | None = None


class RealmInfo(msgspec.Struct, frozen=True, kw_only=True):
    """One realm under the server's state root; ``current`` is the one this client serves."""

    realm_id: str
    backend: str | None = None
    current: bool = False


class _End(msgspec.Struct, frozen=True):
    reason: str


class _StreamEvent(msgspec.Struct, frozen=True):
    stream_id: str
    event: EventEnvelope


class _StreamEnd(msgspec.Struct, frozen=True):
    stream_id: str
    reason: str = "session_ended"


_stream_event = msgspec.json.Decoder(_StreamEvent)
_stream_end = msgspec.json.Decoder(_StreamEnd)


def stream_item(method: str, raw: bytes) -> tuple[str | None, "EventEnvelope | _End | None"]:
    """``(stream_id, envelope or end)`` from a stream notification's raw params; Nones when unusable."""
    try:
        if method == "session/stream_end":
            end = _stream_end.decode(raw)
            return end.stream_id, _End(end.reason)
        event = _stream_event.decode(raw)
        return event.stream_id, event.event
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None, None  # an event type this SDK does not know: skipped, the stream goes on


class EventSubscription:
    """A standalone subscription to one session's events (``session/stream_open``).

    Iterate it for :class:`~meerkat.events.EventEnvelope` s, live from when it
    was opened; it ends when closed (:meth:`close` or leaving ``async with``),
    when the session is archived, or when the connection ends. ``end_reason``
    says which (``closed``, ``session_ended``, ``shutdown``).
    """

    def __init__(self, conn: "Connection", stream_id: str, session_id: str) -> None:
        self.stream_id = stream_id
        self.session_id = session_id
        self.end_reason: str | None = None
        self.last_seq: int | None = None
        self._conn = conn
        self._send, self._receive = anyio.create_memory_object_stream[Any](math.inf)
        self._unfollow = conn.follow_stream(stream_id, self._send)
        self._closed = False

    def __aiter__(self) -> "EventSubscription":
        return self

    async def __anext__(self) -> EventEnvelope:
        try:
            item = await self._receive.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None
        if isinstance(item, _End):
            self.end_reason = self.end_reason or item.reason
            self._finish()
            raise StopAsyncIteration
        if item.seq:
            self.last_seq = item.seq
        return item

    def _finish(self) -> None:
        self._unfollow()
        self._send.close()
        self._receive.close()

    async def close(self) -> None:
        """Close the stream on the server (its end arrives first) and stop iterating."""
        if self._closed:
            return
        self._closed = True
        try:
            await self._conn.request("session/stream_close", {"stream_id": self.stream_id})
        finally:
            self.end_reason = self.end_reason or "closed"
            self._finish()

    async def __aenter__(self) -> "EventSubscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def _scope(session_id: str) -> dict[str, Any]:
    return {"type": "session", "session_id": session_id}


class LiveCalls:
    """Mixin of :class:`~meerkat.client.MeerkatClient`."""

    async def _call(self, method: str, params: dict[str, Any]) -> Any:  # provided by MeerkatClient
        raise NotImplementedError

    def _connection(self) -> "Connection":  # provided by MeerkatClient
        raise NotImplementedError

    async def subscribe_events(self, session_id: str) -> EventSubscription:
        """Follow a session's events without starting a turn (turns of other clients and processes too)."""
        conn = self._connection()
        opened = await self._call("session/stream_open", {"session_id": session_id})
        return EventSubscription(conn, str(opened["stream_id"]), str(opened["session_id"]))

    async def latest_event_cursor(self, session_id: str) -> int:
        """The seq of the session's newest logged event (0: none yet)."""
        answer = await self._call("events/latest_cursor", {"scope": _scope(session_id)})
        return int(answer["cursor"]["sequence"])

    async def list_events_since(self, session_id: str, after: int = 0, *, limit: int | None = None) -> EventsPage:
        """Logged events after cursor ``after`` (any process, after restarts); STALE_CURSOR if pruned."""
        params: dict[str, Any] = {"scope": _scope(session_id), "cursor": {"scope": _scope(session_id),
                                                                         "sequence": after}}
        if limit is not None:
            params["limit"] = limit
        answer = await self._call("events/list_since", params)
        events = decode(answer.get("events", []), list[EventEnvelope], "events")
        return EventsPage(events=events, after=int(answer["from_cursor"]["sequence"]),
                          latest=int(answer["latest_cursor"]["sequence"]), has_more=bool(answer["has_more"]))

    async def event_snapshot(self, session_id: str) -> dict[str, Any]:
        """The latest cursor and what the session looks like at it."""
        return await self._call("events/snapshot", {"scope": _scope(session_id)})

    async def stop_run(self, session_id: str, run_id: str, *, reason: str = "") -> StopReceipt:
        """Stop ``run_id`` only if it is the session's current run (in any process)."""
        answer = await self._call("turn/stop_run", {"session_id": session_id, "run_id": run_id, "reason": reason})
        return decode(answer["receipt"], StopReceipt, "stop receipt")

    async def inject_context(self, session_id: str, text: str, *, source: str | None = None,
                             idempotency_key: str | None = None) -> InjectResult:
        """Append a durable system message the model sees from its next call on."""
        params: dict[str, Any] = {"session_id": session_id, "content": {"type": "text", "text": text}}
        if source is not None:
            params["source"] = source
        if idempotency_key is not None:
            params["idempotency_key"] = idempotency_key
        return decode(await self._call("session/inject_context", params), InjectResult, "inject result")

    async def input_state(self, session_id: str, *, input_id: str | None = None,
                          idempotency_key: str | None = None) -> InputState | None:
        """An input's state by id or idempotency key (exactly one); None when none matches."""
        if (input_id is None) == (idempotency_key is None):
            raise ValueError("give exactly one of input_id or idempotency_key")
        selector = {"by": "input_id", "value": input_id} if input_id is not None else \
            {"by": "idempotency_key", "value": idempotency_key}
        answer = await self._call("session/input_status", {"session_id": session_id, "selector": selector})
        state = answer.get("state")
        return None if state is None else decode(state, InputState, "input state")

    async def send_external_event(self, session_id: str, event_type: str, payload: Any, *,
                                  blocks: list[dict[str, Any]] | None = None,
                                  idempotency_key: str | None = None) -> ExternalEventResult:
        """Queue an external event; it runs as a turn of its own once the session is free."""
        params: dict[str, Any] = {"session_id": session_id, "kind": "generic_json", "event_type": event_type,
                                  "payload": payload}
        if blocks is not None:
            params["blocks"] = blocks
        if idempotency_key is not None:
            params["idempotency_key"] = idempotency_key
        answer = await self._call("session/external_event", params)
        return decode(answer, ExternalEventResult, "external event result")

    async def list_realms(self) -> list[RealmInfo]:
        """Realms the server can see, the served one first: a postgres realm's database's, else its state root's."""
        answer = await self._call("realm/list", {})
        return decode(answer["realms"], list[RealmInfo], "realm list")

    async def runtime_host_info(self) -> dict[str, Any]:
        """The server process: id, version, realm, feature flags, health."""
        return await self._call("runtime/host_info", {})

    async def runtime_health(self) -> dict[str, Any]:
        """``{status, checks}`` of the server (its store answers, or not; a postgres realm adds ``database``)."""
        return await self._call("runtime/health", {})
