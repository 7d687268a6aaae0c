"""The ``memory`` backend: sessions in dicts, gone when the process exits."""

from __future__ import annotations

import threading

import msgspec

from ..errors import InboxFull, SessionBusy
from ..events import EventEnvelope
from ..transcript import Message
from .base import (
    LeaseReport,
    apply_renewal,
    lease_report,
    RunCommit,
    RunRecord,
    SessionRecord,
    apply_begin,
    apply_commit,
    apply_event_log,
    check_commit_allowed,
    interrupted_commit,
    lease_is_stale,
)
from .eventlog import EventPage, InputRecord
from .query import labels_match, page, read_log
from .revisions import (
    ForkRequest,
    RevisionCommit,
    TranscriptRewrite,
    apply_rewrite_in_memory,
    check_fork,
    check_rewrite,
    fork_record,
)

__all__ = ["MemoryStore"]


class MemoryStore:
    """A process-local store; thread-safe so it behaves like the disk backends."""

    blocking = False
    backend = "memory"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._sessions: dict[str, SessionRecord] = {}
        self._messages: dict[str, list[Message]] = {}
        self._runs: dict[str, RunRecord] = {}
        self._events: dict[str, list[EventEnvelope]] = {}
        self._inputs: dict[str, dict[str, InputRecord]] = {}
        #: Per session: the rows of each replaced revision, and the commits in order.
        self._bodies: dict[str, dict[str, list[Message]]] = {}
        self._commits: dict[str, list[RevisionCommit]] = {}

    def create_session(self, record: SessionRecord, messages: list[Message]) -> None:
        with self._lock:
            if record.session_id in self._sessions:
                raise ValueError(f"session {record.session_id} already exists")
            self._sessions[record.session_id] = msgspec.structs.replace(
                record, message_count=len(messages)
            )
            self._messages[record.session_id] = list(messages)

    def get_session(self, session_id: str, *, include_archived: bool = False) -> SessionRecord | None:
        with self._lock:
            record = self._sessions.get(session_id)
        if record is None or (record.archived and not include_archived):
            return None
        return msgspec.structs.replace(record)

    def list_sessions(self, *, limit: int, offset: int, labels: dict[str, str] | None = None) -> list[SessionRecord]:
        with self._lock:
            live = [r for r in self._sessions.values() if not r.archived and labels_match(r.labels, labels)]
        live.sort(key=lambda r: (r.updated_at_ms, r.session_id), reverse=True)
        return [msgspec.structs.replace(r) for r in page(live, offset, limit)]

    def read_messages(self, session_id: str, *, offset: int = 0, limit: int | None = None) -> list[Message]:
        with self._lock:
            rows = self._messages.get(session_id, [])
            return page(rows, offset, limit)

    def begin_run(self, run: RunRecord) -> SessionRecord:
        with self._lock:
            record = self._sessions[run.session_id]
            if record.archived:
                raise KeyError(run.session_id)
            if record.active_run_id is not None:
                raise SessionBusy(run.session_id, record.active_run_id)
            apply_begin(record, run)
            self._runs[run.run_id] = msgspec.structs.replace(run)
            return msgspec.structs.replace(record)

    def commit_run(self, commit: RunCommit) -> SessionRecord:
        with self._lock:
            check_commit_allowed(self._runs.get(commit.run_id), commit)
            return self._apply_commit(commit)

    def _apply_commit(self, commit: RunCommit) -> SessionRecord:
        record = self._sessions[commit.session_id]
        rows = self._messages.setdefault(commit.session_id, [])
        rows.extend(commit.messages)
        apply_commit(record, commit, len(rows), self._runs.get(commit.run_id))
        log = self._events.setdefault(commit.session_id, [])
        log.extend(commit.events)
        prune = apply_event_log(record, commit)
        if prune:
            record.event_floor = max(record.event_floor, log[prune - 1].seq)
            del log[:prune]
        inputs = self._inputs.setdefault(commit.session_id, {})
        for item in commit.inputs:
            inputs[item.input_id] = msgspec.structs.replace(item)
        return msgspec.structs.replace(record)

    def read_events(self, session_id: str, *, after_seq: int, limit: int) -> EventPage | None:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None:
                return None
            return read_log(self._events.get(session_id, []), record.event_floor, after_seq, limit)

    def admit_input(self, record: InputRecord, row: Message | None, *, inbox_capacity: int) -> InputRecord | None:
        with self._lock:
            session = self._sessions.get(record.session_id)
            if session is None or session.archived:
                raise KeyError(record.session_id)
            inputs = self._inputs.setdefault(record.session_id, {})
            if record.idempotency_key is not None:
                for item in inputs.values():
                    if item.idempotency_key == record.idempotency_key:
                        return msgspec.structs.replace(item)
            if record.state == "queued" and sum(i.state == "queued" for i in inputs.values()) >= inbox_capacity:
                raise InboxFull(record.session_id, inbox_capacity)
            if row is not None:
                rows = self._messages.setdefault(record.session_id, [])
                rows.append(row)
                session.message_count = len(rows)
                session.updated_at_ms = max(session.updated_at_ms, record.created_at_ms)
            inputs[record.input_id] = msgspec.structs.replace(record)
            return None

    def get_input(self, session_id: str, *, input_id: str | None = None,
                  idempotency_key: str | None = None) -> InputRecord | None:
        with self._lock:
            for item in self._inputs.get(session_id, {}).values():
                if (item.input_id == input_id) if input_id is not None else (item.idempotency_key == idempotency_key):
                    return msgspec.structs.replace(item)
        return None

    def queued_inputs(self, session_id: str) -> list[InputRecord]:
        with self._lock:
            return [msgspec.structs.replace(i) for i in self._inputs.get(session_id, {}).values()
                    if i.state == "queued"]

    def renew_leases(self, owner: str, runs: list[tuple[str, str]], expires_at_ms: int) -> LeaseReport:
        with self._lock:
            return lease_report({run_id: apply_renewal(self._runs.get(run_id), owner, expires_at_ms)
                                 for _, run_id in runs})

    def request_interrupt(self, session_id: str, run_id: str) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None or run.status != "running" or run.session_id != session_id:
                return False
            run.interrupt_requested = True
            return True

    def close_stale_run(self, session_id: str, run_id: str, *, now_ms: int, owner_dead: bool, reason: str) -> bool:
        with self._lock:
            run = self._runs.get(run_id)
            record = self._sessions.get(session_id)
            if (run is None or record is None or run.session_id != session_id
                    or not lease_is_stale(run, now_ms=now_ms, owner_dead=owner_dead)):
                return False
            self._apply_commit(interrupted_commit(run, record, now_ms=now_ms, reason=reason))
            return True

    def open_runs(self) -> list[RunRecord]:
        with self._lock:
            return [msgspec.structs.replace(r) for r in self._runs.values() if r.status == "running"]

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._lock:
            run = self._runs.get(run_id)
            return None if run is None else msgspec.structs.replace(run)

    def archive_session(self, session_id: str) -> bool:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None or record.archived:
                return False
            record.archived = True
            return True

    def rewrite_transcript(self, rewrite: TranscriptRewrite) -> tuple[SessionRecord, RevisionCommit]:
        with self._lock:
            sid = rewrite.session_id
            bodies = self._bodies.setdefault(sid, {})
            record = check_rewrite(self._sessions.get(sid), rewrite, set(bodies))
            rows, commit = apply_rewrite_in_memory(record, self._messages.get(sid, []), bodies, rewrite)
            self._messages[sid] = rows
            self._commits.setdefault(sid, []).append(commit)
            return msgspec.structs.replace(record), commit

    def list_revisions(self, session_id: str) -> list[RevisionCommit]:
        with self._lock:
            return list(self._commits.get(session_id, []))

    def read_revision(self, session_id: str, revision: str, *, offset: int = 0,
                      limit: int | None = None) -> list[Message] | None:
        with self._lock:
            record = self._sessions.get(session_id)
            if record is None:
                return None
            if revision == record.transcript_revision:
                return page(self._messages.get(session_id, []), offset, limit)
            body = self._bodies.get(session_id, {}).get(revision)
            return None if body is None else page(body, offset, limit)

    def fork_session(self, fork: ForkRequest) -> SessionRecord:
        with self._lock:
            source = check_fork(self._sessions.get(fork.source_session_id), fork)
            if fork.record.session_id in self._sessions:
                raise ValueError(f"session {fork.record.session_id} already exists")
            rows = [*self._messages.get(fork.source_session_id, [])[:fork.upto], *fork.tail]
            record = fork_record(fork, source, rows)
            self._sessions[record.session_id] = record
            self._messages[record.session_id] = rows
            return msgspec.structs.replace(record)

    def change_stamp(self, session_id: str) -> tuple[int, ...] | None:
        return None  # nothing to fingerprint; and nothing shared with other processes

    def close(self) -> None:
        pass
