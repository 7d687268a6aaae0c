"""Sending a running turn's events to the caller of ``meerkat_run``/``meerkat_resume`` with ``stream: true``.

Each event goes out as one notification, in order, before the tool's result
(the handler awaits every send before it returns). Both kinds carry the same
object, ``{"source": "meerkat", "session_id": ..., "event": <envelope>}``, where
the envelope is the REST SSE ``data:`` shape (``payload.type`` is the event type):

* the call carried a ``progressToken``: ``notifications/progress`` with
  ``progress`` counting events (1, 2, 3, ...) and ``message`` the object as JSON
  text (progress messages are strings);
* otherwise: ``notifications/message`` (level ``info``, logger ``meerkat``) with
  the object as ``data``, upstream's way. On the 2026-07-28 protocol the MCP
  library sends these only when the request opted in to log delivery (the
  ``io.modelcontextprotocol/logLevel`` ``_meta`` key), as that protocol demands.
"""

from __future__ import annotations

import warnings
from typing import Any

import anyio
import msgspec

from mcp.server.context import ServerRequestContext
from mcp.shared.exceptions import MCPDeprecationWarning
from meerkat.events import EventEnvelope

from .results import event_payload

__all__ = ["EventForwarder"]

# Log notifications are deprecated by the 2026-07-28 protocol, yet they are how
# upstream streams and what handshake-era clients (most desktop apps) receive.
# Sending them is deliberate, so the per-call warning would only be noise on stderr.
warnings.filterwarnings("ignore", message="The logging capability is deprecated", category=MCPDeprecationWarning)

_encoder = msgspec.json.Encoder()


class EventForwarder:
    """Forwards one tool call's events as progress or log notifications (see the module docstring)."""

    def __init__(self, ctx: ServerRequestContext[Any, Any]) -> None:
        self._ctx = ctx
        self._by_progress = bool(ctx.meta) and ctx.meta.get("progress_token") is not None  # type: ignore[union-attr]
        self._sent = 0

    @property
    def mode(self) -> str:
        """``"progress"`` or ``"log"``."""
        return "progress" if self._by_progress else "log"

    async def send(self, envelope: EventEnvelope) -> bool:
        """Send one event to the caller; False once the caller's connection is gone (nothing more can reach it)."""
        body = {"source": "meerkat", "session_id": envelope.source.session_id, "event": event_payload(envelope)}
        self._sent += 1
        try:
            if self._by_progress:
                await self._ctx.session.report_progress(self._sent, None, _encoder.encode(body).decode())
            else:
                await self._ctx.session.send_log_message("info", body, logger="meerkat",
                                                         related_request_id=self._ctx.request_id)
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            return False
        return True
