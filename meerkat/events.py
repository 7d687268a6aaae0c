"""Agent events and their envelope, with exactly the upstream wire names.

Each event is a frozen msgspec Struct in one tagged union (:data:`AgentEvent`),
tagged by ``"type"``. Optional fields are omitted when unset, as upstream omits
them. Every event travels in an :class:`EventEnvelope` (``event_id``, ``source``,
``seq``, ``timestamp_ms``, ``payload``). Never invent event types: the published
SDK rejects names outside upstream's inventory.
"""

from __future__ import annotations

import time
from typing import Any, Literal, Union

import msgspec

from .ids import new_event_id
from .usage import TurnUsage, Usage

__all__ = [
    "StopReason",
    "ContentInput",
    "PendingToolResultsInput",
    "RunIdentity",
    "ErrorReport",
    "RunStarted",
    "TurnStarted",
    "ReasoningDelta",
    "ReasoningComplete",
    "TextDelta",
    "TextComplete",
    "ToolCallRequested",
    "ToolExecutionStarted",
    "ToolExecutionCompleted",
    "ToolResultReceived",
    "TurnCompleted",
    "RunCompleted",
    "RunFailed",
    "BudgetWarning",
    "StreamTruncated",
    "StreamLagged",
    "TurnUsageAccountingUnmeasured",
    "UnmeasuredUsage",
    "RetryFailure",
    "RetryPlan",
    "RetrySchedule",
    "Retrying",
    "AgentEvent",
    "SessionSource",
    "EventEnvelope",
    "encode_envelope",
    "decode_envelope",
    "make_envelope",
    "lag_marker",
    "TERMINAL_EVENT_TYPES",
]

StopReason = Literal[
    "end_turn",
    "tool_use",
    "max_tokens",
    "stop_sequence",
    "content_filter",
    "cancelled",
    "refusal",
    "pause_turn",
    "context_window_exceeded",
]

_EVENT = dict(tag_field="type", frozen=True, kw_only=True, omit_defaults=True)


# -- payload parts -----------------------------------------------------------


class ContentInput(msgspec.Struct, tag_field="kind", tag="content", frozen=True):
    """A run's input: the user's content (a string or content blocks)."""

    content: str | list[dict[str, Any]]


class PendingToolResultsInput(msgspec.Struct, tag_field="kind", tag="pending_tool_results", frozen=True):
    """A run resumed with tool results submitted after a callback pause."""


class RunIdentity(msgspec.Struct, frozen=True, omit_defaults=True):
    """Who a run is: ``run_id`` is what an interrupt or a busy error names."""

    run_id: str | None = None
    interaction_id: str | None = None


class ErrorReport(msgspec.Struct, frozen=True, omit_defaults=True, rename={"error_class": "class"}):
    """Why a run failed: ``class`` (e.g. ``cancelled``, ``llm``), a message, an optional reason."""

    error_class: str
    message: str
    reason: dict[str, Any] | None = None


class StreamLagged(msgspec.Struct, tag_field="kind", tag="stream_lagged", frozen=True):
    """The subscriber fell behind and ``dropped`` events were skipped for it."""

    dropped: int


class UnmeasuredUsage(msgspec.Struct, frozen=True):
    """The provider and model whose call reported no usage."""

    provider: str
    model: str


class RetryFailure(msgspec.Struct, frozen=True, omit_defaults=True):
    """The recoverable failure a retry answers (``kind``: rate_limited, network_timeout,
    call_timeout or retryable_provider_error)."""

    provider: str
    kind: Literal["rate_limited", "network_timeout", "call_timeout", "retryable_provider_error"]
    message: str
    retry_after_ms: int | None = None
    duration_ms: int | None = None


class RetryPlan(msgspec.Struct, frozen=True, omit_defaults=True):
    """When the retry happens: attempt (1-based) and how its delay was chosen."""

    attempt: int
    max_retries: int
    computed_delay_ms: int
    selected_delay_ms: int
    rate_limit_floor_applied: bool
    budget_capped: bool
    retry_after_hint_ms: int | None = None


class RetrySchedule(msgspec.Struct, frozen=True):
    """The ``retrying`` payload: what failed and the plan for the next attempt."""

    failure: RetryFailure
    plan: RetryPlan


# -- events ------------------------------------------------------------------


class RunStarted(msgspec.Struct, tag="run_started", **_EVENT):
    session_id: str
    input: ContentInput | PendingToolResultsInput
    identity: RunIdentity | None = None


class TurnStarted(msgspec.Struct, tag="turn_started", **_EVENT):
    turn_number: int
    assistant_message_id: str | None = None


class ReasoningDelta(msgspec.Struct, tag="reasoning_delta", **_EVENT):
    delta: str
    assistant_message_id: str | None = None


