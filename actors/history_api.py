"""The history part of :class:`actors.SessionService`: forks, transcript revisions, system-prompt
updates, instruction activations and exports.

A mixin of ``SessionService`` (it uses the service's supervisor). Every write is
one atomic store call that checks, under the store's write lock, that the
session is idle (a run of any process makes it SESSION_BUSY, naming the run)
and, where asked, still at the expected head revision; so a fork or rewrite by
one process is seen by every other process on the realm at their next read or
turn. The session's actor here is told at once, so its next turn sends the
model the new head.
"""

from __future__ import annotations

import time
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from meerkat.errors import InvalidParams, SessionBusy, SessionNotFound
from meerkat.export import EXPORT_FORMATS, atif_trajectory, json_transcript, markdown_transcript
from meerkat.history_views import (
    ActivationPage,
    activation_records,
    effective_activations,
    ActivationReceipt,
    ActivationRecord,
    ForkResult,
    KeyState,
    RevisionList,
    RevisionPage,
    RewriteResult,
    SystemPromptUpdate,
)
from meerkat.history_wire import (
    MAX_BODY_CHARS,
    apply_replacement,
    parse_activation_request,
    optional_string,
    parse_reason,
    parse_selection,
    require_int,
    rows_from_wire,
)
from meerkat.ids import new_uuid7
from meerkat.store import SessionRecord
from meerkat.store.revisions import ForkRequest, RevisionCommit, TranscriptRewrite
from meerkat.transcript import (
    InstructionActivation,
    InstructionRevision,
    Message,
    PromptVersion,
    SystemMessage,
    now_ms,
    now_rfc3339,
)
from meerkat.validation import known_session_id, validate_labels, validate_page
from meerkat.views import session_ref

if TYPE_CHECKING:
    from .realm import RealmSupervisor

__all__ = ["HistoryAPI", "FORK_POLICIES"]

#: What a fork does with instruction activations it copies (``inherited_instructions``).
FORK_POLICIES = ("require_explicit_activation", "reactivate_inherited", "refuse")


def _prompt_rows(rows: list[Message], key: str) -> tuple[int | None, int | None, int]:
    """Where ``key``'s prompt row is, the first unversioned prompt row, and the first row that is not a system row."""
    found = adoptable = None
    first_turn_row = len(rows)
    for index, row in enumerate(rows):
        if not isinstance(row, SystemMessage):
            first_turn_row = min(first_turn_row, index)
        elif row.prompt_version is not None:
            if row.prompt_version.key == key:
                found = index
        elif adoptable is None and row.source is None and row.instruction_activation is None:
            adoptable = index
    return found, adoptable, first_turn_row


def _running_behavior(value: Any) -> None:
    if value not in (None, "reject"):
        raise InvalidParams(f'running_behavior must be "reject" (the only behaviour this host has), got {value!r}')


