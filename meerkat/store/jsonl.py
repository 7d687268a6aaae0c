"""The ``jsonl`` backend: one human-readable, append-only file per session.

``<dir>/<session_id>.jsonl`` holds one JSON object per line; every public write
appends exactly one line::

    {"op":"create","record":{...},"messages":[...]}
    {"op":"begin_run","run":{...}}
    {"op":"commit","commit":{...}}
    {"op":"archive","at_ms":...}
    {"op":"lease","run_id":...,"expires_at_ms":...}
    {"op":"interrupt_request","run_id":...}
    {"op":"input","input":{...},"row":{...}|null}

A commit line carries the run's events (the durable event log); replay keeps
the newest ``event_retention`` of them in memory, older ones stay in the file
but are treated as pruned.

A session's state is the replay of its lines, applied with the same rules as
the memory store. Durability: each line goes out in one ``os.write`` on an
``O_APPEND`` descriptor followed by ``os.fsync`` (and the directory is fsynced
when a file is created), so a line is on disk when the call returns and survives
a process kill *and* a power loss.

Torn lines: a process killed in the middle of a write can leave a last line
without its ``\\n``. Readers only ever consume complete lines and skip any line
that is not a valid record. The next writer (under the lock) first ends the
fragment with ``" #torn\\n"``: the ``#`` guarantees the fragment can never parse,
even when only its newline was missing, so every reader and writer agrees it
never happened, and the new line starts cleanly after it.

Several processes may share the directory: every read-modify-append holds an
exclusive ``fcntl.flock`` on the session file (so ``begin_run``'s busy check is
a real compare-and-set across processes), and the per-session replay cache is
keyed on the file's identity, size and mtime, so appends made by another
process are always seen (only the new bytes are replayed).

All calls block (file I/O and fsync); run them in a worker thread.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, TypeVar, Union

import msgspec

from ..errors import InboxFull, SessionBusy, StoreError
from ..fsutil import PRIVATE_FILE_MODE, make_private_dir
from ..events import EventEnvelope
from ..transcript import Message
from .base import (
    LeaseReport,
    Renewal,
    apply_renewal,
    lease_report,
    file_stamp,
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

log = logging.getLogger("rkat.store")

__all__ = ["JsonlStore"]

SUFFIX = ".jsonl"
#: Written before a new line when the file ends in a torn fragment: ends the
#: fragment's line and makes sure it can never parse as a record.
TORN_MARK = b" #torn\n"

T = TypeVar("T")

_LINE = dict(tag_field="op", kw_only=True)


class _Create(msgspec.Struct, tag="create", **_LINE):
    record: SessionRecord
    messages: list[Message]


class _BeginRun(msgspec.Struct, tag="begin_run", **_LINE):
    run: RunRecord


class _Commit(msgspec.Struct, tag="commit", **_LINE):
    commit: RunCommit


class _Archive(msgspec.Struct, tag="archive", **_LINE):
    at_ms: int


class _Lease(msgspec.Struct, tag="lease", **_LINE):
    run_id: str
    expires_at_ms: int


class _InterruptRequest(msgspec.Struct, tag="interrupt_request", **_LINE):
    run_id: str


class _Input(msgspec.Struct, tag="input", **_LINE):
    input: InputRecord
    row: Message | None = None


class _Rewrite(msgspec.Struct, tag="rewrite", **_LINE):
    rewrite: TranscriptRewrite


_Op = Union[_Create, _BeginRun, _Commit, _Archive, _Lease, _InterruptRequest, _Input, _Rewrite]
_encode = msgspec.json.Encoder().encode
_decode_op = msgspec.json.Decoder(_Op).decode


class _State:
    """One session replayed up to ``offset`` (the end of its last complete line)."""

    __slots__ = ("key", "offset", "record", "messages", "runs", "events", "inputs", "bodies", "commits")

    def __init__(self) -> None:
        self.key: tuple[int, int, int, int] | None = None
        self.offset = 0
        self.record: SessionRecord | None = None
        self.messages: list[Message] = []
        self.runs: dict[str, RunRecord] = {}
        self.events: list[EventEnvelope] = []
        self.inputs: dict[str, InputRecord] = {}
        #: The rows of every replaced transcript revision, and the rewrite commits in order.
        self.bodies: dict[str, list[Message]] = {}
        self.commits: list[RevisionCommit] = []

    def apply(self, op: _Op) -> None:
        """One line, with exactly the memory store's rules."""
        if isinstance(op, _Create):
            if self.record is None:
                self.record = msgspec.structs.replace(op.record, message_count=len(op.messages))
                self.messages = list(op.messages)
            return
        record = self.record
        if record is None:  # a line before the session's create line: not ours to apply
            return
        if isinstance(op, _BeginRun):
            run = op.run
            apply_begin(record, run)
            self.runs[run.run_id] = run
        elif isinstance(op, _Commit):
            commit = op.commit
            self.messages.extend(commit.messages)
            apply_commit(record, commit, len(self.messages), self.runs.get(commit.run_id))
            self.events.extend(commit.events)
            prune = apply_event_log(record, commit)
            if prune:
                record.event_floor = max(record.event_floor, self.events[prune - 1].seq)
                del self.events[:prune]
            for item in commit.inputs:
                self.inputs[item.input_id] = item
        elif isinstance(op, _Input):
            self.inputs[op.input.input_id] = op.input
            if op.row is not None:
                self.messages.append(op.row)
                record.message_count = len(self.messages)
                record.updated_at_ms = max(record.updated_at_ms, op.input.created_at_ms)
        elif isinstance(op, _Archive):
            record.archived = True
        elif isinstance(op, _Rewrite):
            self.messages, revision = apply_rewrite_in_memory(record, self.messages, self.bodies, op.rewrite)
            self.commits.append(revision)
        elif isinstance(op, _Lease):
            if (leased := self.runs.get(op.run_id)) is not None:
                leased.lease_expires_at_ms = max(leased.lease_expires_at_ms, op.expires_at_ms)
        elif isinstance(op, _InterruptRequest):
            if (asked := self.runs.get(op.run_id)) is not None:
                asked.interrupt_requested = True


