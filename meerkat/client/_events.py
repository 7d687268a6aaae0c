"""Turning ``session/event`` notifications into typed events.

Events are the host's own classes (:mod:`meerkat.events`: ``TextDelta``,
``ToolCallRequested``, ``RunCompleted``...), so ``match event: case
TextDelta(delta=chunk)`` works. A type this SDK has no class for arrives as
:class:`UnknownEvent` instead of failing the stream.
"""

from __future__ import annotations

from typing import Any, Union

import msgspec

from meerkat.events import AgentEvent, EventEnvelope

__all__ = ["UnknownEvent", "Event", "EventParams", "event_from_params"]


class UnknownEvent(msgspec.Struct, frozen=True):
    """An event of a type this SDK does not know (``type``), with its raw payload."""

    type: str
    data: dict[str, Any]


Event = Union[AgentEvent, UnknownEvent]


class EventParams(msgspec.Struct, frozen=True):
    """The params of a ``session/event`` notification."""

    session_id: str
    event: EventEnvelope


_params = msgspec.json.Decoder(EventParams)
#: Payload types this SDK has classes for: a bad one of these is malformed, not unknown.
_KNOWN = frozenset(cls.__struct_config__.tag for cls in AgentEvent.__args__)  # type: ignore[attr-defined]
_generic = msgspec.json.Decoder()


def event_from_params(raw: bytes) -> tuple[str | None, Event | None]:
    """``(session_id, event)`` from a notification's raw params; Nones when unusable."""
    try:
        params = _params.decode(raw)
        return params.session_id, params.event.payload
    except msgspec.ValidationError:
        pass
    except msgspec.DecodeError:
        return None, None
    loose = _generic.decode(raw)
    if not isinstance(loose, dict) or not isinstance(loose.get("session_id"), str):
        return None, None
    event = loose.get("event")
    payload = event.get("payload") if isinstance(event, dict) else None
    if not isinstance(payload, dict):
        return loose["session_id"], UnknownEvent("malformed_event", {"event": event})
    kind = payload.get("type")
    if not isinstance(kind, str) or kind in _KNOWN:
        kind = "malformed_event"
    return loose["session_id"], UnknownEvent(kind, payload)
