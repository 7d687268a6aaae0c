"""Server-Sent Events framing, without I/O.

One frame per event::

    id: 12
    event: text_delta
    data: {"event_id":"...","source":{...},"seq":12,"timestamp_ms":...,"payload":{...}}

``id:`` is the event's per-session ``seq``, so a client reconnecting with
``Last-Event-ID`` resumes right after the last event it saw. The synthetic
``stream_truncated`` marker (seq 0) carries no ``id:``: it must not move the
client's cursor. The frames this layer adds itself (``session_loaded``,
``done``, keep-alive comments) carry no ``id:`` either.

Every subscriber of a session receives the same envelope objects, so a frame is
encoded once and shared (:class:`FrameCache`), not encoded per subscriber.
"""

from __future__ import annotations

from typing import Any

import msgspec

from meerkat.events import EventEnvelope, encode_envelope

__all__ = ["KEEPALIVE", "FrameCache", "event_frame", "control_frame"]

#: A comment line: ignored by SSE clients, keeps proxies and idle timeouts from closing the stream.
KEEPALIVE = b": keep-alive\n\n"

_encoder = msgspec.json.Encoder()


def event_frame(envelope: EventEnvelope) -> bytes:
    """The frame of one bus event (``id:`` only for real events, not lag markers)."""
    data = encode_envelope(envelope)
    event = envelope.type.encode()
    if envelope.seq > 0:
        return b"id: %d\nevent: %s\ndata: %s\n\n" % (envelope.seq, event, data)
    return b"event: %s\ndata: %s\n\n" % (event, data)


def control_frame(event: str, data: dict[str, Any]) -> bytes:
    """A frame this layer adds (``session_loaded``, ``done``): no ``id:``."""
    return b"event: %s\ndata: %s\n\n" % (event.encode(), _encoder.encode(data))


class FrameCache:
    """Frames of recent events by event id, so N subscribers cost one encoding.

    Bounded: the oldest entries go first. Subscribers of one session read the
    same events within a short window, so a few thousand entries cover them.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._frames: dict[str, bytes] = {}

    def frame(self, envelope: EventEnvelope) -> bytes:
        """The envelope's frame, encoded at most once while cached."""
        if envelope.seq <= 0:  # per-subscriber lag markers are never shared
            return event_frame(envelope)
        frames = self._frames
        cached = frames.get(envelope.event_id)
        if cached is None:
            cached = frames[envelope.event_id] = event_frame(envelope)
            if len(frames) > self._capacity:
                del frames[next(iter(frames))]
        return cached