def _safe_id(session_id: str) -> bool:
    """Whether ``session_id`` can be used as a file name inside the directory."""
    return (
        isinstance(session_id, str)
        and 0 < len(session_id.encode("utf-8", "surrogatepass")) <= 200
        and not session_id.startswith(".")
        and "/" not in session_id
        and "\x00" not in session_id
    )


class JsonlStore:
    """A session store of one append-only JSON-lines file per session."""

    blocking = True
    backend = "jsonl"

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)
        try:
            make_private_dir(self.directory)
        except OSError as exc:
            raise self._error(exc) from exc
        self._meta = threading.Lock()
        self._damage_reported: set[tuple[str, int, bool]] = set()
        self._locks: dict[str, threading.Lock] = {}
        self._cache: dict[str, _State] = {}
        self._run_index: dict[str, str] = {}  # run_id -> session_id (a hint; always re-checked)

    # -- plumbing ------------------------------------------------------------

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"jsonl store {self.directory}: {exc}")

    @contextmanager
    def _guard(self) -> Iterator[None]:
        try:
            yield
        except OSError as exc:
            raise self._error(exc) from exc

    def _path(self, session_id: str) -> Path:
        return self.directory / f"{session_id}{SUFFIX}"

    def _lock_for(self, session_id: str) -> threading.Lock:
        with self._meta:
            lock = self._locks.get(session_id)
            if lock is None:
                lock = self._locks[session_id] = threading.Lock()
            return lock

    def _refresh(self, session_id: str, fd: int | None = None) -> _State | None:
        """The session's state, replaying only bytes appended since the cached read.

        The caller holds the session's thread lock. Without ``fd`` the file is
        opened (and None returned when it does not exist).
        """
        if fd is None:
            try:
                st = os.stat(self._path(session_id))
            except FileNotFoundError:
                self._cache.pop(session_id, None)
                return None
        else:
            st = os.fstat(fd)
        key = (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        state = self._cache.get(session_id)
        if state is not None and state.key == key:
            return state
        if state is None or state.key is None or state.key[:2] != key[:2] or st.st_size < state.offset:
            state = _State()
        if st.st_size > state.offset:
            if fd is None:
                try:
                    own = os.open(self._path(session_id), os.O_RDONLY | os.O_CLOEXEC)
                except FileNotFoundError:
                    self._cache.pop(session_id, None)
                    return None
                try:
                    data = os.pread(own, st.st_size - state.offset, state.offset)
                finally:
                    os.close(own)
            else:
                data = os.pread(fd, st.st_size - state.offset, state.offset)
            end = data.rfind(b"\n")
            if end >= 0:
                ops: list[_Op] = []
                damaged = 0
                for line in data[:end].split(b"\n"):
                    try:
                        ops.append(_decode_op(line))
                    except (msgspec.DecodeError, msgspec.ValidationError):
                        damaged += 1  # a torn or damaged line: never part of the state
                if damaged:
                    self._report_damage(session_id, damaged, first_line_lost=state.offset == 0 and (
                        not ops or not isinstance(ops[0], _Create)))
                for op in ops:
                    state.apply(op)
                    if isinstance(op, _BeginRun):
                        self._run_index[op.run.run_id] = session_id
                state.offset += end + 1
        state.key = key
        self._cache[session_id] = state
        return state

    def _report_damage(self, session_id: str, damaged: int, *, first_line_lost: bool) -> None:
        """Say so, once per file and count: a damaged session must not just vanish from view."""
        key = (session_id, damaged, first_line_lost)
        if key in self._damage_reported:
            return
        self._damage_reported.add(key)
        path = self._path(session_id)
        if first_line_lost:
            log.error("session file %s is damaged: its first line does not parse, so session %s cannot be "
                      "read or listed (%d damaged line(s)); restore the file from a backup", path, session_id,
                      damaged)
        else:
            log.warning("session file %s has %d damaged line(s), skipped (a write cut off by a crash, or an "
                        "edit): the rest of session %s is read", path, damaged, session_id)

    def _view(self, session_id: str, view: Callable[[_State, SessionRecord], T]) -> T | None:
        """``view`` of the session's current state, taken under its lock; None if no session."""
        if not _safe_id(session_id):
            return None
        with self._lock_for(session_id):
            state = self._refresh(session_id)
            if state is None or state.record is None:
                return None
            return view(state, state.record)

    def _append(
        self, session_id: str, decide: Callable[[_State], tuple[_Op | None, T]], *, create: bool = False,
        durable: bool = True,
    ) -> tuple[T, SessionRecord | None]:
        """Lock the session file, replay it, let ``decide`` pick the line to append (if any).

        ``decide`` sees the state under the lock and returns ``(line, result)``;
        it may raise to refuse (busy, unknown). The line is appended with one
        ``os.write`` and fsynced (unless not ``durable``: a lease renewal lost to
        a power cut only makes the lease end sooner), then replayed into the
        cache like any other.
        Returns ``result`` and a copy of the session record as of this write.
        """
        path = self._path(session_id)
        with self._lock_for(session_id):
            created = False
            flags = os.O_RDWR | os.O_APPEND | os.O_CLOEXEC
            if create:
                try:
                    fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, PRIVATE_FILE_MODE)
                    created = True
                except FileExistsError:
                    fd = os.open(path, flags)
            else:
                try:
                    fd = os.open(path, flags)
                except FileNotFoundError:
                    raise KeyError(session_id) from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                state = self._refresh(session_id, fd)
                assert state is not None
                op, result = decide(state)
                if op is None:
                    return result, None
                payload = _encode(op) + b"\n"
                size = os.fstat(fd).st_size
                if size > 0 and os.pread(fd, 1, size - 1) != b"\n":
                    payload = TORN_MARK + payload
                view = memoryview(payload)
                while view:  # one write in practice; loop only on a short write
                    view = view[os.write(fd, view):]
                if durable:
                    os.fsync(fd)
                if created:
                    self._fsync_dir()
                state = self._refresh(session_id, fd)
                assert state is not None and state.record is not None
                return result, msgspec.structs.replace(state.record)
            finally:
                os.close(fd)  # releases the flock

    def _fsync_dir(self) -> None:
        dfd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def _session_ids(self) -> list[str]:
        ids = []
        with os.scandir(self.directory) as entries:
            for entry in entries:
                name = entry.name
                if name.endswith(SUFFIX) and entry.is_file():
                    session_id = name[: -len(SUFFIX)]
                    if _safe_id(session_id):
                        ids.append(session_id)
        return ids

    # -- the SessionStore interface -------------------------------------------

    def create_session(self, record: SessionRecord, messages: list[Message]) -> None:
        if not _safe_id(record.session_id):
            raise ValueError(f"session id {record.session_id!r} cannot name a file")

        def decide(state: _State) -> tuple[_Op | None, None]:
            if state.record is not None:
                raise ValueError(f"session {record.session_id} already exists")
            line = _Create(
                record=msgspec.structs.replace(record, message_count=len(messages)), messages=list(messages)
            )
            return line, None

        with self._guard():
            self._append(record.session_id, decide, create=True)

    def get_session(self, session_id: str, *, include_archived: bool = False) -> SessionRecord | None:
        with self._guard():
            record = self._view(session_id, lambda _, rec: msgspec.structs.replace(rec))
        if record is None or (record.archived and not include_archived):
            return None
        return record

    def list_sessions(self, *, limit: int, offset: int, labels: dict[str, str] | None = None) -> list[SessionRecord]:
        live: list[SessionRecord] = []
        with self._guard():
            for session_id in self._session_ids():
                record = self._view(session_id, lambda _, rec: msgspec.structs.replace(rec))
                if record is not None and not record.archived and labels_match(record.labels, labels):
                    live.append(record)
        live.sort(key=lambda r: (r.updated_at_ms, r.session_id), reverse=True)
        return page(live, offset, limit)

    def read_messages(self, session_id: str, *, offset: int = 0, limit: int | None = None) -> list[Message]:
        with self._guard():
            rows = self._view(session_id, lambda state, _: page(state.messages, offset, limit))
        return [] if rows is None else rows

    def begin_run(self, run: RunRecord) -> SessionRecord:
        if not _safe_id(run.session_id):
            raise KeyError(run.session_id)

        def decide(state: _State) -> tuple[_Op | None, None]:
            record = state.record
            if record is None or record.archived:
                raise KeyError(run.session_id)
            if record.active_run_id is not None:
                raise SessionBusy(run.session_id, record.active_run_id)
            return _BeginRun(run=run), None

        with self._guard():
            _, record = self._append(run.session_id, decide)
        assert record is not None
        return record

    def commit_run(self, commit: RunCommit) -> SessionRecord:
        if not _safe_id(commit.session_id):
            raise KeyError(commit.session_id)

        def decide(state: _State) -> tuple[_Op | None, None]:
            if state.record is None:
                raise KeyError(commit.session_id)
            check_commit_allowed(state.runs.get(commit.run_id), commit)
            return _Commit(commit=commit), None

        with self._guard():
            _, record = self._append(commit.session_id, decide)
        assert record is not None
        return record

    def open_runs(self) -> list[RunRecord]:
        runs: list[RunRecord] = []
        with self._guard():
            for session_id in self._session_ids():
                found = self._view(
                    session_id,
                    lambda state, _: [msgspec.structs.replace(r) for r in state.runs.values() if r.status == "running"],
                )
                runs.extend(found or [])
        runs.sort(key=lambda r: (r.started_at_ms, r.run_id))
        return runs

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._guard():
            hint = self._run_index.get(run_id)
            # The index knows every run this process has replayed; a miss may be a
            # run another process started since, so fall back to a scan.
            def find(state: _State, _: SessionRecord) -> RunRecord | None:
                run = state.runs.get(run_id)
                return None if run is None else msgspec.structs.replace(run)

            if hint is not None and (run := self._view(hint, find)) is not None:
                return run
            for session_id in self._session_ids():
                if (run := self._view(session_id, find)) is not None:
                    return run
        return None

    def archive_session(self, session_id: str) -> bool:
        if not _safe_id(session_id):
            return False

        def decide(state: _State) -> tuple[_Op | None, bool]:
            record = state.record
            if record is None or record.archived:
                return None, False
            return _Archive(at_ms=time.time_ns() // 1_000_000), True

        with self._guard():
            try:
                return self._append(session_id, decide)[0]
            except KeyError:
                return False

    def renew_leases(self, owner: str, runs: list[tuple[str, str]], expires_at_ms: int) -> LeaseReport:
        outcomes: dict[str, Renewal] = {}
        for session_id, run_id in runs:
            def decide(state: _State) -> tuple[_Op | None, Renewal]:
                # Judge a copy: the cached state changes only by replaying the appended line.
                run = state.runs.get(run_id)
                outcome = apply_renewal(None if run is None else msgspec.structs.replace(run), owner, expires_at_ms)
                return (None if outcome == "lost" else _Lease(run_id=run_id, expires_at_ms=expires_at_ms)), outcome

            try:
                with self._guard():
                    outcomes[run_id] = self._append(session_id, decide, durable=False)[0] \
                        if _safe_id(session_id) else "lost"
            except KeyError:
                outcomes[run_id] = "lost"
        return lease_report(outcomes)

    def request_interrupt(self, session_id: str, run_id: str) -> bool:
        if not _safe_id(session_id):
            return False

        def decide(state: _State) -> tuple[_Op | None, bool]:
            run = state.runs.get(run_id)
            if run is None or run.status != "running":
                return None, False
            return _InterruptRequest(run_id=run_id), True

        with self._guard():
            try:
                return self._append(session_id, decide)[0]
            except KeyError:
                return False

    def close_stale_run(self, session_id: str, run_id: str, *, now_ms: int, owner_dead: bool, reason: str) -> bool:
        if not _safe_id(session_id):
            return False

        def decide(state: _State) -> tuple[_Op | None, bool]:
            run = state.runs.get(run_id)
            if run is None or state.record is None or not lease_is_stale(run, now_ms=now_ms, owner_dead=owner_dead):
                return None, False
            return _Commit(commit=interrupted_commit(run, state.record, now_ms=now_ms, reason=reason)), True

        with self._guard():
            try:
                return self._append(session_id, decide)[0]
            except KeyError:
                return False

    # -- event log and inputs ---------------------------------------------------

    def read_events(self, session_id: str, *, after_seq: int, limit: int) -> EventPage | None:
        with self._guard():
            return self._view(session_id, lambda state, rec: read_log(state.events, rec.event_floor, after_seq, limit))

    def admit_input(self, record: InputRecord, row: Message | None, *, inbox_capacity: int) -> InputRecord | None:
        if not _safe_id(record.session_id):
            raise KeyError(record.session_id)

        def decide(state: _State) -> tuple[_Op | None, InputRecord | None]:
            session = state.record
            if session is None or session.archived:
                raise KeyError(record.session_id)
            if record.idempotency_key is not None:
                for item in state.inputs.values():
                    if item.idempotency_key == record.idempotency_key:
                        return None, msgspec.structs.replace(item)
            if record.state == "queued" and sum(i.state == "queued" for i in state.inputs.values()) >= inbox_capacity:
                raise InboxFull(record.session_id, inbox_capacity)
            return _Input(input=record, row=row), None

        with self._guard():
            return self._append(record.session_id, decide)[0]

    def get_input(self, session_id: str, *, input_id: str | None = None,
                  idempotency_key: str | None = None) -> InputRecord | None:
        def find(state: _State, _: SessionRecord) -> InputRecord | None:
            for item in state.inputs.values():
                if (item.input_id == input_id) if input_id is not None else (item.idempotency_key == idempotency_key):
                    return msgspec.structs.replace(item)
            return None

        with self._guard():
            return self._view(session_id, find)

    def queued_inputs(self, session_id: str) -> list[InputRecord]:
        with self._guard():
            found = self._view(session_id, lambda state, _: [msgspec.structs.replace(i)
                                                             for i in state.inputs.values() if i.state == "queued"])
        return found or []

    def rewrite_transcript(self, rewrite: TranscriptRewrite) -> tuple[SessionRecord, RevisionCommit]:
        sid = rewrite.session_id
        if not _safe_id(sid):
            raise KeyError(sid)

        def decide(state: _State) -> tuple[_Op | None, None]:
            check_rewrite(state.record, rewrite, set(state.bodies))
            return _Rewrite(rewrite=rewrite), None

        with self._guard():
            _, record = self._append(sid, decide)
            assert record is not None
            # The line was replayed under the lock; its commit is the last one (read it under the lock).
            commit = self._view(sid, lambda state, _: state.commits[-1])
        assert commit is not None
        return record, commit

    def list_revisions(self, session_id: str) -> list[RevisionCommit]:
        with self._guard():
            commits = self._view(session_id, lambda state, _: list(state.commits))
        return commits or []

    def read_revision(self, session_id: str, revision: str, *, offset: int = 0,
                      limit: int | None = None) -> list[Message] | None:
        def view(state: _State, record: SessionRecord) -> list[Message] | None:
            if revision == record.transcript_revision:
                return page(state.messages, offset, limit)
            body = state.bodies.get(revision)
            return None if body is None else page(body, offset, limit)

        with self._guard():
            return self._view(session_id, view)

    def fork_session(self, fork: ForkRequest) -> SessionRecord:
        src = fork.source_session_id
        if not _safe_id(src):
            raise KeyError(src)
        if not _safe_id(fork.record.session_id):
            raise ValueError(f"session id {fork.record.session_id!r} cannot name a file")
        if fork.record.session_id == src:  # (checked before taking the source's lock twice)
            raise ValueError(f"session {src} already exists")

        def decide(state: _State) -> tuple[_Op | None, SessionRecord]:
            # Under the source's lock: it cannot start a run or change while the fork is written.
            source = check_fork(state.record, fork)
            rows = [*state.messages[:fork.upto], *fork.tail]
            record = fork_record(fork, source, rows)

            def create(child: _State) -> tuple[_Op | None, None]:
                if child.record is not None:
                    raise ValueError(f"session {record.session_id} already exists")
                return _Create(record=record, messages=rows), None

            self._append(record.session_id, create, create=True)
            return None, record

        with self._guard():
            try:
                return self._append(src, decide)[0]
            except FileNotFoundError:
                raise KeyError(src) from None

    def change_stamp(self, session_id: str) -> tuple[int, ...] | None:
        if not _safe_id(session_id):
            return None
        return file_stamp(self._path(session_id))  # every write appends to the session's own file

    def close(self) -> None:
        with self._meta:
            self._cache.clear()
            self._run_index.clear()
