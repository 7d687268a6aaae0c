"""The history calls of the SDK: forks, transcript revisions, system prompt, instructions, export.

A mixin of :class:`~meerkat.client.MeerkatClient`; results are typed (msgspec
structs decoded from the ``rkat-rpc`` answers), transcript rows are the host's
own :mod:`meerkat.transcript` rows.
"""

from __future__ import annotations

from typing import Any

import msgspec

from meerkat.transcript import Message

from ._types import decode

__all__ = ["ForkInfo", "RewriteInfo", "RevisionEntry", "RevisionList", "RevisionPage", "SystemPromptInfo",
           "HistoryCalls"]


class ForkInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A fork: the new ``session_id``, its rows (``message_count``) and where it was cut (``fork_point``)."""

    source_session_id: str
    session_id: str
    message_count: int
    fork_point: int = 0
    source_revision: str = "r0"
    session_ref: str | None = None
    reactivated_instruction_count: int = 0
    cache_inheritance: dict[str, Any] = {}


class RewriteInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A committed rewrite or restore: the new head ``revision`` and the ``commit`` record."""

    session_id: str
    parent_revision: str
    revision: str
    message_count: int
    commit: dict[str, Any]


class RevisionEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One rewrite commit; ``committed_at`` is Unix milliseconds."""

    revision: str
    parent_revision: str
    reason: str
    committed_at: int
    actor: str | None = None
    note: str | None = None
    messages_before: int = 0
    messages_after: int = 0
    restored_from: str | None = None


class RevisionList(msgspec.Struct, frozen=True, kw_only=True):
    """A session's rewrite commits, oldest first, and its head revision."""

    head_revision: str
    entries: list[RevisionEntry]
    total: int = 0


class RevisionPage(msgspec.Struct, frozen=True, kw_only=True):
    """A page of one revision's rows."""

    session_id: str
    revision: str
    head_revision: str
    message_count: int
    offset: int
    has_more: bool
    messages: list[Message]
    limit: int | None = None
    session_ref: str | None = None


class SystemPromptInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What ``update_system_prompt`` did: ``applied`` (a new version) or ``duplicate``."""

    session_id: str
    key: str
    version: int
    message_index: int
    status: str
    transcript_revision: str
    commit: dict[str, Any] | None = None


def _given(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


class HistoryCalls:
    """Mixin of :class:`~meerkat.client.MeerkatClient`."""

    async def _call(self, method: str, params: dict[str, Any]) -> Any:  # provided by MeerkatClient
        raise NotImplementedError

    async def fork_session(self, session_id: str, at: int | None = None, *, replacement: dict[str, Any] | None = None,
                           inherited_instructions: str | None = None) -> ForkInfo:
        """A new session with the first ``at`` rows of ``session_id`` (all when None); the source is unchanged.

        With ``replacement`` (``{"type": "message", "message": {...}}`` or a block
        replacement) the row at ``at`` is replaced and kept.
        """
        if at is None:
            details = await self._call("session/read", {"session_id": session_id})
            at = int(details.get("message_count", 0))
        params = _given(session_id=session_id, message_index=at, replacement=replacement,
                        inherited_instructions=inherited_instructions)
        method = "session/fork_replace" if replacement is not None else "session/fork_at"
        return decode(await self._call(method, params), ForkInfo, "fork result")

    async def rewrite_transcript(self, session_id: str, start: int, end: int, replacement: list[Any], *,
                                 reason: str = "edit", note: str | None = None, actor: str | None = None,
                                 expected_parent_revision: str | None = None) -> RewriteInfo:
        """Replace rows ``[start, end)`` with ``replacement`` (dicts or transcript rows) as a new revision."""
        rows = [msgspec.to_builtins(r) if isinstance(r, msgspec.Struct) else r for r in replacement]
        params = _given(session_id=session_id, selection={"type": "message_range", "start": start, "end": end},
                        replacement=rows, reason=_given(kind=reason, note=note), actor=actor,
                        expected_parent_revision=expected_parent_revision)
        return decode(await self._call("session/rewrite_transcript", params), RewriteInfo, "rewrite result")

    async def restore_transcript_revision(self, session_id: str, revision: str, *, reason: str = "restore",
                                          actor: str | None = None,
                                          expected_parent_revision: str | None = None) -> RewriteInfo:
        """Make a retained revision's rows the transcript again (as a new revision)."""
        params = _given(session_id=session_id, revision=revision, reason={"kind": reason}, actor=actor,
                        expected_parent_revision=expected_parent_revision)
        return decode(await self._call("session/restore_transcript_revision", params), RewriteInfo,
                      "restore result")

    async def transcript_revisions(self, session_id: str, *, offset: int | None = None,
                                   limit: int | None = None) -> RevisionList:
        """The session's rewrite commits, oldest first, and its head revision (``r0``: never rewritten)."""
        params = _given(session_id=session_id, offset=offset, limit=limit)
        return decode(await self._call("session/transcript_revisions", params), RevisionList, "revision list")

    async def transcript_revision(self, session_id: str, revision: str, *, offset: int = 0,
                                  limit: int | None = None) -> RevisionPage:
        """A page of a retained revision's rows."""
        params = _given(session_id=session_id, revision=revision, offset=offset, limit=limit)
        return decode(await self._call("session/transcript_revision", params), RevisionPage, "revision page")

    async def update_system_prompt(self, session_id: str, content: str, *, key: str = "main",
                                   expected_version: int | None = None, target_message_index: int | None = None,
                                   actor: str | None = None) -> SystemPromptInfo:
        """Set the next version of the keyed system prompt; the model sees it from its next call.

        The first update of a key adds a prompt row; pass ``target_message_index=0``
        to replace the session's original system prompt instead.
        """
        params = _given(session_id=session_id, key=key, content=content, expected_version=expected_version,
                        target_message_index=target_message_index, actor=actor)
        return decode(await self._call("session/update_system_prompt", params), SystemPromptInfo,
                      "system prompt result")

    async def activate_instruction(self, session_id: str, activation: dict[str, Any]) -> dict[str, Any]:
        """Activate an instruction revision (``{revision, activation_id, expectation, body}``); the receipt."""
        result: dict[str, Any] = await self._call("session/activate_instruction",
                                                  {"session_id": session_id, "activation": activation})
        return result

    async def instruction_activations(self, session_id: str, *, namespace: str | None = None,
                                      key: str | None = None) -> dict[str, Any]:
        """``{records, key_state, next_offset}``: activations in transcript order."""
        result: dict[str, Any] = await self._call("session/instruction_activations",
                                                  _given(session_id=session_id, namespace=namespace, key=key))
        return result

    async def export_atif(self, session_id: str, *, agent_name: str | None = None,
                          agent_version: str | None = None) -> dict[str, Any]:
        """The session as an ATIF trajectory document."""
        result: dict[str, Any] = await self._call("session/export_atif", _given(
            session_id=session_id, agent_name=agent_name, agent_version=agent_version))
        return result
