"""Typed results of the history operations (forks, revisions, system prompt, instructions), with their wire shapes.

Each ``to_wire()`` is the published ``meerkat-sdk`` 0.9.6 result object of the
matching ``rkat-rpc`` method; REST and MCP return the same objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgspec

from .history_wire import commit_wire
from .store.revisions import RevisionCommit
from .transcript import InstructionActivation, Message, SystemMessage

__all__ = [
    "ForkResult",
    "RewriteResult",
    "RevisionEntry",
    "RevisionList",
    "RevisionPage",
    "SystemPromptUpdate",
    "ActivationRecord",
    "ActivationReceipt",
    "ActivationPage",
    "KeyState",
    "activation_records",
    "effective_activations",
]


@dataclass(frozen=True, slots=True)
class ForkResult:
    """A new session made from a prefix of another."""

    source_session_id: str
    session_id: str
    session_ref: str | None
    message_count: int
    fork_point: int
    source_revision: str
    reactivated_instruction_count: int = 0

    def to_wire(self) -> dict[str, Any]:
        # No provider cache breakpoint is authored by this host, so inheritance cannot be
        # proven; the copied prefix is sent byte-identically, so a vendor's cache still applies.
        body: dict[str, Any] = {
            "source_session_id": self.source_session_id, "session_id": self.session_id,
            "message_count": self.message_count,
            "cache_inheritance": {"status": "unavailable", "reason": "no_authored_breakpoint_at_boundary",
                                  "message_count": self.fork_point},
            "reactivated_instruction_count": self.reactivated_instruction_count,
            "fork_point": self.fork_point, "source_revision": self.source_revision,
        }
        if self.session_ref:
            body["session_ref"] = self.session_ref
        return body


@dataclass(frozen=True, slots=True)
class RewriteResult:
    """A committed rewrite or restore."""

    session_id: str
    commit: RevisionCommit
    message_count: int

    def to_wire(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "parent_revision": self.commit.parent_revision,
                "revision": self.commit.revision, "message_count": self.message_count,
                "commit": commit_wire(self.commit)}


@dataclass(frozen=True, slots=True)
class RevisionList:
    """A session's rewrite commits (oldest first) and its head."""

    head_revision: str
    entries: list[RevisionCommit]
    total: int

    def to_wire(self) -> dict[str, Any]:
        return {"head_revision": self.head_revision, "total": self.total, "entries": [
            {"revision": c.revision, "parent_revision": c.parent_revision, "actor": c.actor,
             "reason": c.reason_kind, "note": c.reason_note, "committed_at": c.committed_at_ns // 1_000_000,
             "messages_before": c.messages_before, "messages_after": c.messages_after,
             **({"restored_from": c.restored_from} if c.restored_from else {})}
            for c in self.entries]}


RevisionEntry = RevisionCommit


@dataclass(frozen=True, slots=True)
class RevisionPage:
    """A page of one retained revision's rows."""

    session_id: str
    session_ref: str | None
    revision: str
    head_revision: str
    message_count: int
    offset: int
    limit: int | None
    messages: list[Message]

    def to_wire(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "session_id": self.session_id, "revision": self.revision, "head_revision": self.head_revision,
            "message_count": self.message_count, "offset": self.offset, "limit": self.limit,
            "has_more": self.offset + len(self.messages) < self.message_count,
            "messages": msgspec.to_builtins(self.messages)}
        if self.session_ref:
            body["session_ref"] = self.session_ref
        return body


@dataclass(frozen=True, slots=True)
class SystemPromptUpdate:
    """The result of ``update_system_prompt``: ``applied`` (with its commit) or ``duplicate``."""

    session_id: str
    key: str
    version: int
    message_index: int
    status: str
    transcript_revision: str
    commit: RevisionCommit | None = None

    def to_wire(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "key": self.key, "version": self.version,
                "message_index": self.message_index, "status": self.status,
                "transcript_revision": self.transcript_revision,
                "commit": None if self.commit is None else commit_wire(self.commit)}


@dataclass(frozen=True, slots=True)
class ActivationRecord:
    """One instruction activation row of the transcript."""

    session_id: str
    identity: InstructionActivation
    activation_ordinal: int
    message_index: int
    transcript_revision: str

    def to_wire(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "identity": msgspec.to_builtins(self.identity),
                "activation_ordinal": self.activation_ordinal,
                "projection_witness": {"message_index": self.message_index,
                                       "transcript_revision": self.transcript_revision}}


@dataclass(frozen=True, slots=True)
class ActivationReceipt:
    """What ``activate_instruction`` did: ``applied`` or ``duplicate`` (a retry)."""

    record: ActivationRecord
    disposition: str

    def to_wire(self) -> dict[str, Any]:
        return {"record": self.record.to_wire(), "disposition": self.disposition}


@dataclass(frozen=True, slots=True)
class KeyState:
    """Where one instruction key stands: its effective activation and what the next one must expect."""

    session_id: str
    namespace: str
    key: str
    requires_explicit_child_activation: bool
    effective: ActivationRecord | None
    effective_origin_local: ActivationRecord | None
    chronological_head: ActivationRecord | None

    def to_wire(self) -> dict[str, Any]:
        effective_id = None if self.effective is None else self.effective.identity.activation_id
        return {
            "session_id": self.session_id, "namespace": self.namespace, "key": self.key,
            "requires_explicit_child_activation": self.requires_explicit_child_activation,
            "next_expectation": ({"kind": "absent"} if effective_id is None
                                 else {"kind": "effective", "activation_id": effective_id}),
            "effective_origin_local": None if self.effective_origin_local is None
            else self.effective_origin_local.to_wire(),
            "chronological_head": None if self.chronological_head is None else self.chronological_head.to_wire(),
            "next_supersedes": effective_id,
        }


@dataclass(frozen=True, slots=True)
class ActivationPage:
    """A page of activation records in transcript order (and the key's state when one key was asked for)."""

    session_id: str
    records: list[ActivationRecord]
    next_offset: int | None
    key_state: KeyState | None = field(default=None)

    def to_wire(self) -> dict[str, Any]:
        return {"session_id": self.session_id, "records": [r.to_wire() for r in self.records],
                "key_state": None if self.key_state is None else self.key_state.to_wire(),
                "next_offset": self.next_offset}


def activation_records(session_id: str, rows: list[Message], head: str) -> list[ActivationRecord]:
    """The activation rows of ``rows``, as records in transcript order."""
    records: list[ActivationRecord] = []
    for index, row in enumerate(rows):
        if isinstance(row, SystemMessage) and row.instruction_activation is not None:
            records.append(ActivationRecord(session_id=session_id, identity=row.instruction_activation,
                                            activation_ordinal=len(records) + 1, message_index=index,
                                            transcript_revision=head))
    return records


def effective_activations(records: list[ActivationRecord]) -> dict[tuple[str, str], ActivationRecord]:
    """The latest activation of each (namespace, key), in transcript order."""
    out: dict[tuple[str, str], ActivationRecord] = {}
    for record in records:
        revision = record.identity.revision
        out[(revision.namespace, revision.key)] = record
    return out
