"""What the tools return: upstream's payload shapes, as JSON text plus ``structuredContent``.

Every tool answers with one JSON object, sent twice in the ``CallToolResult``:
encoded in ``content[0].text`` (what upstream clients parse and what a model
reads) and as ``structuredContent`` (for clients that want it typed).

An error the agent can act on (unknown session, busy session, generation
conflict, provider failure, ...) is a result too, with ``isError: true`` and the
body ``{"error", "code", "details"?, "hint"}``: ``code`` is the shared
:class:`meerkat.errors.ErrorCode`, ``hint`` says what to do next.
"""

from __future__ import annotations

from typing import Any

import mcp_types as types
import msgspec

from meerkat.errors import ErrorCode, MeerkatError
from meerkat.events import EventEnvelope
from meerkat.views import InterruptResult, RunResult, SessionView

__all__ = ["tool_result", "tool_error", "run_payload", "read_payload", "interrupt_payload", "event_payload",
           "HINTS"]

_encoder = msgspec.json.Encoder()

#: What an agent should do next after each error it can act on.
HINTS: dict[ErrorCode, str] = {
    ErrorCode.SESSION_NOT_FOUND: "Check the session_id; meerkat_sessions lists the live sessions "
                                 "(archived ones are gone).",
    ErrorCode.SESSION_BUSY: "A turn is already running on this session: wait for it (meerkat_event_stream_read "
                            "until run_completed or run_failed) or stop it with meerkat_interrupt, then retry.",
    ErrorCode.REQUEST_CANCELLED: "The turn was interrupted; what the model had already written is kept in the "
                                 "session. Continue with meerkat_resume.",
    ErrorCode.CONFIG_GENERATION_CONFLICT: "The config changed since you read it: call meerkat_config with "
                                          "action=get, then retry with the new generation.",
    ErrorCode.PROVIDER_ERROR: "The model provider failed. Retry later, or pick another model/provider "
                              "(meerkat_models_catalog); the session, if created, can be resumed.",
    ErrorCode.BUDGET_EXHAUSTED: "The session's token budget is spent; start a new session with meerkat_run.",
    ErrorCode.INVALID_PARAMS: "Fix the argument named in the error and call again.",
    ErrorCode.AGENT_ERROR: "The agent could not finish the run; the session can be resumed with meerkat_resume.",
    ErrorCode.STALE_CURSOR: "Events after your cursor were pruned: call meerkat_events_since again with "
                            "after = details.watermark.",
    ErrorCode.INBOX_FULL: "The session has too many external events waiting; retry once it has processed some.",
}


def tool_result(payload: dict[str, Any]) -> types.CallToolResult:
    """A successful result: ``payload`` as JSON text and as structured content."""
    return types.CallToolResult(content=[types.TextContent(text=_encoder.encode(payload).decode())],
                                structured_content=payload)


def tool_error(error: MeerkatError, **extra_details: Any) -> types.CallToolResult:
    """An ``isError`` result naming the error's code (``extra_details`` are merged into ``details``)."""
    body = error.to_dict()
    if extra_details:
        body["details"] = {**body.get("details", {}), **extra_details}
    hint = HINTS.get(error.code)
    if hint:
        body["hint"] = hint
    return types.CallToolResult(content=[types.TextContent(text=_encoder.encode(body).decode())],
                                structured_content=body, is_error=True)


#: Fields upstream's MCP run payload always carries, null here (no structured output or skills yet).
_UPSTREAM_NULLS = {"structured_output": None, "extraction_error": None, "schema_warnings": None,
                   "skill_diagnostics": None}


def run_payload(result: RunResult) -> dict[str, Any]:
    """``meerkat_run``/``meerkat_resume``: upstream's MCP fields (the answer as ``content``, nulls
    included) plus the RPC result's ``session_ref``, ``usage`` and ``run_usage``, and ``run_id``."""
    wire = result.to_wire()
    text = wire.pop("text")
    return {"content": [{"type": "text", "text": text}], **_UPSTREAM_NULLS, "run_id": result.run_id, **wire}


def _system_time(ms: int) -> dict[str, int]:
    """Upstream's serde ``SystemTime`` form, which ``meerkat_read`` uses for timestamps."""
    return {"secs_since_epoch": ms // 1000, "nanos_since_epoch": (ms % 1000) * 1_000_000}


def read_payload(view: SessionView) -> dict[str, Any]:
    """``meerkat_read``: ``{session_id, session_ref, state, billing}`` as upstream's MCP read."""
    state: dict[str, Any] = {
        "session_id": view.session_id,
        "created_at": _system_time(view.created_at_ms),
        "updated_at": _system_time(view.updated_at_ms),
        "message_count": view.message_count,
        "is_active": view.is_active,
        "model": view.model,
        "provider": view.provider,
        "last_assistant_text": view.last_assistant_text,
    }
    if view.running_run_id:
        state["running_run_id"] = view.running_run_id
    if view.labels:
        state["labels"] = dict(view.labels)
    usage = view.usage
    payload: dict[str, Any] = {
        "session_id": view.session_id,
        "state": state,
        "billing": {"total_tokens": usage.total_tokens, "usage": {
            "input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens,
            "cache_creation_tokens": usage.cache_creation_tokens, "cache_read_tokens": usage.cache_read_tokens}},
    }
    if view.session_ref:
        payload["session_ref"] = view.session_ref
    return payload


def interrupt_payload(result: InterruptResult) -> dict[str, Any]:
    """``meerkat_interrupt``: ``interrupted`` is always true as upstream; ``was_running`` tells the truth."""
    payload: dict[str, Any] = {"session_id": result.session_id, "interrupted": True,
                               "was_running": result.interrupted}
    if result.run_id:
        payload["run_id"] = result.run_id
    return payload


def event_payload(envelope: EventEnvelope) -> dict[str, Any]:
    """An event envelope as a JSON-ready dict (the same shape as REST SSE ``data:``)."""
    return msgspec.to_builtins(envelope)
