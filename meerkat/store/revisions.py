"""Transcript revisions and forks: the rules every store backend applies the same way.

A session's transcript has a **head revision**: ``r0`` when it is created, then
``r1``, ``r2``, ... one per committed rewrite. Turns append rows to the head
without changing its name. A rewrite replaces the rows ``[start, end)`` of the
head with new rows (a restore replaces all of them with an older revision's
rows) in one atomic store write that also:

* keeps the rows of the replaced head, exactly as they were, under its name
  (so every revision stays readable for as long as the session exists: the
  retention rule is "forever"; archiving keeps them too),
* records a :class:`RevisionCommit` (who, why, what range, digests),
* moves the head and recomputes the session's system prompt from its rows.

A fork creates a new session whose rows are the source's first ``upto`` rows
(plus an optional tail), atomically with checking that the source is idle and,
when asked, still at an expected head.
"""

from __future__ import annotations

import hashlib
from typing import Any, Iterable

import msgspec

from ..errors import InvalidParams, RevisionConflict, SessionBusy
from ..transcript import BlockAssistantMessage, Message, SystemMessage, encode_message
from .base import SessionRecord

__all__ = [
    "ROOT_REVISION",
    "RevisionCommit",
    "TranscriptRewrite",
    "ForkRequest",
    "revision_name",
    "span_digest",
    "effective_system_prompt",
    "last_assistant_text",
    "check_rewrite",
    "check_fork",
    "make_commit",
    "apply_rewrite_record",
    "apply_rewrite_in_memory",
    "fork_record",
]

#: The name of a transcript before its first rewrite.
ROOT_REVISION = "r0"


class RevisionCommit(msgspec.Struct, kw_only=True, frozen=True):
    """One committed rewrite: the new head ``revision`` replaced ``parent_revision``."""

    revision: str
    parent_revision: str
    ordinal: int
    committed_at_ns: int
    reason_kind: str
    reason_note: str | None = None
    actor: str | None = None
    #: The selection as the client gave it (``{"type": "message_range", "start", "end"}`` ...).
    selection: dict[str, Any] = {}
    start: int
    end: int
    messages_before: int
    messages_after: int
    original_span_digest: str
    replacement_digest: str
    #: Set when this commit restored an older revision's rows.
    restored_from: str | None = None


class TranscriptRewrite(msgspec.Struct, kw_only=True, frozen=True):
    """What a rewrite asks for; the store checks it against the head under its write lock."""

    session_id: str
    start: int
    end: int
    rows: list[Message] = []
    #: Replace the whole transcript with this retained revision's rows instead.
    restore_from: str | None = None
    expected_parent_revision: str | None = None
    #: Refuse (RevisionConflict) if rows were appended since the caller read them.
    expected_message_count: int | None = None
    reason_kind: str
    reason_note: str | None = None
    actor: str | None = None
    selection: dict[str, Any] = {}
    committed_at_ns: int


class ForkRequest(msgspec.Struct, kw_only=True, frozen=True):
    """A new session (``record``) made of the source's first ``upto`` rows plus ``tail``."""

    source_session_id: str
    record: SessionRecord
    upto: int
    tail: list[Message] = []
    #: Refuse (RevisionConflict) unless the source is still at this head.
    expected_revision: str | None = None


def revision_name(ordinal: int) -> str:
    """The name of the revision a session's ``ordinal``-th rewrite creates."""
    return f"r{ordinal}"


def span_digest(bodies: Iterable[bytes]) -> str:
    """sha256 over encoded rows (each followed by a newline), as ``sha256:<hex>``."""
    h = hashlib.sha256()
    for body in bodies:
        h.update(body)
        h.update(b"\n")
    return "sha256:" + h.hexdigest()


def effective_system_prompt(rows: Iterable[Message]) -> str | None:
    """What the model gets as its system prompt: the text of the prompt's system rows, in order.

    Injected context (rows with a ``source``) and instruction activations reach
    the model as context instead, so they are not part of it.
    """
    parts = [row.content for row in rows if isinstance(row, SystemMessage) and row.content
             and row.source is None and row.instruction_activation is None]
    return "\n\n".join(parts) if parts else None


def last_assistant_text(rows: list[Message]) -> str | None:
    """The text of the last assistant row, if any."""
    for row in reversed(rows):
        if isinstance(row, BlockAssistantMessage):
            text = "".join(b.data.get("text", "") for b in row.blocks if b.block_type == "text")
            return text
    return None


def _check_idle(record: SessionRecord | None, session_id: str) -> SessionRecord:
    if record is None or record.archived:
        raise KeyError(session_id)
    if record.active_run_id is not None:
        raise SessionBusy(session_id, record.active_run_id)
    return record


