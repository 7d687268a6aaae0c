"""Managed event streams: a session's events, read in polls by an agent.

``meerkat_event_stream_open`` subscribes to a session and hands back a
``stream_id``; ``meerkat_event_stream_read`` waits for the next events (or a
timeout) and returns them in one batch; ``meerkat_event_stream_close`` lets go.
A stream sees every turn of its session, whichever tool call, client or other
process on the realm started it.

Streams belong to the server, not to one connection (a stream id is an
unguessable handle), so an agent may poll from a fresh connection. Streams
nobody has read for :data:`IDLE_EXPIRY_S` are closed when room is needed, and at
most :data:`MAX_OPEN_STREAMS` are open at once, and at most
:data:`DEFAULT_STREAMS_PER_CLIENT` per client address (``rkat-mcp
--streams-per-client``), so one client cannot take them all: a forgotten stream
never pins memory forever. A stream holds a bounded queue; a reader that falls behind gets
a ``stream_truncated`` event where events were dropped, never a stalled turn.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
import trio

from actors import SessionService, Subscription
from meerkat.errors import InvalidParams
from meerkat.events import EventEnvelope
from meerkat.validation import known_session_id

__all__ = ["EventStreams", "StreamBatch", "MAX_OPEN_STREAMS", "DEFAULT_STREAMS_PER_CLIENT", "IDLE_EXPIRY_S"]

#: Most streams open at once in one server.
MAX_OPEN_STREAMS = 256
#: Most streams one client (address; stdio is one client) may hold open at once.
DEFAULT_STREAMS_PER_CLIENT = 32
#: A stream unread for this long may be closed to make room for a new one.
IDLE_EXPIRY_S = 600.0


@dataclass(slots=True)
class _OpenStream:
    session_id: str
    subscription: Subscription
    last_used: float
    client: str
    # One reader at a time: two polls of one stream would otherwise split its events.
    lock: trio.Lock = field(default_factory=trio.Lock)


@dataclass(frozen=True, slots=True)
class StreamBatch:
    """What one read returned: ``status`` is ``events``, ``timeout`` or ``closed``."""

    status: str
    events: list[EventEnvelope]


class EventStreams:
    """The open streams of one server."""

    def __init__(self, service: SessionService, *, per_client: int | None = None) -> None:
        self._service = service
        self._streams: dict[str, _OpenStream] = {}
        self._per_client = per_client or DEFAULT_STREAMS_PER_CLIENT

    async def open(self, session_id: str, after_seq: int | None = None, *,
                   client: str = "local") -> tuple[str, str]:
        """Subscribe to a session for ``client`` (its address); returns ``(stream_id, session_id)``
        (SESSION_NOT_FOUND if unknown, INVALID_PARAMS past the limits)."""
        self._make_room(client)
        subscription = await self._service.subscribe(session_id, after_seq=after_seq)
        session_id = known_session_id(session_id)  # subscribe accepted it, so this is its canonical form
        stream_id = f"evt-{uuid.uuid4()}"  # the seed shows stream ids as "evt-..."
        self._streams[stream_id] = _OpenStream(session_id, subscription, trio.current_time(), client)
        return stream_id, session_id

    async def read(self, stream_id: str, *, timeout_s: float, max_events: int) -> StreamBatch:
        """Wait up to ``timeout_s`` for the next event, then take what else is already queued.

        ``closed`` means the stream ended (its session was archived, or it was
        closed meanwhile) and is gone; any events it still held come with it.
        The wait for another read of the same stream counts against the timeout too.
        """
        stream = self._get(stream_id)
        deadline = trio.current_time() + timeout_s
        acquired = False
        with trio.move_on_at(deadline):
            await stream.lock.acquire()
            acquired = True  # no checkpoint after a successful acquire, so this cannot be skipped
        if not acquired:
            return StreamBatch("timeout", [])
        try:
            stream.last_used = trio.current_time()
            events: list[EventEnvelope] = []
            ended = False
            with trio.move_on_at(deadline):
                try:
                    events.append(await stream.subscription.receive())
                except trio.EndOfChannel:
                    ended = True
            while events and not ended and len(events) < max_events:
                try:
                    events.append(stream.subscription.receive_nowait())
                except trio.WouldBlock:
                    break
                except trio.EndOfChannel:
                    ended = True
            stream.last_used = trio.current_time()
        finally:
            stream.lock.release()
        if ended:
            self._drop(stream_id)
            return StreamBatch("closed", events)
        return StreamBatch("events" if events else "timeout", events)

    def close(self, stream_id: str) -> bool:
        """Stop a stream; False if no such stream was open."""
        return self._drop(stream_id)

    def close_all(self) -> None:
        """Stop every stream (server shutdown)."""
        for stream_id in list(self._streams):
            self._drop(stream_id)

    def _get(self, stream_id: str) -> _OpenStream:
        stream = self._streams.get(stream_id)
        if stream is None:
            raise InvalidParams(f"unknown stream_id {stream_id!r}: it was closed, ended or never opened; "
                                "open a new one with meerkat_event_stream_open")
        return stream

    def _drop(self, stream_id: str) -> bool:
        stream = self._streams.pop(stream_id, None)
        if stream is None:
            return False
        stream.subscription.close()
        return True

    def _make_room(self, client: str) -> None:
        held = sum(1 for stream in self._streams.values() if stream.client == client)
        if len(self._streams) < MAX_OPEN_STREAMS and held < self._per_client:
            return
        now = trio.current_time()
        for stream_id, stream in list(self._streams.items()):
            if now - stream.last_used > IDLE_EXPIRY_S and not stream.lock.locked():
                self._drop(stream_id)
        held = sum(1 for stream in self._streams.values() if stream.client == client)
        if held >= self._per_client:
            raise InvalidParams(f"too many open event streams for client {client} ({held}, the limit per client); "
                                "close unused ones with meerkat_event_stream_close")
        if len(self._streams) >= MAX_OPEN_STREAMS:
            raise InvalidParams(f"too many open event streams ({MAX_OPEN_STREAMS}); close unused ones with "
                                "meerkat_event_stream_close")
