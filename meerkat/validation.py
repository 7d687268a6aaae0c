"""Checks on user input shared by every entry point; each error names the field."""

from __future__ import annotations

from typing import Any

from .errors import InvalidParams, SessionNotFound
from .ids import canonical_uuid
from .store.base import MAX_LIST_LIMIT

__all__ = ["validate_prompt", "validate_labels", "validate_optional_positive_int", "validate_page",
           "validate_cursor", "known_session_id", "json_kind", "MAX_OFFSET", "DEFAULT_LIMIT",
           "MAX_OUTPUT_TOKENS", "MAX_STORED_INT",
           "MAX_PROMPT_CHARS", "MAX_PROMPT_BLOCKS", "MAX_LABELS", "MAX_LABEL_KEY_CHARS", "MAX_LABEL_VALUE_CHARS"]

#: Largest ``max_tokens`` (output tokens per model call): the wire type is u32.
MAX_OUTPUT_TOKENS = 2**32 - 1
#: Largest count or seq a request may carry (token budgets, event cursors): the stores keep these as
#: signed 64-bit integers (SQLite's INTEGER), so a larger one would fail deep inside a store call.
MAX_STORED_INT = 2**63 - 1
#: Largest accepted ``offset`` (upstream's bound).
MAX_OFFSET = 1_000_000
#: Page size when none is given.
DEFAULT_LIMIT = 100
#: Largest prompt: a string of this many characters, or this many content blocks.
MAX_PROMPT_CHARS = 1_000_000
MAX_PROMPT_BLOCKS = 1_000
#: Labels per session, and the length of each key and value.
MAX_LABELS = 64
MAX_LABEL_KEY_CHARS = 128
MAX_LABEL_VALUE_CHARS = 1_024


def validate_prompt(prompt: Any) -> str | list[dict[str, Any]]:
    """A non-empty string, or a non-empty list of content blocks that each have a ``type``."""
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidParams("prompt must not be empty")
        if len(prompt) > MAX_PROMPT_CHARS:
            raise InvalidParams(f"prompt must be at most {MAX_PROMPT_CHARS} characters (got {len(prompt)})")
        return prompt
    if isinstance(prompt, list) and len(prompt) > MAX_PROMPT_BLOCKS:
        raise InvalidParams(f"prompt must have at most {MAX_PROMPT_BLOCKS} content blocks (got {len(prompt)})")
    if isinstance(prompt, list) and prompt and all(
        isinstance(b, dict) and isinstance(b.get("type"), str) for b in prompt
    ):
        return prompt
    raise InvalidParams("prompt must be a non-empty string or a list of content blocks, each with a 'type'")


def validate_labels(labels: Any, field: str = "labels") -> dict[str, str]:
    """An object of string keys to string values (None means none)."""
    if labels is None:
        return {}
    if not isinstance(labels, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in labels.items()):
        raise InvalidParams(f"{field} must be an object mapping strings to strings")
    if len(labels) > MAX_LABELS:
        raise InvalidParams(f"{field} may hold at most {MAX_LABELS} labels (got {len(labels)})")
    for key, value in labels.items():
        if len(key) > MAX_LABEL_KEY_CHARS or len(value) > MAX_LABEL_VALUE_CHARS:
            raise InvalidParams(f"{field}: a key may have at most {MAX_LABEL_KEY_CHARS} characters and a value at "
                                f"most {MAX_LABEL_VALUE_CHARS} (got key {key[:40]!r} of {len(key)}, value of "
                                f"{len(value)})", details={"label": key[:MAX_LABEL_KEY_CHARS]})
    return dict(labels)


def validate_optional_positive_int(value: Any, field: str, maximum: int = MAX_STORED_INT) -> int | None:
    """None, or an int in ``1..maximum`` (booleans are not ints here)."""
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 < value <= maximum:
        raise InvalidParams(f"{field} must be an integer between 1 and {maximum}, got {value!r}",
                            details={"field": field})
    return value


def validate_page(limit: Any, offset: Any) -> tuple[int, int]:
    """``(limit, offset)`` with defaults, within upstream's bounds."""
    if limit is None:
        limit = DEFAULT_LIMIT
    if offset is None:
        offset = 0
    if not isinstance(limit, int) or isinstance(limit, bool) or not 0 <= limit <= MAX_LIST_LIMIT:
        raise InvalidParams(f"limit must be an integer between 0 and {MAX_LIST_LIMIT}, got {limit!r}")
    if not isinstance(offset, int) or isinstance(offset, bool) or not 0 <= offset <= MAX_OFFSET:
        raise InvalidParams(f"offset must be an integer between 0 and {MAX_OFFSET}, got {offset!r}")
    return limit, offset


def validate_cursor(after_seq: Any, field: str = "after_seq") -> int | None:
    """None, or an event seq (an int in ``0..MAX_STORED_INT``) to resume after.

    ``field`` names it as the client sent it (``cursor.sequence``, a query parameter).
    """
    if after_seq is not None and (not isinstance(after_seq, int) or isinstance(after_seq, bool)
                                  or not 0 <= after_seq <= MAX_STORED_INT):
        raise InvalidParams(f"{field} must be an integer between 0 and {MAX_STORED_INT}, got {after_seq!r}",
                            details={"field": field})
    return after_seq


def known_session_id(session_id: Any) -> str:
    """The canonical form of a session id; anything that is not a UUID can't name a session."""
    canonical = canonical_uuid(session_id) if isinstance(session_id, str) else None
    if canonical is None:
        raise SessionNotFound(str(session_id))
    return canonical


def json_kind(value: Any) -> str:
    """What a decoded JSON value is, for error messages ("a string", "an array", "null")."""
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", list: "an array",
            dict: "an object"}.get(type(value), type(value).__name__)