class HistoryAPI:
    """Mixin: the history methods of :class:`actors.SessionService`."""

    _sup: "RealmSupervisor"

    # -- plumbing ----------------------------------------------------------------

    def _check_idle_here(self, session_id: str) -> None:
        # A turn of this process may be accepted but not yet recorded in the store.
        actor = self._sup.live_actor(session_id)
        if actor is not None and actor.running_run_id is not None:
            raise SessionBusy(session_id, actor.running_run_id)

    async def _record(self, session_id: str, *, include_archived: bool = False) -> SessionRecord:
        sid = known_session_id(session_id)
        store = self._sup.store
        record = await self._sup.store_call(partial(store.get_session, sid, include_archived=include_archived))
        if record is None:
            raise SessionNotFound(session_id)
        return record

    async def _rows(self, session_id: str) -> list[Message]:
        return await self._sup.store_call(self._sup.store.read_messages, session_id)

    async def _commit_rewrite(self, rewrite: TranscriptRewrite) -> tuple[SessionRecord, RevisionCommit]:
        self._check_idle_here(rewrite.session_id)
        try:
            record, commit = await self._sup.store_call(self._sup.store.rewrite_transcript, rewrite)
        except KeyError:
            raise SessionNotFound(rewrite.session_id) from None
        if (actor := self._sup.live_actor(rewrite.session_id)) is not None:
            actor.notice_history_change(record)
        return record, commit

    # -- forks ---------------------------------------------------------------------

    async def fork_session(self, session_id: str, *, message_index: int | None = None, replacement: Any = None,
                           labels: dict[str, str] | None = None, inherited_instructions: str | None = None,
                           running_behavior: Any = None) -> ForkResult:
        """A new session whose transcript is the source's first ``message_index`` rows (all when None).

        With ``replacement`` (a ``WireTranscriptReplacement``) the row at
        ``message_index`` is replaced (or edited block-wise) and kept, so the
        fork has ``message_index + 1`` rows. The source must be idle; it is not
        changed. Model, provider, settings and labels are the source's
        (``labels`` replaces them).
        """
        _running_behavior(running_behavior)
        policy = inherited_instructions or "require_explicit_activation"
        if policy not in FORK_POLICIES:
            raise InvalidParams(f"inherited_instructions must be one of {', '.join(FORK_POLICIES)}, got {policy!r}")
        source = await self._record(session_id)
        sid = source.session_id
        self._check_idle_here(sid)
        if replacement is not None and message_index is None:
            raise InvalidParams("missing field `message_index`: a fork with a replacement replaces the message "
                                "at message_index")
        upto = source.message_count if message_index is None else require_int(message_index, "message_index")
        if upto > source.message_count or (replacement is not None and upto >= source.message_count):
            raise InvalidParams(f"message_index {upto} is outside the transcript of session {sid} "
                                f"({source.message_count} messages)")
        tail: list[Message] = []
        if replacement is not None:
            at = await self._sup.store_call(partial(self._sup.store.read_messages, sid, offset=upto, limit=1))
            tail = [apply_replacement(at[0] if at else None, replacement)]
        new_id = new_uuid7()
        inherited: dict[tuple[str, str], ActivationRecord] = {}
        prefix: list[Message] = []
        if policy != "require_explicit_activation" and upto:
            # Only these policies look at the activations the fork would copy (the default copies them as
            # history); reading the prefix costs as much as the fork itself, so it is skipped otherwise.
            prefix = await self._sup.store_call(partial(self._sup.store.read_messages, sid, offset=0, limit=upto))
            inherited = await trio.to_thread.run_sync(
                lambda: effective_activations(activation_records(sid, prefix, source.transcript_revision)))
        if inherited and policy == "refuse":
            raise InvalidParams(f"the fork point of session {sid} carries {len(inherited)} instruction "
                                "activation(s) and inherited_instructions is \"refuse\"")
        reactivated = 0
        if policy == "reactivate_inherited":
            for activation in inherited.values():
                old = activation.identity
                body = prefix[activation.message_index]
                assert isinstance(body, SystemMessage)
                tail.append(SystemMessage(content=body.content, created_at=now_rfc3339(), instruction_activation=(
                    InstructionActivation(activation_id=f"{old.activation_id}@{new_id}", revision=old.revision,
                                          origin_session_id=new_id, render_version=old.render_version,
                                          supersedes=old.activation_id))))
                reactivated += 1
        now = now_ms()
        child = SessionRecord(
            session_id=new_id, created_at_ms=now, updated_at_ms=now, model=source.model, provider=source.provider,
            max_tokens=source.max_tokens, provider_params=dict(source.provider_params),
            labels=validate_labels(labels) if labels is not None else dict(source.labels),
            instance_id=source.instance_id, budget_max_tokens=source.budget_max_tokens)
        request = ForkRequest(source_session_id=sid, record=child, upto=upto, tail=tail,
                              expected_revision=source.transcript_revision)
        try:
            forked = await self._sup.store_call(self._sup.store.fork_session, request)
        except KeyError:
            raise SessionNotFound(session_id) from None
        return ForkResult(source_session_id=sid, session_id=forked.session_id,
                          session_ref=session_ref(self._sup.realm_id, forked.session_id),
                          message_count=forked.message_count, fork_point=upto,
                          source_revision=source.transcript_revision, reactivated_instruction_count=reactivated)

    # -- revisions -----------------------------------------------------------------

    async def rewrite_transcript(self, session_id: str, *, selection: Any, replacement: Any, reason: Any,
                                 actor: str | None = None, expected_parent_revision: str | None = None,
                                 running_behavior: Any = None) -> RewriteResult:
        """Replace the rows in ``selection`` with ``replacement`` as one new revision (the old one is kept)."""
        _running_behavior(running_behavior)
        sid = known_session_id(session_id)
        start, end, wire_selection = parse_selection(selection)
        rows = rows_from_wire(replacement, "replacement")
        kind, note = parse_reason(reason)
        record, commit = await self._commit_rewrite(TranscriptRewrite(
            session_id=sid, start=start, end=end, rows=rows, reason_kind=kind, reason_note=note,
            actor=optional_string(actor, "actor"), selection=wire_selection,
            expected_parent_revision=optional_string(expected_parent_revision, "expected_parent_revision"),
            committed_at_ns=time.time_ns()))
        return RewriteResult(session_id=sid, commit=commit, message_count=record.message_count)

    async def restore_transcript_revision(self, session_id: str, revision: str, *, reason: Any,
                                          actor: str | None = None, expected_parent_revision: str | None = None,
                                          running_behavior: Any = None) -> RewriteResult:
        """Make a retained revision's rows the head again, as a new revision."""
        _running_behavior(running_behavior)
        sid = known_session_id(session_id)
        name = optional_string(revision, "revision", max_chars=64)
        if not name:
            raise InvalidParams("revision must be a non-empty string")
        kind, note = parse_reason(reason)
        record, commit = await self._commit_rewrite(TranscriptRewrite(
            session_id=sid, start=0, end=0, restore_from=name, reason_kind=kind, reason_note=note,
            actor=optional_string(actor, "actor"),
            expected_parent_revision=optional_string(expected_parent_revision, "expected_parent_revision"),
            committed_at_ns=time.time_ns()))
        return RewriteResult(session_id=sid, commit=commit, message_count=record.message_count)

    async def transcript_revisions(self, session_id: str, *, offset: int | None = None,
                                   limit: int | None = None) -> RevisionList:
        """The session's rewrite commits, oldest first, and its head revision."""
        limit, offset = validate_page(limit, offset)
        record = await self._record(session_id, include_archived=True)
        commits = await self._sup.store_call(self._sup.store.list_revisions, record.session_id)
        return RevisionList(head_revision=record.transcript_revision, entries=commits[offset:offset + limit],
                            total=len(commits))

    async def transcript_revision(self, session_id: str, revision: str, *, offset: int = 0,
                                  limit: int | None = None) -> RevisionPage:
        """A page of a retained revision's rows (the head's are the session's rows now)."""
        page_limit, offset = validate_page(limit, offset)
        record = await self._record(session_id, include_archived=True)
        sid = record.session_id
        name = optional_string(revision, "revision", max_chars=64)
        if not name:
            raise InvalidParams("revision must be a non-empty string")
        store = self._sup.store
        rows = await self._sup.store_call(partial(store.read_revision, sid, name, offset=offset, limit=page_limit))
        if rows is None:
            raise InvalidParams(f"session {sid} has no transcript revision {name!r} "
                                f"(current head: {record.transcript_revision})")
        if name == record.transcript_revision:
            total = record.message_count
        else:
            commits = await self._sup.store_call(store.list_revisions, sid)
            total = next((c.messages_before for c in commits if c.parent_revision == name), len(rows))
        return RevisionPage(session_id=sid, session_ref=session_ref(self._sup.realm_id, sid), revision=name,
                            head_revision=record.transcript_revision, message_count=total, offset=offset,
                            limit=None if limit is None else page_limit, messages=rows)

    # -- the system prompt ------------------------------------------------------------

    async def update_system_prompt(self, session_id: str, key: Any, content: Any, *,
                                   expected_version: int | None = None, target_message_index: int | None = None,
                                   actor: str | None = None, expected_parent_revision: str | None = None,
                                   adopt_existing: bool = False) -> SystemPromptUpdate:
        """Set the next version of the keyed system-prompt row ``key``; the model sees it from its next call.

        The first update of a key adds its row after the leading system rows
        (or, with ``target_message_index``, adopts that unversioned system row);
        later ones replace the key's row. The same content again is a
        ``duplicate`` and commits nothing. ``expected_version`` is a
        compare-and-set on the key's current version. ``adopt_existing`` (what
        REST and the CLI use: "set the system prompt") adopts the first
        unversioned system prompt row when the key has none yet.
        """
        slot = optional_string(key, "key", max_chars=256)
        if not slot:
            raise InvalidParams("key must be a non-empty string")
        if not isinstance(content, str):
            raise InvalidParams("content must be a string")
        if len(content) > MAX_BODY_CHARS:
            raise InvalidParams(f"content is longer than {MAX_BODY_CHARS} characters")
        if expected_version is not None:
            require_int(expected_version, "expected_version", minimum=1)
        record = await self._record(session_id)
        sid = record.session_id
        self._check_idle_here(sid)
        rows = await self._rows(sid)
        head = record.transcript_revision
        found, adoptable, first_turn_row = await trio.to_thread.run_sync(_prompt_rows, rows, slot)  # O(rows)
        current = 0
        if found is not None:
            old = rows[found]
            assert isinstance(old, SystemMessage) and old.prompt_version is not None
            current = old.prompt_version.version
            if old.content == content and expected_version in (None, current):
                return SystemPromptUpdate(session_id=sid, key=slot, version=current, message_index=found,
                                          status="duplicate", transcript_revision=head)
        if expected_version is not None and expected_version != current:
            raise InvalidParams(f"system prompt key {slot!r} of session {sid} is at version {current}, "
                                f"not {expected_version}", details={"key": slot, "current_version": current,
                                                                   "expected_version": expected_version})
        if found is None and target_message_index is None and adopt_existing:
            target_message_index = adoptable
        if found is not None:
            start, end = found, found + 1
        elif target_message_index is not None:
            start = require_int(target_message_index, "target_message_index")
            target = rows[start] if start < len(rows) else None
            if (not isinstance(target, SystemMessage) or target.prompt_version is not None
                    or target.source is not None or target.instruction_activation is not None):
                raise InvalidParams(f"target_message_index {start} is not an unversioned system prompt row")
            end = start + 1
        else:
            start = end = first_turn_row
        row = SystemMessage(content=content, created_at=now_rfc3339(),
                            prompt_version=PromptVersion(key=slot, version=current + 1))
        new_record, commit = await self._commit_rewrite(TranscriptRewrite(
            session_id=sid, start=start, end=end, rows=[row], reason_kind="system_prompt_update",
            reason_note=f"{slot} v{current + 1}", actor=optional_string(actor, "actor"),
            selection={"type": "message_range", "start": start, "end": end},
            expected_parent_revision=optional_string(expected_parent_revision, "expected_parent_revision") or head,
            expected_message_count=len(rows), committed_at_ns=time.time_ns()))
        return SystemPromptUpdate(session_id=sid, key=slot, version=current + 1, message_index=start,
                                  status="applied", transcript_revision=new_record.transcript_revision,
                                  commit=commit)

    # -- instruction activations --------------------------------------------------------

    async def activate_instruction(self, session_id: str, activation: Any) -> ActivationReceipt:
        """Append an instruction revision's activation row (idempotent on ``activation_id``).

        ``expectation`` is a compare-and-set on the key's effective activation
        (``absent`` or ``effective`` with its id). The body reaches the model as
        context from its next call.
        """
        request = parse_activation_request(activation)
        record = await self._record(session_id)
        sid = record.session_id
        self._check_idle_here(sid)
        rows = await self._rows(sid)
        records = await trio.to_thread.run_sync(activation_records, sid, rows, record.transcript_revision)
        revision: InstructionRevision = request["revision"]
        for existing in records:
            if existing.identity.activation_id == request["activation_id"]:
                body = rows[existing.message_index]
                assert isinstance(body, SystemMessage)
                if existing.identity.revision != revision or body.content != request["body"]:
                    raise InvalidParams(f"activation_id {request['activation_id']!r} was already used for "
                                        "another instruction revision or body")
                return ActivationReceipt(record=existing, disposition="duplicate")
        effective = effective_activations(records).get((revision.namespace, revision.key))
        effective_id = None if effective is None else effective.identity.activation_id
        expected = request["expected"]
        if expected != effective_id:
            raise InvalidParams(
                f"instruction key {revision.namespace}/{revision.key} of session {sid}: expected "
                f"{'no activation' if expected is None else expected!r}, effective is "
                f"{'none' if effective_id is None else repr(effective_id)}",
                details={"expected": expected, "effective": effective_id})
        supersedes = request["supersedes"]
        if supersedes is not None and supersedes != effective_id:
            raise InvalidParams(f"supersedes {supersedes!r} is not the effective activation ({effective_id!r})")
        identity = InstructionActivation(activation_id=request["activation_id"], revision=revision,
                                         origin_session_id=sid, render_version=1, supersedes=effective_id)
        row = SystemMessage(content=request["body"], created_at=now_rfc3339(), instruction_activation=identity)
        end = len(rows)
        new_record, _ = await self._commit_rewrite(TranscriptRewrite(
            session_id=sid, start=end, end=end, rows=[row], reason_kind="instruction_activation",
            reason_note=f"{revision.namespace}/{revision.key}@{revision.revision_id}",
            selection={"type": "message_range", "start": end, "end": end},
            expected_parent_revision=record.transcript_revision, expected_message_count=end,
            committed_at_ns=time.time_ns()))
        return ActivationReceipt(record=ActivationRecord(
            session_id=sid, identity=identity, activation_ordinal=len(records) + 1, message_index=end,
            transcript_revision=new_record.transcript_revision), disposition="applied")

    async def instruction_activations(self, session_id: str, *, namespace: str | None = None,
                                      key: str | None = None, offset: int | None = None,
                                      limit: int | None = 100) -> ActivationPage:
        """The session's activation records in transcript order (filtered), with the key's state."""
        limit, offset = validate_page(limit, offset)
        ns = optional_string(namespace, "namespace", max_chars=256)
        name = optional_string(key, "key", max_chars=256)
        record = await self._record(session_id, include_archived=True)
        sid = record.session_id
        rows = await self._rows(sid)
        records = await trio.to_thread.run_sync(activation_records, sid, rows, record.transcript_revision)
        chosen = [r for r in records if (ns is None or r.identity.revision.namespace == ns)
                  and (name is None or r.identity.revision.key == name)]
        page = chosen[offset:offset + limit]
        next_offset = offset + len(page) if offset + len(page) < len(chosen) else None
        state = None
        if ns is not None and name is not None:
            head = chosen[-1] if chosen else None
            local = [r for r in chosen if r.identity.origin_session_id == sid]
            state = KeyState(session_id=sid, namespace=ns, key=name,
                             requires_explicit_child_activation=head is not None
                             and head.identity.origin_session_id != sid,
                             effective=head, effective_origin_local=local[-1] if local else None,
                             chronological_head=head)
        return ActivationPage(session_id=sid, records=page, next_offset=next_offset, key_state=state)

    # -- export ------------------------------------------------------------------------

    async def export_session(self, session_id: str, *, format: str = "atif", agent_name: str | None = None,
                             agent_version: str | None = None, model_name: str | None = None) -> Any:
        """The session as an ATIF trajectory (a dict), JSON (a dict) or Markdown (a string)."""
        if format not in EXPORT_FORMATS:
            raise InvalidParams(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
        names = {n: optional_string(v, n, max_chars=256) for n, v in
                 (("agent_name", agent_name), ("agent_version", agent_version), ("model_name", model_name))}
        record = await self._record(session_id, include_archived=True)
        rows = await self._rows(record.session_id)
        # Off the event loop: the cost grows with the transcript.
        if format == "atif":
            return await trio.to_thread.run_sync(partial(atif_trajectory, record, rows, **names))
        if format == "markdown":
            return await trio.to_thread.run_sync(markdown_transcript, record, rows)
        return await trio.to_thread.run_sync(json_transcript, record, rows)