def check_rewrite(record: SessionRecord | None, rewrite: TranscriptRewrite, known: set[str] | None) -> SessionRecord:
    """Refuse a rewrite of an unknown, archived or busy session, at another head, or out of range.

    ``known``: the revisions retained (needed only for a restore).
    """
    record = _check_idle(record, rewrite.session_id)
    expected = rewrite.expected_parent_revision
    if expected is not None and expected != record.transcript_revision:
        raise RevisionConflict(rewrite.session_id, expected, record.transcript_revision)
    if rewrite.expected_message_count is not None and rewrite.expected_message_count != record.message_count:
        raise RevisionConflict(rewrite.session_id, f"{record.transcript_revision} with "
                               f"{rewrite.expected_message_count} messages",
                               f"{record.transcript_revision} with {record.message_count} messages")
    if rewrite.restore_from is not None:
        if rewrite.restore_from != record.transcript_revision and rewrite.restore_from not in (known or set()):
            raise InvalidParams(f"session {rewrite.session_id} has no transcript revision "
                                f"{rewrite.restore_from!r} (current head: {record.transcript_revision})")
        return record
    if not 0 <= rewrite.start <= rewrite.end <= record.message_count:
        raise InvalidParams(f"selection {rewrite.start}..{rewrite.end} is outside the transcript "
                            f"(0..{record.message_count})")
    return record


def check_fork(record: SessionRecord | None, fork: ForkRequest) -> SessionRecord:
    """Refuse a fork of an unknown, archived or busy source, at another head, or past its end."""
    record = _check_idle(record, fork.source_session_id)
    if fork.expected_revision is not None and fork.expected_revision != record.transcript_revision:
        raise RevisionConflict(fork.source_session_id, fork.expected_revision, record.transcript_revision)
    if not 0 <= fork.upto <= record.message_count:
        raise InvalidParams(f"message_index {fork.upto} is outside the transcript of session "
                            f"{fork.source_session_id} (0..{record.message_count})")
    return record


def make_commit(record: SessionRecord, rewrite: TranscriptRewrite, start: int, end: int, before: int, after: int,
                original_digest: str, replacement_digest: str) -> RevisionCommit:
    """The commit of ``rewrite`` on ``record``'s head (for backends that splice rows themselves)."""
    ordinal = record.revision_count + 1
    return RevisionCommit(
        revision=revision_name(ordinal), parent_revision=record.transcript_revision, ordinal=ordinal,
        committed_at_ns=rewrite.committed_at_ns, reason_kind=rewrite.reason_kind, reason_note=rewrite.reason_note,
        actor=rewrite.actor, selection=dict(rewrite.selection) or {"type": "message_range", "start": start,
                                                                    "end": end},
        start=start, end=end, messages_before=before, messages_after=after,
        original_span_digest=original_digest, replacement_digest=replacement_digest,
        restored_from=rewrite.restore_from)


def apply_rewrite_record(record: SessionRecord, commit: RevisionCommit, *, message_count: int,
                         system_prompt: str | None) -> None:
    """Move ``record``'s head to ``commit`` (every backend updates the record this way)."""
    record.transcript_revision = commit.revision
    record.revision_count = commit.ordinal
    record.message_count = message_count
    record.system_prompt = system_prompt
    record.updated_at_ms = max(record.updated_at_ms, commit.committed_at_ns // 1_000_000)


def apply_rewrite_in_memory(record: SessionRecord, rows: list[Message], bodies: dict[str, list[Message]],
                            rewrite: TranscriptRewrite) -> tuple[list[Message], RevisionCommit]:
    """Apply a checked rewrite to rows held in memory: keep the old head's rows, return the new ones."""
    if rewrite.restore_from is not None:
        source = bodies.get(rewrite.restore_from, rows)  # the head itself is not in ``bodies``
        start, end, replacement = 0, len(rows), list(source)
    else:
        start, end, replacement = rewrite.start, rewrite.end, list(rewrite.rows)
    new_rows = [*rows[:start], *replacement, *rows[end:]]
    commit = make_commit(record, rewrite, start, end, len(rows), len(new_rows),
                         span_digest(encode_message(r) for r in rows[start:end]),
                         span_digest(encode_message(r) for r in replacement))
    bodies[record.transcript_revision] = list(rows)
    apply_rewrite_record(record, commit, message_count=len(new_rows),
                         system_prompt=effective_system_prompt(new_rows))
    return new_rows, commit


def fork_record(fork: ForkRequest, source: SessionRecord, rows: list[Message]) -> SessionRecord:
    """The new session's record: its rows' count, system prompt and last answer, and its lineage."""
    return msgspec.structs.replace(
        fork.record, message_count=len(rows), system_prompt=effective_system_prompt(rows),
        last_assistant_text=last_assistant_text(rows), transcript_revision=ROOT_REVISION, revision_count=0,
        forked_from=fork.source_session_id, forked_from_revision=source.transcript_revision, fork_point=fork.upto,
        archived=False, active_run_id=None)
