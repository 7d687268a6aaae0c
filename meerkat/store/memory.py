"""The ``memory`` backend: sessions in dicts, gone when the process exits."""

from __future__ import annotations

import threading

import msgspec

from ..errors import SessionBusy
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
    check_commit_allowed,
    interrupted_commit,
    lease_is_stale,
)
from .query import labels_match, page

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
        return msgspec.structs.replace(record)

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

    def change_stamp(self, session_id: str) -> tuple[int, ...] | None:
        return None  # nothing to fingerprint; and nothing shared with other processes

    def close(self) -> None:
        pass
