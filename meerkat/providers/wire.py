"""The transcript as a plain alternating conversation, ready for any vendor.

Every vendor wants a slightly different request, but they all want the same
clean-up of the stored transcript first, done here once:

* system rows are dropped (the system prompt travels separately);
* assistant rows with nothing to say (an interrupt before the first token) are
  skipped, and reasoning without a vendor signature is not sent back;
* consecutive user-side rows (a user message after a failed run, tool results
  followed by a new prompt) are merged into one user turn, so roles alternate;
* each tool result knows the name of the tool it answers (Gemini needs it).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Literal, Sequence, Union

from ..transcript import BlockAssistantMessage, Message, ToolResultsMessage, UserMessage

__all__ = ["TextPart", "ImagePart", "ReasoningPart", "ToolUsePart", "ToolResultPart", "Part", "Turn",
           "conversation", "content_text", "args_json"]


@dataclass(frozen=True, slots=True)
class TextPart:
    text: str


@dataclass(frozen=True, slots=True)
class ImagePart:
    media_type: str
    data: str  # base64


@dataclass(frozen=True, slots=True)
class ReasoningPart:
    """Reasoning the vendor wants back: Anthropic's signed thinking, or OpenAI's reasoning items.

    ``signature`` is Anthropic's proof of a thinking block; ``items`` are the
    Responses API's reasoning items (``encrypted_content`` included) as the
    vendor returned them. Each vendor sends back only its own kind.
    """

    text: str
    signature: str | None = None
    items: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True, slots=True)
class ToolUsePart:
    id: str
    name: str
    args: dict[str, Any]
    signature: str | None = None


@dataclass(frozen=True, slots=True)
class ToolResultPart:
    tool_use_id: str
    name: str
    text: str
    is_error: bool = False


Part = Union[TextPart, ImagePart, ReasoningPart, ToolUsePart, ToolResultPart]


@dataclass(slots=True)
class Turn:
    """One side's contiguous contribution: ``user`` (prompts, tool results) or ``assistant``."""

    role: Literal["user", "assistant"]
    parts: list[Part] = field(default_factory=list)


def content_text(content: str | list[dict[str, Any]]) -> str:
    """The text of a string or a list of content blocks (non-text blocks are skipped)."""
    if isinstance(content, str):
        return content
    return "".join(str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text")


def args_json(args: dict[str, Any]) -> str:
    """Tool arguments as the compact JSON string OpenAI-style APIs want."""
    return json.dumps(args, separators=(",", ":"), ensure_ascii=False)


def _user_parts(content: str | list[dict[str, Any]]) -> list[Part]:
    if isinstance(content, str):
        return [TextPart(content)] if content else []
    parts: list[Part] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            parts.append(TextPart(str(block["text"])))
        elif kind == "image":
            raw_source = block.get("source")
            source: dict[str, Any] = raw_source if isinstance(raw_source, dict) else {}
            data = source.get("data") if source.get("type") in ("inline", "base64") else None
            if isinstance(data, str) and isinstance(block.get("media_type"), str):
                parts.append(ImagePart(block["media_type"], data))
            else:
                parts.append(TextPart("[image not available to this provider]"))
    return parts


def _assistant_parts(message: BlockAssistantMessage) -> list[Part]:
    parts: list[Part] = []
    for block in message.blocks:
        data = block.data
        if block.block_type == "text" and data.get("text"):
            parts.append(TextPart(str(data["text"])))
        elif block.block_type == "reasoning":
            signature = data.get("signature") if isinstance(data.get("signature"), str) else None
            raw_items = data.get("response_items")
            items = tuple(i for i in raw_items if isinstance(i, dict)) if isinstance(raw_items, list) else ()
            if signature is not None or items:
                parts.append(ReasoningPart(str(data.get("text") or ""), signature, items))
        elif block.block_type == "tool_use":
            args = data.get("args")
            parts.append(ToolUsePart(str(data["id"]), str(data["name"]), args if isinstance(args, dict) else {},
                                     data.get("signature") if isinstance(data.get("signature"), str) else None))
    return parts


def conversation(messages: Sequence[Message], tool_names: dict[str, str] | None = None,
                 starts: list[int] | None = None) -> list[Turn]:
    """The transcript as alternating user/assistant turns (see the module docstring).

    For incremental builds (:mod:`.wire_cache`): ``tool_names`` carries the names
    of tool calls made in rows converted earlier (and learns this call's), and
    ``starts`` receives, per turn, the index of the first row it came from.
    """
    turns: list[Turn] = []
    tool_names = {} if tool_names is None else tool_names
    index = 0

    def add(role: Literal["user", "assistant"], parts: list[Part]) -> None:
        if not parts:
            return
        if turns and turns[-1].role == role:
            turns[-1].parts.extend(parts)
        else:
            turns.append(Turn(role, parts))
            if starts is not None:
                starts.append(index)

    for index, message in enumerate(messages):
        if isinstance(message, UserMessage):
            add("user", _user_parts(message.content))
        elif isinstance(message, BlockAssistantMessage):
            parts = _assistant_parts(message)
            for part in parts:
                if isinstance(part, ToolUsePart):
                    tool_names[part.id] = part.name
            # Reasoning alone is no answer: sending it back would leave an empty turn.
            if any(not isinstance(p, ReasoningPart) for p in parts):
                add("assistant", parts)
        elif isinstance(message, ToolResultsMessage):
            add("user", [ToolResultPart(r.tool_use_id, tool_names.get(r.tool_use_id, "tool"),
                                        content_text(r.content), r.is_error) for r in message.results])
    return turns
