"""Transcript history on the wire: rows, selections, reasons and commits as clients send and read them.

The shapes are those of the published ``meerkat-sdk`` 0.9.6 (``TranscriptRewriteMessage``,
``TranscriptRewriteSelection``, ``TranscriptRewriteReason``, ``WireTranscriptReplacement``,
the rewrite ``commit``); every surface parses them here, so a bad field gets
the same message naming it everywhere.
"""

from __future__ import annotations

import hashlib
from typing import Any

import msgspec

from .errors import InvalidParams
from .store.revisions import RevisionCommit
from .transcript import (
    AssistantBlock,
    InstructionRevision,
    BlockAssistantMessage,
    Message,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    now_rfc3339,
)
from .validation import json_kind, validate_prompt

__all__ = [
    "row_from_wire",
    "rows_from_wire",
    "parse_selection",
    "parse_reason",
    "optional_string",
    "require_int",
    "commit_wire",
    "apply_replacement",
    "parse_activation_request",
    "MAX_BODY_CHARS",
]

_ROLES = ("system", "user", "block_assistant", "tool_results")
#: Longest system prompt or instruction body accepted (characters).
MAX_BODY_CHARS = 1 << 20


def require_int(value: Any, name: str, *, minimum: int = 0) -> int:
    """A whole number >= ``minimum`` (booleans refused), else INVALID_PARAMS naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise InvalidParams(f"{name} must be an integer, got {json_kind(value)}")
    if value < minimum:
        raise InvalidParams(f"{name} must be >= {minimum}, got {value}")
    return value


def optional_string(value: Any, name: str, *, max_chars: int = 4096) -> str | None:
    """None, or a string of at most ``max_chars`` characters."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidParams(f"{name} must be a string, got {json_kind(value)}")
    if len(value) > max_chars:
        raise InvalidParams(f"{name} is longer than {max_chars} characters")
    return value


def row_from_wire(value: Any, where: str) -> Message:
    """One transcript row as a client sends it (the ``session/history`` shape; ``created_at`` optional)."""
    if not isinstance(value, dict):
        raise InvalidParams(f"{where} must be an object, got {json_kind(value)}")
    role = value.get("role")
    if role == "system_notice":
        raise InvalidParams(f"{where}: system_notice rows are not supported by this host")
    if role not in _ROLES:
        raise InvalidParams(f"{where}.role must be one of {', '.join(_ROLES)}, got {role!r}")
    body = {k: v for k, v in value.items() if v is not None}
    body.setdefault("created_at", now_rfc3339())
    if role == "block_assistant":
        body.setdefault("stop_reason", "end_turn")
    try:
        row = msgspec.convert(body, type=Message)
    except msgspec.ValidationError as exc:
        raise InvalidParams(f"{where}: {exc}") from None
    if isinstance(row, UserMessage):
        try:
            validate_prompt(row.content)
        except InvalidParams as exc:
            raise InvalidParams(f"{where}.content: {exc.message}") from None
    return row


def rows_from_wire(value: Any, name: str) -> list[Message]:
    """A list of rows (``replacement``)."""
    if not isinstance(value, list):
        raise InvalidParams(f"{name} must be an array of transcript messages, got {json_kind(value)}")
    return [row_from_wire(item, f"{name}[{i}]") for i, item in enumerate(value)]


def parse_selection(value: Any) -> tuple[int, int, dict[str, Any]]:
    """``(start, end, selection)`` of a ``TranscriptRewriteSelection`` (``end`` exclusive)."""
    if not isinstance(value, dict):
        raise InvalidParams(f"selection must be an object, got {json_kind(value)}")
    kind = value.get("type")
    if kind == "message_range":
        start = require_int(value.get("start"), "selection.start")
        end = require_int(value.get("end"), "selection.end")
        selection = {"type": kind, "start": start, "end": end}
    elif kind in ("edit_message_range", "compaction_message_range"):
        span = value.get("range")
        if not isinstance(span, dict):
            raise InvalidParams(f"selection.range must be an object, got {json_kind(span)}")
        start = require_int(span.get("start"), "selection.range.start")
        end = require_int(span.get("end"), "selection.range.end")
        selection = {"type": kind, "range": {"start": start, "end": end}}
    else:
        raise InvalidParams('selection.type must be "message_range", "edit_message_range" or '
                            f'"compaction_message_range", got {kind!r}')
    if end < start:
        raise InvalidParams(f"selection end ({end}) is before its start ({start})")
    return start, end, selection


def parse_reason(value: Any) -> tuple[str, str | None]:
    """``(kind, note)`` of a ``TranscriptRewriteReason`` (a bare string is taken as its kind)."""
    if isinstance(value, str):
        value = {"kind": value}
    if not isinstance(value, dict):
        raise InvalidParams(f"reason must be an object {{kind, note?}}, got {json_kind(value)}")
    kind = optional_string(value.get("kind"), "reason.kind", max_chars=256)
    if not kind:
        raise InvalidParams("reason.kind must be a non-empty string")
    return kind, optional_string(value.get("note"), "reason.note")


def commit_wire(commit: RevisionCommit) -> dict[str, Any]:
    """The rewrite ``commit`` object of a rewrite / restore / system-prompt result."""
    return {
        "parent_revision": commit.parent_revision,
        "revision": commit.revision,
        "original_span_digest": commit.original_span_digest,
        "replacement_digest": commit.replacement_digest,
        "actor": commit.actor,
        "messages_before": commit.messages_before,
        "messages_after": commit.messages_after,
        "reason": {"kind": commit.reason_kind, "note": commit.reason_note},
        "selection": commit.selection,
        "committed_at": {"secs_since_epoch": commit.committed_at_ns // 1_000_000_000,
                         "nanos_since_epoch": commit.committed_at_ns % 1_000_000_000},
        **({"restored_from": commit.restored_from} if commit.restored_from else {}),
    }


