"""What the host returns: run results, session views, list entries, history pages.

These are the in-process API's return types. Each has ``to_wire()`` giving the
JSON shape the published SDK expects from ``rkat-rpc`` (the REST and MCP
surfaces use the same shapes), so every surface answers alike.
"""

from __future__ import annotations

from typing import Any

import re

import msgspec

from .errors import InvalidParams
from .ids import UUID_SPELLINGS, canonical_uuid
from .store.base import SessionRecord
from .transcript import Message
from .usage import Usage

__all__ = ["RunResult", "SessionView", "SessionSummary", "HistoryPage", "InterruptResult", "session_ref",
           "session_id_from_ref"]


def session_ref(realm_id: str | None, session_id: str) -> str | None:
    """``<realm_id>:<session_id>``, the cross-surface handle upstream returns."""
    return f"{realm_id}:{session_id}" if realm_id else None


_SPELLING_RE = re.compile(UUID_SPELLINGS)


def session_id_from_ref(ref: str, realm_id: str) -> str:
    """The session id that ``ref`` names in realm ``realm_id``: a UUID, or ``<realm_id>:<uuid>``.

    InvalidParams if it is neither, or if it names another realm (realm ids hold no ``:``).
    The UUID may be spelt as :data:`~meerkat.ids.UUID_SPELLINGS` says, no other way
    (Python's parser would also take ``+``, ``_``, spaces and hyphens anywhere).
    """
    realm, sep, raw_id = ref.rpartition(":")
    session_id = canonical_uuid(raw_id) if _SPELLING_RE.fullmatch(raw_id) else None
    if session_id is None:
        raise InvalidParams(f"Invalid session ref {ref!r}: expected a session id (UUID) or <realm>:<uuid>",
                            details={"session_id": ref})
    if sep and realm != realm_id:
        raise InvalidParams(f"Session belongs to realm '{realm}', but the active realm is '{realm_id}'",
                            details={"session_id": ref, "realm_id": realm})
    return session_id


class RunResult(msgspec.Struct, frozen=True, kw_only=True):
    """The end of a run: its final text, counts and the session's cumulative usage."""

    session_id: str
    run_id: str | None
    text: str
    turns: int
    tool_calls: int
    usage: Usage
    run_usage: Usage
    terminal_cause_kind: str | None = None
    session_ref: str | None = None
    #: Why the last model call stopped (``end_turn``, ``max_tokens``...); not on the upstream wire.
    stop_reason: str | None = None
    #: The model that answered; not on the upstream wire.
    model: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``WireRunResult`` shape of ``session/create`` and ``turn/start``."""
        body: dict[str, Any] = {
            "session_id": self.session_id,
            "text": self.text,
            "turns": self.turns,
            "tool_calls": self.tool_calls,
            "usage": self.usage.to_wire(),
            "run_usage": self.run_usage.to_wire(),
        }
        if self.session_ref:
            body["session_ref"] = self.session_ref
        if self.terminal_cause_kind:
            body["terminal_cause_kind"] = self.terminal_cause_kind
        return body


def _session_wire(record: "SessionView | SessionSummary", total_tokens: int) -> dict[str, Any]:
    """The fields ``session/read`` and ``session/list`` entries share (timestamps in Unix seconds)."""
    body: dict[str, Any] = {
        "session_id": record.session_id,
        "created_at": record.created_at_ms // 1000,
        "updated_at": record.updated_at_ms // 1000,
        "message_count": record.message_count,
        "total_tokens": total_tokens,
        "is_active": record.is_active,
        "labels": dict(record.labels),
    }
    if record.session_ref:
        body["session_ref"] = record.session_ref
    return body


class SessionView(msgspec.Struct, frozen=True, kw_only=True):
    """One session as ``read`` shows it."""

    session_id: str
    created_at_ms: int
    updated_at_ms: int
    message_count: int
    is_active: bool
    running_run_id: str | None
    model: str
    provider: str
    system_prompt: str | None
    max_tokens: int | None
    provider_params: dict[str, Any]
    labels: dict[str, str]
    usage: Usage
    last_assistant_text: str | None
    session_ref: str | None = None

    @classmethod
    def from_record(cls, record: SessionRecord, *, running_run_id: str | None, realm_id: str | None) -> "SessionView":
        """Build from the stored record plus the live running state."""
        return cls(
            session_id=record.session_id,
            created_at_ms=record.created_at_ms,
            updated_at_ms=record.updated_at_ms,
            message_count=record.message_count,
            is_active=running_run_id is not None,
            running_run_id=running_run_id,
            model=record.model,
            provider=record.provider,
            system_prompt=record.system_prompt,
            max_tokens=record.max_tokens,
            provider_params=dict(record.provider_params),
            labels=dict(record.labels),
            usage=record.usage,
            last_assistant_text=record.last_assistant_text,
            session_ref=session_ref(realm_id, record.session_id),
        )

    def to_wire(self) -> dict[str, Any]:
        """The ``session/read`` shape."""
        body = _session_wire(self, self.usage.total_tokens)
        body.update(model=self.model, provider=self.provider, last_assistant_text=self.last_assistant_text,
                    usage=self.usage.to_wire())
        return body


class SessionSummary(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of ``list``."""

    session_id: str
    created_at_ms: int
    updated_at_ms: int
    message_count: int
    total_tokens: int
    is_active: bool
    labels: dict[str, str]
    model: str
    provider: str
    session_ref: str | None = None

    @classmethod
    def from_record(cls, record: SessionRecord, *, is_active: bool, realm_id: str | None) -> "SessionSummary":
        """Build from the stored record plus whether a turn is running."""
        return cls(
            session_id=record.session_id, created_at_ms=record.created_at_ms, updated_at_ms=record.updated_at_ms,
            message_count=record.message_count, total_tokens=record.usage.total_tokens, is_active=is_active,
            labels=dict(record.labels), model=record.model, provider=record.provider,
            session_ref=session_ref(realm_id, record.session_id))

    def to_wire(self) -> dict[str, Any]:
        """The ``session/list`` entry shape."""
        return _session_wire(self, self.total_tokens)


class HistoryPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of a session's transcript, oldest first."""

    session_id: str
    message_count: int
    offset: int
    limit: int | None
    has_more: bool
    messages: list[Message]
    session_ref: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """The ``session/history`` shape."""
        body = msgspec.to_builtins(self)
        if body.get("session_ref") is None:
            body.pop("session_ref", None)
        return body


class InterruptResult(msgspec.Struct, frozen=True, kw_only=True):
    """What an interrupt did: ``interrupted`` is False when the session was idle."""

    session_id: str
    interrupted: bool
    run_id: str | None = None

    def to_wire(self) -> dict[str, Any]:
        """Upstream's shape: idle sessions still report ``"interrupted"``."""
        return {"session_id": self.session_id, "interrupted": True, "result": "interrupted"}
