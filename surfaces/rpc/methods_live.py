"""The live-session methods of ``rkat-rpc`` (published meerkat-sdk 0.9.6 contract).

* ``session/stream_open`` / ``session/stream_close``: a standalone subscription to
  a session's events, turns of any client and any process of the realm included.
  Each event is a ``session/stream_event`` notification ``{stream_id, sequence,
  session_id, event}`` (``sequence`` counts this stream's notifications from 1;
  ``event.seq`` is the session's). The stream ends with one ``session/stream_end``
  ``{stream_id, session_id, reason}``: ``closed`` (stream_close), ``session_ended``
  (archived, or its actor stopped) or ``shutdown`` (the connection is closing).
* ``events/latest_cursor``, ``events/list_since``, ``events/snapshot``: the
  durable event log (see :mod:`meerkat.store.eventlog`), readable by any
  process after any restart.
* ``turn/stop_run``, ``session/inject_context``, ``session/input_status``,
  ``session/external_event``: see :mod:`actors.live_api`.
* ``realm/list``, ``realm/get``, ``runtime/host_info``, ``runtime/health``,
  ``runtime/capabilities``: discovery.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import msgspec
import trio

from meerkat.errors import InvalidParams
from meerkat.ids import new_uuid7
from meerkat.providers.catalog import CONTRACT_VERSION
from meerkat.validation import known_session_id

from surfaces import live_wire

if TYPE_CHECKING:
    from actors import SessionService
    from actors.bus import Subscription

__all__ = ["LiveMethods", "LIVE_METHOD_NAMES"]

log = logging.getLogger("rkat.rpc")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]
_encoder = msgspec.json.Encoder()


def _string(params: dict[str, Any], name: str) -> str:
    value = params.get(name)
    if value is None:
        raise InvalidParams(f"missing field `{name}`")
    if not isinstance(value, str):
        raise InvalidParams(f"{name} must be a string, got {type(value).__name__}")
    return value


class _Stream:
    __slots__ = ("stream_id", "session_id", "subscription", "ended", "reason")

    def __init__(self, stream_id: str, session_id: str, subscription: "Subscription") -> None:
        self.stream_id = stream_id
        self.session_id = session_id
        self.subscription = subscription
        self.ended = trio.Event()
        self.reason = "session_ended"


class LiveMethods:
    """The live-session method handlers of one connection, and its open streams."""

    def __init__(self, service: "SessionService", send_line: Callable[[bytes], None],
                 line_room: Callable[[], Awaitable[None]]) -> None:
        self._service = service
        self._send_line = send_line
        #: Awaited before each event line, so a client that stops reading meets the subscription's bound.
        self._line_room = line_room
        self._streams: dict[str, _Stream] = {}
        #: Set by the connection once it serves (streams forward their events in it).
        self.nursery: trio.Nursery | None = None
        self.table: dict[str, Handler] = {
            "session/stream_open": self.stream_open,
            "session/stream_close": self.stream_close,
            "events/latest_cursor": self.latest_cursor,
            "events/list_since": self.list_since,
            "events/snapshot": self.snapshot,
            "turn/stop_run": self.stop_run,
            "session/inject_context": self.inject_context,
            "session/input_status": self.input_status,
            "session/external_event": self.external_event,
            "realm/list": self.realm_list,
            "realm/get": self.realm_get,
            "runtime/host_info": self.host_info,
            "runtime/health": self.health,
            "runtime/capabilities": self.runtime_capabilities,
        }

    # -- subscriptions ------------------------------------------------------------

    async def stream_open(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = known_session_id(_string(params, "session_id"))
        if self.nursery is None:
            raise InvalidParams("the connection is closing")
        subscription = await self._service.subscribe(session_id)
        stream = _Stream(new_uuid7(), session_id, subscription)
        self._streams[stream.stream_id] = stream
        self.nursery.start_soon(self._forward, stream)
        return {"stream_id": stream.stream_id, "session_id": session_id, "opened": True}

    async def _forward(self, stream: _Stream) -> None:
        sequence = 0
        try:
            async for envelope in stream.subscription:
                await self._line_room()
                sequence += 1
                self._send_line(_encoder.encode({
                    "jsonrpc": "2.0", "method": "session/stream_event",
                    "params": {"stream_id": stream.stream_id, "sequence": sequence,
                               "session_id": stream.session_id, "event": envelope}}) + b"\n")
        finally:
            self._streams.pop(stream.stream_id, None)
            try:
                self._send_line(_encoder.encode({
                    "jsonrpc": "2.0", "method": "session/stream_end",
                    "params": {"stream_id": stream.stream_id, "session_id": stream.session_id,
                               "reason": stream.reason}}) + b"\n")
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                pass
            stream.ended.set()

    async def stream_close(self, params: dict[str, Any]) -> dict[str, Any]:
        stream_id = _string(params, "stream_id")
        stream = self._streams.get(stream_id)
        if stream is None:
            return {"stream_id": stream_id, "closed": False, "already_closed": True}
        stream.reason = "closed"
        stream.subscription.close()
        await stream.ended.wait()  # its stream_end goes out before this answer
        return {"stream_id": stream_id, "closed": True, "already_closed": False}

    async def close_all(self) -> None:
        """End every open stream (``reason: shutdown``) and wait until their ends are written."""
        streams = list(self._streams.values())
        for stream in streams:
            stream.reason = "shutdown"
            stream.subscription.close()
        for stream in streams:
            await stream.ended.wait()
        self.nursery = None

    # -- the event log ------------------------------------------------------------------

    async def latest_cursor(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = live_wire.scope_session_id(params.get("scope"))
        latest = await self._service.latest_event_seq(session_id)
        return {"contract_version": dict(CONTRACT_VERSION), "cursor": live_wire.cursor(session_id, latest)}

    async def list_since(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = live_wire.scope_session_id(params.get("scope"))
        after = live_wire.cursor_sequence(params.get("cursor"), session_id)
        return await live_wire.list_since_wire(self._service, session_id, after, params.get("limit"))

    async def snapshot(self, params: dict[str, Any]) -> dict[str, Any]:
        return await live_wire.snapshot_wire(self._service, live_wire.scope_session_id(params.get("scope")))

    # -- runs and inputs ------------------------------------------------------------------

    async def stop_run(self, params: dict[str, Any]) -> dict[str, Any]:
        session_id = _string(params, "session_id")
        reason = params.get("reason", "")
        receipt = await self._service.stop_run(session_id, _string(params, "run_id"),
                                               reason="" if reason is None else reason)
        return {"session_id": session_id, "receipt": receipt}

    async def inject_context(self, params: dict[str, Any]) -> dict[str, Any]:
        content = params.get("content")
        if not isinstance(content, dict) or content.get("type") != "text" or not isinstance(content.get("text"), str):
            raise InvalidParams('content must be {"type": "text", "text": "..."}')
        outcome = await self._service.inject_context(_string(params, "session_id"), content["text"],
                                                     source=params.get("source"),
                                                     idempotency_key=params.get("idempotency_key"))
        return live_wire.inject_result_wire(outcome)

    async def input_status(self, params: dict[str, Any]) -> dict[str, Any]:
        selector = params.get("selector")
        if not isinstance(selector, dict) or selector.get("by") not in ("input_id", "idempotency_key"):
            raise InvalidParams('selector must be {"by": "input_id" | "idempotency_key", "value": "..."}')
        value = selector.get("value")
        if not isinstance(value, str):
            raise InvalidParams("selector.value must be a string")
        by = {selector["by"]: value}
        record = await self._service.input_state(_string(params, "session_id"), **by)
        return {"state": None if record is None else live_wire.input_state_wire(record)}

    async def external_event(self, params: dict[str, Any]) -> dict[str, Any]:
        kind = params.get("kind", "generic_json")
        if kind != "generic_json":
            raise InvalidParams(f"kind {kind!r} is not supported: this host takes kind \"generic_json\"")
        if "payload" not in params:
            raise InvalidParams("missing field `payload`")
        outcome = await self._service.send_external_event(
            _string(params, "session_id"), _string(params, "event_type"), params["payload"],
            blocks=params.get("blocks"), idempotency_key=params.get("idempotency_key"))
        return live_wire.accept_result_wire(outcome)

    # -- discovery ------------------------------------------------------------------

    async def realm_list(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"realms": await live_wire.realm_summaries(self._service)}

    async def realm_get(self, params: dict[str, Any]) -> dict[str, Any]:
        return await live_wire.realm_connection_set(self._service, params.get("realm_id"))

    async def host_info(self, params: dict[str, Any]) -> dict[str, Any]:
        return await live_wire.host_info(self._service, "rkat-rpc")

    async def health(self, params: dict[str, Any]) -> dict[str, Any]:
        return await live_wire.host_health(self._service)

    async def runtime_capabilities(self, params: dict[str, Any]) -> dict[str, Any]:
        return live_wire.host_capabilities()


#: The methods above, in the order ``initialize`` lists them.
LIVE_METHOD_NAMES = ("session/stream_open", "session/stream_close", "events/latest_cursor", "events/list_since",
                     "events/snapshot", "turn/stop_run", "session/inject_context", "session/input_status",
                     "session/external_event", "realm/list", "realm/get", "runtime/host_info", "runtime/health",
                     "runtime/capabilities")