def _index(value: Any, name: str, size: int, what: str) -> int:
    index = require_int(value, name)
    if index >= size:
        raise InvalidParams(f"{name} {index} is out of range: the {what} has {size}")
    return index


def apply_replacement(row: Message | None, replacement: Any) -> Message:
    """The row a ``WireTranscriptReplacement`` makes of ``row`` (the row at the fork point)."""
    if not isinstance(replacement, dict):
        raise InvalidParams(f"replacement must be an object, got {json_kind(replacement)}")
    kind = replacement.get("type")
    if kind == "message":
        return row_from_wire(replacement.get("message"), "replacement.message")
    if kind not in ("user_content_block", "assistant_block", "tool_result_content_block"):
        raise InvalidParams('replacement.type must be "message", "user_content_block", "assistant_block" or '
                            f'"tool_result_content_block", got {kind!r}')
    block = replacement.get("block")
    if not isinstance(block, dict):
        raise InvalidParams(f"replacement.block must be an object, got {json_kind(block)}")
    if kind == "user_content_block":
        if not isinstance(row, UserMessage):
            raise InvalidParams("replacement user_content_block: the message at message_index is not a user message")
        blocks = ([{"type": "text", "text": row.content}] if isinstance(row.content, str) else list(row.content))
        blocks[_index(replacement.get("block_index"), "replacement.block_index", len(blocks), "message's blocks")] \
            = block
        validate_prompt(blocks)
        return msgspec.structs.replace(row, content=blocks, created_at=now_rfc3339())
    if kind == "assistant_block":
        if not isinstance(row, BlockAssistantMessage):
            raise InvalidParams("replacement assistant_block: the message at message_index is not an assistant message")
        new_block = _assistant_block(block)
        blocks_a = list(row.blocks)
        blocks_a[_index(replacement.get("block_index"), "replacement.block_index", len(blocks_a),
                        "message's blocks")] = new_block
        return msgspec.structs.replace(row, blocks=blocks_a, created_at=now_rfc3339())
    if not isinstance(row, ToolResultsMessage):
        raise InvalidParams("replacement tool_result_content_block: the message at message_index is not a "
                            "tool_results message")
    results = list(row.results)
    r = _index(replacement.get("result_index"), "replacement.result_index", len(results), "message's results")
    content = results[r].content
    parts = [{"type": "text", "text": content}] if isinstance(content, str) else list(content)
    parts[_index(replacement.get("block_index"), "replacement.block_index", len(parts), "result's blocks")] = block
    results[r] = ToolResult(tool_use_id=results[r].tool_use_id, content=parts, is_error=results[r].is_error)
    return msgspec.structs.replace(row, results=results, created_at=now_rfc3339())


def _assistant_block(value: dict[str, Any]) -> AssistantBlock:
    block_type = value.get("block_type")
    data = value.get("data", {})
    if not isinstance(block_type, str) or not isinstance(data, dict):
        raise InvalidParams("replacement.block must be {block_type: string, data: object}")
    return AssistantBlock(block_type, data)


def parse_activation_request(value: Any) -> dict[str, Any]:
    """The fields of an ``InstructionActivationRequest``, checked."""
    if not isinstance(value, dict):
        raise InvalidParams("activation must be an object")
    revision = value.get("revision")
    if not isinstance(revision, dict):
        raise InvalidParams("activation.revision must be an object {namespace, key, revision_id, content_sha256}")
    parts = {}
    for name in ("namespace", "key", "revision_id", "content_sha256"):
        text = optional_string(revision.get(name), f"activation.revision.{name}", max_chars=256)
        if not text:
            raise InvalidParams(f"activation.revision.{name} must be a non-empty string")
        parts[name] = text
    activation_id = optional_string(value.get("activation_id"), "activation.activation_id", max_chars=256)
    if not activation_id:
        raise InvalidParams("activation.activation_id must be a non-empty string")
    body = value.get("body")
    if not isinstance(body, str) or not body:
        raise InvalidParams("activation.body must be a non-empty string")
    if len(body) > MAX_BODY_CHARS:
        raise InvalidParams(f"activation.body is longer than {MAX_BODY_CHARS} characters")
    digest = hashlib.sha256(body.encode()).hexdigest()
    claimed = parts["content_sha256"].removeprefix("sha256:").lower()
    if len(claimed) == 64 and all(c in "0123456789abcdef" for c in claimed) and claimed != digest:
        raise InvalidParams("activation.revision.content_sha256 does not match the body's sha256")
    expectation = value.get("expectation")
    if not isinstance(expectation, dict) or expectation.get("kind") not in ("absent", "effective"):
        raise InvalidParams('activation.expectation must be {"kind": "absent"} or '
                            '{"kind": "effective", "activation_id": ...}')
    expected = None
    if expectation["kind"] == "effective":
        expected = optional_string(expectation.get("activation_id"), "activation.expectation.activation_id")
        if not expected:
            raise InvalidParams("activation.expectation.activation_id must be a non-empty string")
    return {"revision": InstructionRevision(**parts), "activation_id": activation_id, "body": body,
            "expected": expected,
            "supersedes": optional_string(value.get("supersedes"), "activation.supersedes", max_chars=256)}
