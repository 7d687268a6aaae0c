"""The provider interface: one streaming model call.

A provider turns a :class:`ProviderRequest` (model, system prompt, transcript,
tools, limits) into an async stream of :data:`ProviderItem`: text and reasoning
deltas, complete tool calls, a usage report and exactly one stop. The turn loop
knows nothing else about providers.
"""

from __future__ import annotations

from typing import Any, AsyncIterator, Protocol, Union

import msgspec

from ..events import StopReason
from ..transcript import Message
from ..usage import TurnUsage

__all__ = [
    "ToolSpec",
    "ProviderRequest",
    "TextChunk",
    "ReasoningChunk",
    "ToolCallChunk",
    "UsageReport",
    "StopChunk",
    "ProviderItem",
    "Provider",
    "ProviderCallError",
]


class ToolSpec(msgspec.Struct, frozen=True):
    """What the model sees of a tool: name, description, JSON Schema of its input."""

    name: str
    description: str
    input_schema: dict[str, Any]


class ProviderRequest(msgspec.Struct, frozen=True, kw_only=True):
    """One model call."""

    model: str
    messages: list[Message]
    system_prompt: str | None = None
    tools: list[ToolSpec] = []
    max_tokens: int = 16384
    provider_params: dict[str, Any] = {}
    #: The session's :class:`~meerkat.providers.wire_cache.WireCache`: the wire form of the rows
    #: already sent, so a call encodes only new rows (None: encode everything).
    wire_cache: Any = None


class TextChunk(msgspec.Struct, frozen=True):
    """Visible text as it arrives."""

    text: str


class ReasoningChunk(msgspec.Struct, frozen=True):
    """Thinking text as it arrives.

    ``signature`` is the vendor's opaque proof of a thinking block (Anthropic),
    sent once the block ends; ``response_item`` is a whole reasoning item with
    its encrypted content (OpenAI Responses). Either is stored with the block so
    the next call can hand the reasoning back, as the vendor requires during a
    tool loop.
    """

    text: str
    signature: str | None = None
    response_item: dict[str, Any] | None = None


class ToolCallChunk(msgspec.Struct, frozen=True):
    """A complete tool call (arguments are a JSON object).

    ``signature`` is an opaque vendor token bound to the call (Gemini's thought
    signature) that must be echoed back with it on the next call.
    """

    id: str
    name: str
    args: dict[str, Any]
    signature: str | None = None


class UsageReport(msgspec.Struct, frozen=True):
    """The call's usage, when the provider reports it.

    A provider may report more than once in a call (the input side as the stream
    starts, as Anthropic does, then the whole at its end): the last report is the
    call's, and an interrupted call is charged what was reported so far.
    """

    usage: TurnUsage


class StopChunk(msgspec.Struct, frozen=True):
    """The last item of every stream."""

    stop_reason: StopReason


ProviderItem = Union[TextChunk, ReasoningChunk, ToolCallChunk, UsageReport, StopChunk]


class ProviderCallError(Exception):
    """A model call failed; ``error_class``/``reason`` feed ``run_failed.error_report``.

    ``retry_kind`` is set when the failure may be retried (``rate_limited``,
    ``network_timeout``, ``call_timeout``, ``retryable_provider_error``);
    ``retry_after_ms`` is the server's hint, if it gave one.
    """

    def __init__(self, message: str, *, error_class: str = "llm", reason: dict[str, Any] | None = None,
                 retryable: bool = False, retry_kind: str | None = None, retry_after_ms: int | None = None,
                 provider: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.error_class = error_class
        self.reason = reason
        self.retry_kind = retry_kind or ("retryable_provider_error" if retryable else None)
        self.retryable = self.retry_kind is not None
        self.retry_after_ms = retry_after_ms
        self.provider = provider


class Provider(Protocol):
    """A model backend."""

    #: The provider's name as users select it (``mock``, ``anthropic``...).
    name: str

    def stream(self, request: ProviderRequest) -> AsyncIterator[ProviderItem]:
        """Run one call, yielding items as they arrive; raise ProviderCallError on failure."""