class ReasoningComplete(msgspec.Struct, tag="reasoning_complete", **_EVENT):
    content: str
    assistant_message_id: str | None = None


class TextDelta(msgspec.Struct, tag="text_delta", **_EVENT):
    delta: str
    assistant_message_id: str | None = None


class TextComplete(msgspec.Struct, tag="text_complete", **_EVENT):
    content: str
    assistant_message_id: str | None = None


class ToolCallRequested(msgspec.Struct, tag="tool_call_requested", **_EVENT):
    id: str
    name: str
    args: dict[str, Any]


class ToolExecutionStarted(msgspec.Struct, tag="tool_execution_started", **_EVENT):
    id: str
    name: str


class ToolExecutionCompleted(msgspec.Struct, tag="tool_execution_completed", **_EVENT):
    id: str
    name: str
    is_error: bool
    duration_ms: int


class ToolResultReceived(msgspec.Struct, tag="tool_result_received", **_EVENT):
    id: str
    name: str
    content: list[dict[str, Any]]
    is_error: bool


class TurnCompleted(msgspec.Struct, tag="turn_completed", **_EVENT):
    stop_reason: StopReason
    usage: TurnUsage | None = None
    assistant_message_id: str | None = None


class RunCompleted(msgspec.Struct, tag="run_completed", **_EVENT):
    session_id: str
    result: str
    usage: Usage
    #: Always sent (upstream sends it even when false).
    extraction_required: bool
    terminal_cause_kind: str | None = None
    assistant_message_id: str | None = None
    identity: RunIdentity | None = None


class RunFailed(msgspec.Struct, tag="run_failed", **_EVENT):
    session_id: str
    error_report: ErrorReport
    terminal_cause_kind: str | None = None
    identity: RunIdentity | None = None


class Retrying(msgspec.Struct, tag="retrying", **_EVENT):
    retry: RetrySchedule
    #: The same id as the attempt being retried: consumers drop what they buffered for it.
    assistant_message_id: str | None = None


class BudgetWarning(msgspec.Struct, tag="budget_warning", **_EVENT):
    budget_type: Literal["tokens", "time", "tool_calls"]
    used: int
    limit: int
    percent: float


class StreamTruncated(msgspec.Struct, tag="stream_truncated", **_EVENT):
    reason: StreamLagged


class TurnUsageAccountingUnmeasured(msgspec.Struct, tag="turn_usage_accounting_unmeasured", **_EVENT):
    session_id: str
    unmeasured: UnmeasuredUsage


AgentEvent = Union[
    RunStarted,
    TurnStarted,
    ReasoningDelta,
    ReasoningComplete,
    TextDelta,
    TextComplete,
    ToolCallRequested,
    ToolExecutionStarted,
    ToolExecutionCompleted,
    ToolResultReceived,
    TurnCompleted,
    RunCompleted,
    RunFailed,
    Retrying,
    BudgetWarning,
    StreamTruncated,
    TurnUsageAccountingUnmeasured,
]

#: Payload types that end a run; exactly one is published per run.
TERMINAL_EVENT_TYPES: frozenset[str] = frozenset({"run_completed", "run_failed"})


# -- envelope ----------------------------------------------------------------


class SessionSource(msgspec.Struct, tag_field="type", tag="session", frozen=True):
    """The event came from a session."""

    session_id: str


class EventEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """One event on the wire: id, source, per-session ``seq``, wall-clock time, payload.

    ``seq`` starts at 1 and never resets for a session; 0 marks a synthetic
    per-subscriber lag marker that must not move a cursor.
    """

    event_id: str
    source: SessionSource
    seq: int
    timestamp_ms: int
    payload: AgentEvent

    @property
    def type(self) -> str:
        """The payload's wire type, e.g. ``"text_delta"``."""
        return self.payload.__struct_config__.tag  # type: ignore[return-value]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(EventEnvelope)


def make_envelope(session_id: str, seq: int, payload: AgentEvent) -> EventEnvelope:
    """Wrap a payload for publication by session ``session_id``."""
    return EventEnvelope(
        event_id=new_event_id(),
        source=SessionSource(session_id),
        seq=seq,
        timestamp_ms=time.time_ns() // 1_000_000,
        payload=payload,
    )


def lag_marker(session_id: str, dropped: int) -> EventEnvelope:
    """The synthetic ``stream_truncated`` envelope (seq 0) for a lagging subscriber."""
    return make_envelope(session_id, 0, StreamTruncated(reason=StreamLagged(dropped)))


def encode_envelope(envelope: EventEnvelope) -> bytes:
    """Encode an envelope as compact JSON bytes."""
    return _encoder.encode(envelope)


def decode_envelope(data: bytes | str) -> EventEnvelope:
    """Decode and validate an envelope; raises ``msgspec.ValidationError`` on bad input."""
    return _decoder.decode(data)
