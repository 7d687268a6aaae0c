"""``GET /sessions/{id}/events``: a session's events as an SSE byte stream.

The stream opens with ``session_loaded``, replays what the session's ring still
holds after the client's cursor (or starts with ``stream_truncated`` if it no
longer does), then follows live events. Events already queued are sent in one
write. An idle stream gets a keep-alive comment every ``keepalive_secs``. It ends
with ``done`` (``data: {"reason": ...}``) when the session is archived, the
server shuts down, or, with ``stop_after_run``, after the next run's terminal
event. A client that disconnects only detaches its subscription: the turn goes on.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, AsyncIterator

import trio

from meerkat.errors import SessionNotFound
from meerkat.events import TERMINAL_EVENT_TYPES

from .sse import KEEPALIVE, control_frame
from .state import RestState

if TYPE_CHECKING:
    from actors.bus import Subscription

__all__ = ["open_event_stream"]

#: Most events written in one chunk, so one burst cannot hold a huge buffer.
_MAX_BATCH = 256


async def open_event_stream(state: RestState, session_id: str, after_seq: int | None,
                            stop_after_run: bool) -> AsyncIterator[bytes]:
    """Subscribe now (so a missing session is a JSON 404, not a broken stream), then stream."""
    service = state.service
    view = await service.read_session(session_id)
    subscription = await service.subscribe(session_id, after_seq=after_seq)
    loaded = control_frame("session_loaded", {"session_id": session_id, "message_count": view.message_count})
    return _frames(state, subscription, session_id, loaded, stop_after_run)


async def _frames(state: RestState, subscription: "Subscription", session_id: str, loaded: bytes,
                  stop_after_run: bool) -> AsyncIterator[bytes]:
    with state.open_stream(subscription):
        yield loaded
        reason = None
        while reason is None:
            chunk, reason = await _next_chunk(state, subscription, stop_after_run)
            if chunk:
                yield chunk
        if reason == "ended":
            reason = await _end_reason(state, session_id)
        yield control_frame("done", {"reason": reason})


async def _next_chunk(state: RestState, subscription: "Subscription",
                      stop_after_run: bool) -> tuple[bytes, str | None]:
    """Queued events as one chunk (or a keep-alive), and why the stream ends, if it does."""
    with trio.move_on_after(state.settings.keepalive_secs):
        try:
            envelope = await subscription.receive()
        except trio.EndOfChannel:
            return b"", "ended"
        frames = [state.frames.frame(envelope)]
        while not (stop_after_run and envelope.type in TERMINAL_EVENT_TYPES) and len(frames) < _MAX_BATCH:
            try:
                envelope = subscription.receive_nowait()
            except (trio.WouldBlock, trio.EndOfChannel):
                break
            frames.append(state.frames.frame(envelope))
        if stop_after_run and envelope.type in TERMINAL_EVENT_TYPES:
            return b"".join(frames), "run_ended"
        return b"".join(frames), None
    return KEEPALIVE, None


async def _end_reason(state: RestState, session_id: str) -> str:
    """Why the session closed its stream: ``shutdown``, ``archived`` or ``closed``."""
    if state.closing:
        return "shutdown"
    try:
        await state.service.read_session(session_id)
    except SessionNotFound:
        return "archived"
    return "closed"
