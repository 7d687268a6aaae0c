"""The typed transcript: the rows a session's history is made of.

Rows are tagged by ``role`` exactly as ``session/history`` shows them to the
published SDK: ``system``, ``user``, ``block_assistant`` and ``tool_results``.
An assistant row holds blocks (``text``, ``reasoning``, ``tool_use``), each
``{"block_type": ..., "data": {...}}``.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Union

import msgspec

from .events import StopReason

__all__ = [
    "AssistantBlock",
    "ToolResult",
    "SystemMessage",
    "PromptVersion",
    "InstructionRevision",
    "InstructionActivation",
    "UserMessage",
    "BlockAssistantMessage",
    "ToolResultsMessage",
    "Message",
    "text_block",
    "tool_use_block",
    "reasoning_block",
    "now_rfc3339",
    "now_ms",
    "rfc3339_from_ms",
    "encode_message",
    "decode_message",
    "encode_messages",
    "decode_messages",
]

# Rows are plain data that never form reference cycles, so the cyclic GC need not
# track them: a process holding long transcripts otherwise pays a full collection
# proportional to every row it holds (113 ms for 20 sessions of 5,000 rows, 45 ms
# untracked), a stall of the event loop that grows with history.
_ROW = dict(tag_field="role", frozen=True, kw_only=True, omit_defaults=True, gc=False)


def now_ms() -> int:
    """The current wall-clock time in Unix milliseconds (what records and leases store)."""
    return time.time_ns() // 1_000_000


def now_rfc3339() -> str:
    """The current UTC time as RFC 3339 with an explicit offset, as upstream writes it."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def rfc3339_from_ms(unix_ms: int) -> str:
    """A Unix time in milliseconds as RFC 3339, in the same form as :func:`now_rfc3339`."""
    return datetime.fromtimestamp(unix_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")


class AssistantBlock(msgspec.Struct, frozen=True, gc=False):
    """One block of an assistant row: ``block_type`` plus its ``data``."""

    block_type: str
    data: dict[str, Any]


class ToolResult(msgspec.Struct, frozen=True, kw_only=True, gc=False):
    """The result of one tool call, in the row that follows the call."""

    tool_use_id: str
    content: str | list[dict[str, Any]]
    is_error: bool = False


class PromptVersion(msgspec.Struct, frozen=True, kw_only=True):
    """The identity of a versioned system-prompt row: its key and version (from 1)."""

    key: str
    version: int


class InstructionRevision(msgspec.Struct, frozen=True, kw_only=True):
    """An application's immutable instruction artifact: where it lives and its content hash."""

    namespace: str
    key: str
    revision_id: str
    content_sha256: str


class InstructionActivation(msgspec.Struct, frozen=True, kw_only=True):
    """The identity sealed onto the system row that activated an instruction revision."""

    activation_id: str
    revision: InstructionRevision
    origin_session_id: str
    render_version: int = 1
    supersedes: str | None = None


class SystemMessage(msgspec.Struct, tag="system", **_ROW):
    content: str
    created_at: str
    #: Set on context injected into the session (``session/inject_context``): who
    #: injected it. Such rows reach the model; the session's first system row
    #: (its system prompt, which has no source) goes as the system prompt.
    source: str | None = None
    #: Set on a row minted by ``update_system_prompt`` (a keyed, versioned prompt slot).
    prompt_version: PromptVersion | None = None
    #: Set on a row appended by ``activate_instruction``.
    instruction_activation: InstructionActivation | None = None


class UserMessage(msgspec.Struct, tag="user", **_ROW):
    content: str | list[dict[str, Any]]
    created_at: str
    run_id: str | None = None


class BlockAssistantMessage(msgspec.Struct, tag="block_assistant", **_ROW):
    blocks: list[AssistantBlock]
    stop_reason: StopReason
    created_at: str
    assistant_message_id: str | None = None
    run_id: str | None = None


class ToolResultsMessage(msgspec.Struct, tag="tool_results", **_ROW):
    results: list[ToolResult]
    created_at: str
    run_id: str | None = None


Message = Union[SystemMessage, UserMessage, BlockAssistantMessage, ToolResultsMessage]


def text_block(text: str) -> AssistantBlock:
    """A ``text`` block."""
    return AssistantBlock("text", {"text": text})


def reasoning_block(text: str) -> AssistantBlock:
    """A ``reasoning`` block."""
    return AssistantBlock("reasoning", {"text": text})


def tool_use_block(call_id: str, name: str, args: dict[str, Any]) -> AssistantBlock:
    """A ``tool_use`` block naming the call the next ``tool_results`` row answers."""
    return AssistantBlock("tool_use", {"id": call_id, "name": name, "args": args})


_encoder = msgspec.json.Encoder()
_one = msgspec.json.Decoder(Message)
_many = msgspec.json.Decoder(list[Message])


def encode_message(message: Message) -> bytes:
    """One row as JSON bytes."""
    return _encoder.encode(message)


def decode_message(data: bytes | str) -> Message:
    """One row from JSON bytes."""
    return _one.decode(data)


def encode_messages(messages: list[Message]) -> bytes:
    """Rows as a JSON array."""
    return _encoder.encode(messages)


def decode_messages(data: bytes | str) -> list[Message]:
    """Rows from a JSON array."""
    return _many.decode(data)
