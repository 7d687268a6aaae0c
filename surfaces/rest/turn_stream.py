"""``POST /sessions`` with ``Accept: text/event-stream``: the first turn streamed as it runs.

Without it a client learns the new session's id only when the first turn ends.
The stream's frames, in order:

* ``session_created`` ``{"session_id", "session_ref"}``, sent as soon as the session exists;
* the turn's events, exactly as ``GET /sessions/{id}/events`` frames them (``id:`` = seq);
* ``result``: the same body a plain ``POST /sessions`` answers with, or ``error``
  (``{error, code, details}``, details naming the ``session_id``) when the turn failed;
* ``done`` ``{"reason": "run_ended"}``.

A client that disconnects stops only its stream: the turn goes on (interrupt it
with ``POST /sessions/{id}/interrupt``), as with the blocking form.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import trio
from quart import Response

from meerkat.errors import MeerkatError
from meerkat.views import session_ref

from .sse import control_frame
from .state import RestState

__all__ = ["wants_event_stream", "stream_first_turn"]

_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def wants_event_stream(accept: str | None) -> bool:
    """Whether the ``Accept`` header asks for SSE (and not JSON first)."""
    if not accept:
        return False
    kinds = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    return "text/event-stream" in kinds and (kinds.index("text/event-stream") < kinds.index("application/json")
                                             if "application/json" in kinds else True)


async def stream_first_turn(state: RestState, prompt: Any, options: dict[str, Any]) -> Response:
    """Create the session and start its first turn now; answer with the turn's SSE stream."""
    with trio.CancelScope(shield=True):  # as the blocking form: never a session without its first turn
        stream = await state.service.create_session_streaming(prompt, **options)
    response = Response(_frames(state, stream), headers=_SSE_HEADERS)
    response.timeout = None  # a long turn must not be cut by Quart's response timeout
    return response


async def _frames(state: RestState, stream: Any) -> AsyncIterator[bytes]:
    session_id = stream.session_id
    with state.turn_in_flight(session_id):
        try:
            yield control_frame("session_created",
                                {"session_id": session_id, "session_ref": session_ref(state.realm_id, session_id)})
            async for envelope in stream:
                yield state.frames.frame(envelope)
        finally:
            await stream.aclose()
        try:
            result = await stream.result()
        except MeerkatError as exc:
            exc.details.setdefault("session_id", session_id)
            yield control_frame("error", exc.to_dict())
        else:
            yield control_frame("result", result.to_wire())
        yield control_frame("done", {"reason": "run_ended"})
