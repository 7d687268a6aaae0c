"""The ``sqlite`` backend (the default): one database file per realm.

Durability: the database runs in WAL mode with ``synchronous=NORMAL``. Every
public write is exactly one ``BEGIN IMMEDIATE ... COMMIT`` transaction, so it
is all or nothing. With WAL + NORMAL a commit is in the write-ahead log (in the
OS page cache) when ``commit`` returns, which survives the *process* being
killed at any instant: the next process sees every committed transaction and
none of an unfinished one. Only an OS crash or power loss may lose the last few
commits (the WAL is fsynced at checkpoints, not at every commit); even then the
database stays consistent, it just ends at an earlier commit.

Several processes may open the same file at once: all state lives in the
database (nothing is cached in memory), writers serialise on SQLite's write lock
(``BEGIN IMMEDIATE`` with a 5 s busy timeout) and readers see the last commit.
``begin_run`` is a compare-and-set inside one such transaction, so two processes
can never both start a run on one session.

All calls block; the store is shared between worker threads through one
connection guarded by a lock.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

import msgspec

from ..errors import InboxFull, SessionBusy, StoreError
from ..fsutil import make_private_dir, make_private_file
from ..events import decode_envelope, encode_envelope
from ..transcript import Message, decode_message, encode_message
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
from . import sqlite_history
from .query import labels_match, page
from .revisions import ForkRequest, RevisionCommit, TranscriptRewrite
from .wal_index import truncated_wal_index

__all__ = ["SqliteStore", "SCHEMA_VERSION", "MIGRATIONS"]

#: The schema, as an ordered list of migration steps: step ``i`` takes a
#: database from ``PRAGMA user_version`` ``i`` to ``i + 1``. Every step is
#: idempotent (``IF NOT EXISTS``), so a step half-applied by a crashed process
#: can simply run again. New steps go at the end; never edit a landed step.
MIGRATIONS: tuple[str, ...] = (
    # 1: sessions, their transcript rows, their runs.
    """
    CREATE TABLE IF NOT EXISTS sessions (
        session_id    TEXT PRIMARY KEY,
        updated_at_ms INTEGER NOT NULL,
        archived      INTEGER NOT NULL DEFAULT 0,
        active_run_id TEXT,
        record        BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS sessions_live_order
        ON sessions (archived, updated_at_ms DESC, session_id DESC);
    CREATE TABLE IF NOT EXISTS messages (
        session_id TEXT NOT NULL,
        idx        INTEGER NOT NULL,
        body       BLOB NOT NULL,
        PRIMARY KEY (session_id, idx)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS runs (
        run_id     TEXT PRIMARY KEY,
        session_id TEXT NOT NULL,
        status     TEXT NOT NULL,
        record     BLOB NOT NULL
    );
    CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
    """,
    # 2: the durable event log (written with each run's commit) and session inputs
    # (injected context, queued external events) with their idempotency keys.
    """
    CREATE TABLE IF NOT EXISTS events (
        session_id TEXT NOT NULL,
        seq        INTEGER NOT NULL,
        body       BLOB NOT NULL,
        PRIMARY KEY (session_id, seq)
    ) WITHOUT ROWID;
    CREATE TABLE IF NOT EXISTS inputs (
        session_id      TEXT NOT NULL,
        input_id        TEXT NOT NULL,
        idempotency_key TEXT,
        state           TEXT NOT NULL,
        record          BLOB NOT NULL,
        PRIMARY KEY (session_id, input_id)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS inputs_by_key
        ON inputs (session_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS inputs_by_state ON inputs (session_id, state);
    """,
    # 3: transcript revisions: each rewrite's commit, and the rows of every replaced revision.
    sqlite_history.MIGRATION,
)

#: ``PRAGMA user_version`` of the schema this module writes.
SCHEMA_VERSION = len(MIGRATIONS)

BUSY_TIMEOUT_MS = 5000

_encode = msgspec.json.Encoder().encode
_decode_session = msgspec.json.Decoder(SessionRecord).decode
_decode_run = msgspec.json.Decoder(RunRecord).decode
_decode_input = msgspec.json.Decoder(InputRecord).decode


def _retry_while_locked(step: Callable[[], None], timeout: float = BUSY_TIMEOUT_MS / 1000) -> None:
    """Run a set-up step, retrying while another process holds a lock SQLite won't wait for.

    Opening a WAL database races with other processes opening or checkpointing
    it (WAL recovery returns SQLITE_BUSY without calling the busy handler).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            step()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) and "busy" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


#: WAL pages after which SQLite checkpoints inside a commit (4 KiB pages: ~40 MB).
AUTOCHECKPOINT_PAGES = 10_000


class SqliteStore:
    """A session store in one SQLite database file (WAL, ``synchronous=NORMAL``)."""

    blocking = True
    backend = "sqlite"

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._wal_path = Path(f"{self.path}-wal")
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._checkpoint_lock = threading.Lock()
        self._checkpoint_conn: sqlite3.Connection | None = None
        try:
            make_private_dir(self.path.parent)
            # SQLite gives the -wal and -shm files the database file's mode: create it 0600 first.
            make_private_file(self.path)
            for companion in (self._wal_path, Path(f"{self.path}-shm")):
                if companion.exists():
                    make_private_file(companion)
            conn = sqlite3.connect(
                str(self.path),
                timeout=BUSY_TIMEOUT_MS / 1000,
                isolation_level=None,
                check_same_thread=False,
            )
        except (OSError, sqlite3.Error) as exc:
            raise self._error(exc) from exc
        try:
            conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            _retry_while_locked(lambda: self._enable_wal(conn))
            conn.execute("PRAGMA synchronous = NORMAL")
            # Checkpoints are run by :meth:`checkpoint` off the commit path; the
            # automatic one (which would run inside some unlucky turn's commit)
            # only remains as a safety net for a WAL that grows past ~40 MB.
            conn.execute(f"PRAGMA wal_autocheckpoint = {AUTOCHECKPOINT_PAGES}")
            _retry_while_locked(lambda: self._init_schema(conn))
        except BaseException as exc:
            conn.close()
            if isinstance(exc, sqlite3.Error):
                raise self._error(exc) from exc
            raise
        self._conn = conn

    # -- plumbing ------------------------------------------------------------

    def _enable_wal(self, conn: sqlite3.Connection) -> None:
        # Switching the journal mode needs a lock that SQLite does not wait for
        # (the busy timeout is ignored), so only switch a database that is not in
        # WAL mode yet; reading the mode needs no lock.
        if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
            return
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"sqlite store {self.path}: cannot enable WAL (journal_mode={mode})")

    def _error(self, exc: BaseException) -> StoreError:
        return StoreError(f"sqlite store {self.path}: {exc}")

    def _init_schema(self, conn: sqlite3.Connection) -> None:
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(
                    f"sqlite store {self.path}: schema version {version} is newer than "
                    f"this build understands ({SCHEMA_VERSION})"
                )
            for step in MIGRATIONS[version:]:
                for statement in step.split(";"):
                    if statement.strip():
                        conn.execute(statement)
            if version < SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """The connection for reads (each statement is its own snapshot)."""
        with self._lock:
            try:
                if self._conn is None:
                    raise sqlite3.ProgrammingError("store is closed")
                yield self._conn
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise self._error(exc) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One ``BEGIN IMMEDIATE ... COMMIT`` transaction; rolled back on any error."""
        with self._lock:
            conn = self._conn
            try:
                if conn is None:
                    raise sqlite3.ProgrammingError("store is closed")
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                    conn.execute("COMMIT")
                except BaseException:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise self._error(exc) from exc

    @staticmethod
    def _put_session(conn: sqlite3.Connection, record: SessionRecord, *, insert: bool) -> None:
        params: tuple[Any, ...] = (
            record.updated_at_ms,
            int(record.archived),
            record.active_run_id,
            _encode(record),
            record.session_id,
        )
        if insert:
            conn.execute(
                "INSERT INTO sessions (updated_at_ms, archived, active_run_id, record, session_id)"
                " VALUES (?, ?, ?, ?, ?)",
                params,
            )
        else:
            conn.execute(
                "UPDATE sessions SET updated_at_ms = ?, archived = ?, active_run_id = ?, record = ?"
                " WHERE session_id = ?",
                params,
            )

    @staticmethod
    def _load_session(conn: sqlite3.Connection, session_id: str) -> SessionRecord | None:
        row = conn.execute("SELECT record FROM sessions WHERE session_id = ?", (session_id,)).fetchone()
        return None if row is None else _decode_session(row[0])

    # -- the SessionStore interface -------------------------------------------

    def create_session(self, record: SessionRecord, messages: list[Message]) -> None:
        with self._write() as conn:
            exists = conn.execute(
                "SELECT 1 FROM sessions WHERE session_id = ?", (record.session_id,)
            ).fetchone()
            if exists is not None:
                raise ValueError(f"session {record.session_id} already exists")
            record = msgspec.structs.replace(record, message_count=len(messages))
            self._put_session(conn, record, insert=True)
            conn.executemany(
                "INSERT INTO messages (session_id, idx, body) VALUES (?, ?, ?)",
                [(record.session_id, i, encode_message(m)) for i, m in enumerate(messages)],
            )

    def get_session(self, session_id: str, *, include_archived: bool = False) -> SessionRecord | None:
        with self._read() as conn:
            record = self._load_session(conn, session_id)
        if record is None or (record.archived and not include_archived):
            return None
        return record

    def list_sessions(self, *, limit: int, offset: int, labels: dict[str, str] | None = None) -> list[SessionRecord]:
        base = "SELECT record FROM sessions WHERE archived = 0 ORDER BY updated_at_ms DESC, session_id DESC"
        with self._read() as conn:
            if not labels:
                if offset >= 0 and limit >= 0:
                    rows = conn.execute(base + " LIMIT ? OFFSET ?", (limit, offset)).fetchall()
                    return [_decode_session(r[0]) for r in rows]
                records = [_decode_session(r[0]) for r in conn.execute(base)]
                return page(records, offset, limit)
            if offset < 0 or limit < 0:
                decoded = (_decode_session(r[0]) for r in conn.execute(base))
                return page([rec for rec in decoded if labels_match(rec.labels, labels)], offset, limit)
            # Filter in SQL order, then page: stop reading once the page is full.
            out: list[SessionRecord] = []
            skipped = 0
            if limit == 0:
                return out
            cursor = conn.execute(base)
            try:
                for (blob,) in cursor:
                    rec = _decode_session(blob)
                    if not labels_match(rec.labels, labels):
                        continue
                    if skipped < offset:
                        skipped += 1
                        continue
                    out.append(rec)
                    if len(out) >= limit:
                        break
            finally:
                cursor.close()  # ends the read snapshot now, not when collected
            return out

    def read_messages(self, session_id: str, *, offset: int = 0, limit: int | None = None) -> list[Message]:
        sql = "SELECT body FROM messages WHERE session_id = ? ORDER BY idx"
        with self._read() as conn:
            if offset >= 0 and (limit is None or limit >= 0):
                rows = conn.execute(
                    sql + " LIMIT ? OFFSET ?", (session_id, -1 if limit is None else limit, offset)
                ).fetchall()
                return [decode_message(r[0]) for r in rows]
            rows = conn.execute(sql, (session_id,)).fetchall()
            return page([decode_message(r[0]) for r in rows], offset, limit)

    def begin_run(self, run: RunRecord) -> SessionRecord:
        with self._write() as conn:
            record = self._load_session(conn, run.session_id)
            if record is None or record.archived:
                raise KeyError(run.session_id)
            if record.active_run_id is not None:
                raise SessionBusy(run.session_id, record.active_run_id)
            apply_begin(record, run)
            self._put_session(conn, record, insert=False)
            # An upsert keeps the row (and its rowid, i.e. open_runs order) as the
            # memory store's dict assignment does.
            conn.execute(
                "INSERT INTO runs (run_id, session_id, status, record) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (run_id) DO UPDATE SET session_id = excluded.session_id,"
                " status = excluded.status, record = excluded.record",
                (run.run_id, run.session_id, run.status, _encode(run)),
            )
            return msgspec.structs.replace(record)

    def commit_run(self, commit: RunCommit) -> SessionRecord:
        with self._write() as conn:
            run = self._load_run(conn, commit.run_id)
            check_commit_allowed(run, commit)
            return self._apply_commit(conn, commit, run)

    @staticmethod
    def _load_run(conn: sqlite3.Connection, run_id: str) -> RunRecord | None:
        row = conn.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return None if row is None else _decode_run(row[0])

    @staticmethod
    def _put_run(conn: sqlite3.Connection, run: RunRecord) -> None:
        conn.execute("UPDATE runs SET status = ?, record = ? WHERE run_id = ?", (run.status, _encode(run), run.run_id))

    def _apply_commit(self, conn: sqlite3.Connection, commit: RunCommit, run: RunRecord | None) -> SessionRecord:
        """The body of a commit, inside the caller's transaction."""
        record = self._load_session(conn, commit.session_id)
        if record is None:
            raise KeyError(commit.session_id)
        start = conn.execute(
            "SELECT COALESCE(MAX(idx) + 1, 0) FROM messages WHERE session_id = ?", (commit.session_id,)
        ).fetchone()[0]
        conn.executemany(
            "INSERT INTO messages (session_id, idx, body) VALUES (?, ?, ?)",
            [(commit.session_id, start + i, encode_message(m)) for i, m in enumerate(commit.messages)],
        )
        apply_commit(record, commit, start + len(commit.messages), run)
        self._log_events(conn, record, commit)
        for item in commit.inputs:
            self._put_input(conn, item)
        self._put_session(conn, record, insert=False)
        if run is not None:
            self._put_run(conn, run)
        return record

    @staticmethod
    def _log_events(conn: sqlite3.Connection, record: SessionRecord, commit: RunCommit) -> None:
        """Append the run's events to the log and prune past the retention (in the commit's transaction)."""
        if commit.events:
            conn.executemany(
                "INSERT OR REPLACE INTO events (session_id, seq, body) VALUES (?, ?, ?)",
                [(commit.session_id, e.seq, encode_envelope(e)) for e in commit.events],
            )
        prune = apply_event_log(record, commit)
        if prune:
            row = conn.execute(
                "SELECT seq FROM events WHERE session_id = ? ORDER BY seq LIMIT 1 OFFSET ?",
                (commit.session_id, prune - 1),
            ).fetchone()
            if row is not None:
                conn.execute("DELETE FROM events WHERE session_id = ? AND seq <= ?", (commit.session_id, row[0]))
                record.event_floor = max(record.event_floor, row[0])

    @staticmethod
    def _put_input(conn: sqlite3.Connection, item: InputRecord) -> None:
        conn.execute(
            "INSERT INTO inputs (session_id, input_id, idempotency_key, state, record) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (session_id, input_id) DO UPDATE SET state = excluded.state, record = excluded.record",
            (item.session_id, item.input_id, item.idempotency_key, item.state, _encode(item)),
        )

    # -- event log and inputs ---------------------------------------------------

    def read_events(self, session_id: str, *, after_seq: int, limit: int) -> EventPage | None:
        with self._read() as conn:
            record = self._load_session(conn, session_id)
            if record is None:
                return None
            rows = conn.execute(
                "SELECT body FROM events WHERE session_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (session_id, after_seq, limit + 1),
            ).fetchall()
            latest = conn.execute("SELECT MAX(seq) FROM events WHERE session_id = ?", (session_id,)).fetchone()[0]
        events = [decode_envelope(r[0]) for r in rows[:limit]]
        return EventPage(events=events, floor=record.event_floor, latest=latest or 0, has_more=len(rows) > limit)

    def admit_input(self, record: InputRecord, row: Message | None, *, inbox_capacity: int) -> InputRecord | None:
        with self._write() as conn:
            session = self._load_session(conn, record.session_id)
            if session is None or session.archived:
                raise KeyError(record.session_id)
            if record.idempotency_key is not None:
                found = conn.execute(
                    "SELECT record FROM inputs WHERE session_id = ? AND idempotency_key = ?",
                    (record.session_id, record.idempotency_key),
                ).fetchone()
                if found is not None:
                    return _decode_input(found[0])
            if record.state == "queued":
                waiting = conn.execute(
                    "SELECT COUNT(*) FROM inputs WHERE session_id = ? AND state = 'queued'", (record.session_id,)
                ).fetchone()[0]
                if waiting >= inbox_capacity:
                    raise InboxFull(record.session_id, inbox_capacity)
            if row is not None:
                start = conn.execute(
                    "SELECT COALESCE(MAX(idx) + 1, 0) FROM messages WHERE session_id = ?", (record.session_id,)
                ).fetchone()[0]
                conn.execute("INSERT INTO messages (session_id, idx, body) VALUES (?, ?, ?)",
                             (record.session_id, start, encode_message(row)))
                session.message_count = start + 1
                session.updated_at_ms = max(session.updated_at_ms, record.created_at_ms)
                self._put_session(conn, session, insert=False)
            self._put_input(conn, record)
            return None

    def get_input(self, session_id: str, *, input_id: str | None = None,
                  idempotency_key: str | None = None) -> InputRecord | None:
        with self._read() as conn:
            if input_id is not None:
                found = conn.execute("SELECT record FROM inputs WHERE session_id = ? AND input_id = ?",
                                     (session_id, input_id)).fetchone()
            else:
                found = conn.execute("SELECT record FROM inputs WHERE session_id = ? AND idempotency_key = ?",
                                     (session_id, idempotency_key)).fetchone()
            return None if found is None else _decode_input(found[0])

    def queued_inputs(self, session_id: str) -> list[InputRecord]:
        with self._read() as conn:
            rows = conn.execute(
                "SELECT record FROM inputs WHERE session_id = ? AND state = 'queued' ORDER BY rowid",
                (session_id,),
            ).fetchall()
        return [_decode_input(r[0]) for r in rows]

    def renew_leases(self, owner: str, runs: list[tuple[str, str]], expires_at_ms: int) -> LeaseReport:
        outcomes: dict[str, Renewal] = {}
        with self._write() as conn:  # every run of this process in one transaction
            for _, run_id in runs:
                run = self._load_run(conn, run_id)
                outcomes[run_id] = apply_renewal(run, owner, expires_at_ms)
                if run is not None and outcomes[run_id] != "lost":
                    self._put_run(conn, run)
        return lease_report(outcomes)

    def request_interrupt(self, session_id: str, run_id: str) -> bool:
        with self._write() as conn:
            run = self._load_run(conn, run_id)
            if run is None or run.status != "running" or run.session_id != session_id:
                return False
            run.interrupt_requested = True
            self._put_run(conn, run)
            return True

    def close_stale_run(self, session_id: str, run_id: str, *, now_ms: int, owner_dead: bool, reason: str) -> bool:
        with self._write() as conn:
            run = self._load_run(conn, run_id)
            if run is None or run.session_id != session_id or not lease_is_stale(run, now_ms=now_ms,
                                                                                  owner_dead=owner_dead):
                return False
            record = self._load_session(conn, session_id)
            if record is None:
                return False
            self._apply_commit(conn, interrupted_commit(run, record, now_ms=now_ms, reason=reason), run)
            return True

    def open_runs(self) -> list[RunRecord]:
        with self._read() as conn:
            rows = conn.execute("SELECT record FROM runs WHERE status = 'running' ORDER BY rowid").fetchall()
            return [_decode_run(r[0]) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        with self._read() as conn:
            row = conn.execute("SELECT record FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            return None if row is None else _decode_run(row[0])

    def archive_session(self, session_id: str) -> bool:
        with self._write() as conn:
            record = self._load_session(conn, session_id)
            if record is None or record.archived:
                return False
            record.archived = True
            self._put_session(conn, record, insert=False)
            return True

    def rewrite_transcript(self, rewrite: TranscriptRewrite) -> tuple[SessionRecord, RevisionCommit]:
        with self._write() as conn:
            return sqlite_history.rewrite(conn, rewrite, self._load_session, self._put_session)

    def list_revisions(self, session_id: str) -> list[RevisionCommit]:
        with self._read() as conn:
            return sqlite_history.list_revisions(conn, session_id)

    def read_revision(self, session_id: str, revision: str, *, offset: int = 0,
                      limit: int | None = None) -> list[Message] | None:
        # One read transaction: the head cannot move between looking it up and reading its rows.
        with self._read() as conn:
            conn.execute("BEGIN")
            try:
                record = self._load_session(conn, session_id)
                if record is None:
                    return None
                return sqlite_history.read_revision(conn, session_id, revision, record.transcript_revision,
                                                    offset=offset, limit=limit)
            finally:
                conn.execute("COMMIT")

    def fork_session(self, fork: ForkRequest) -> SessionRecord:
        with self._write() as conn:
            return sqlite_history.fork(conn, fork, self._load_session, self._put_session)

    def change_stamp(self, session_id: str) -> tuple[int, ...] | None:
        # Every commit, of any process, is written to the WAL first; a checkpoint
        # then writes the database file. Either changes when anything may have.
        return file_stamp(self._wal_path, self.path)

    def checkpoint(self) -> None:
        """Copy committed WAL pages into the database file (``PRAGMA wal_checkpoint(PASSIVE)``).

        It uses a connection of its own, so commits on the main connection go on
        meanwhile; PASSIVE never waits for readers or writers. Call it from a
        worker thread now and then to keep the WAL short.
        """
        with self._checkpoint_lock:
            if self._conn is None:
                return
            truncated = truncated_wal_index(self.path)
            if truncated is not None:  # touching the database now would be this process's SIGBUS: say why first
                raise StoreError(truncated)
            emptied = self._emptied_under_us()
            if emptied is not None:
                raise StoreError(emptied)
            try:
                if self._checkpoint_conn is None:
                    self._checkpoint_conn = sqlite3.connect(str(self.path), timeout=BUSY_TIMEOUT_MS / 1000,
                                                            isolation_level=None, check_same_thread=False)
                self._checkpoint_conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _emptied_under_us(self) -> str | None:
        """A problem when the open database file was deleted or emptied behind this store.

        An open sqlite database in WAL mode is never zero bytes (its header is written when the
        journal mode is set). Checkpointing into an emptied or re-created file would copy only
        the pages the WAL holds, making a partial database that passes for healthy: the damage
        must stay visible (``/health``, ``rkat doctor``) until someone restores the realm.
        """
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return f"session database {self.path} was deleted while open: not checkpointing into a new file"
        if size == 0:
            return (f"session database {self.path} was emptied (zero bytes) while open: not checkpointing "
                    f"into it (restore the realm from a backup)")
        return None

    def close(self) -> None:
        with self._checkpoint_lock:
            if self._checkpoint_conn is not None:
                self._checkpoint_conn.close()
                self._checkpoint_conn = None
        with self._lock:
            conn, self._conn = self._conn, None
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error as exc:
                    raise self._error(exc) from exc
