"""The ``postgres`` backend: a realm whose sessions live in a PostgreSQL database several hosts share.

Layout (:mod:`.postgres_schema`): one schema, ``rkat``; every table is keyed by
``realm_id`` first, so several realms share one database, each seeing only its
own rows. The schema is created and migrated by the hosts themselves, under an
advisory lock, when a store opens.

Transactions: every public write is one transaction on one pooled connection
(:mod:`.postgres_db`), committed when the method returns and rolled back if it
raises or the connection is lost, so it is all or nothing: a run's rows, its
events, its inputs, the session record and the run record are written by one
``commit_run`` transaction. Nothing is cached in the process: every call reads
what any host committed last.

Across hosts: ``begin_run`` is a compare-and-set in the database (a conditional
``UPDATE`` of the session row: only one transaction can move ``active_run_id``
from NULL to its run; another host's waits for it, then finds the session busy).
Writes that read before they write lock the rows first (``SELECT ... FOR
UPDATE``, a run's row before its session's), so a commit, a lease renewal and
another host's ``close_stale_run`` of the same run happen one after the other:
whichever comes second sees the first's outcome (a late commit gets
:class:`~meerkat.errors.LeaseLost`, a second close returns False).

Calls block on the network: the actors run them in worker threads
(``blocking = True``). ``change_stamp`` is therefore always None (a stamp would
need a database round trip on the event loop; the caller reads the session in
a worker thread instead, which costs the same one round trip);
:meth:`PostgresStore.session_version` is the blocking version counter.
"""

from __future__ import annotations

from typing import Callable, TypeVar

import msgspec
from psycopg.types.json import Jsonb

from ..errors import SessionBusy
from ..transcript import Message, decode_message
from .base import (
    LeaseReport,
    Renewal,
    RunCommit,
    RunRecord,
    SessionRecord,
    apply_begin,
    apply_commit,
    apply_renewal,
    check_commit_allowed,
    interrupted_commit,
    lease_is_stale,
    lease_report,
)
from .eventlog import EventPage, InputRecord
from . import postgres_history, postgres_log
from .postgres_db import DEFAULT_POOL_SIZE, PostgresDatabase
from .postgres_rows import (
    Conn,
    append_rows,
    encode,
    insert_session,
    load_run,
    load_session,
    next_index,
    put_run,
    put_session,
)
from .postgres_schema import migrate
from .query import page
from .revisions import ForkRequest, RevisionCommit, TranscriptRewrite

__all__ = ["PostgresStore"]

T = TypeVar("T")
_decode_session = msgspec.json.Decoder(SessionRecord).decode
_decode_run = msgspec.json.Decoder(RunRecord).decode
_LIST_SQL = ("SELECT record FROM rkat.sessions WHERE realm_id = %s AND NOT archived AND labels @> %s"
             " ORDER BY updated_at_ms DESC, session_id DESC")


class PostgresStore:
    """The sessions of one realm in a PostgreSQL database (see the module docstring)."""

    blocking = True
    backend = "postgres"

    def __init__(self, database_url: str, *, realm_id: str, pool_size: int = DEFAULT_POOL_SIZE,
                 database: PostgresDatabase | None = None) -> None:
        """Connect (a pool of up to ``pool_size`` connections) and migrate the schema.

        ``database``: share an open pool instead (e.g. with the realm's config
        store); the store then does not close it. StoreError if the database
        cannot be reached, naming it without the password.
        """
        self.realm_id = realm_id
        self._owns_database = database is None
        self.database = database if database is not None else PostgresDatabase(database_url, pool_size=pool_size)
        try:
            migrate(self.database)
        except BaseException:
            self.close()
            raise

    def _run(self, body: Callable[[Conn], T], what: str, *, repeatable_read: bool = False) -> T:
        return self.database.run(body, what=f"realm {self.realm_id}: {what}", repeatable_read=repeatable_read)

    # -- sessions ---------------------------------------------------------------

    def create_session(self, record: SessionRecord, messages: list[Message]) -> None:
        record = msgspec.structs.replace(record, message_count=len(messages))

        def body(conn: Conn) -> None:
            if not insert_session(conn, self.realm_id, record):
                raise ValueError(f"session {record.session_id} already exists")
            append_rows(conn, self.realm_id, record.session_id, 0, messages)

        self._run(body, "create_session")

    def get_session(self, session_id: str, *, include_archived: bool = False) -> SessionRecord | None:
        record = self._run(lambda conn: load_session(conn, self.realm_id, session_id), "get_session")
        if record is None or (record.archived and not include_archived):
            return None
        return record

    def list_sessions(self, *, limit: int, offset: int, labels: dict[str, str] | None = None) -> list[SessionRecord]:
        wanted = Jsonb(labels or {})

        def body(conn: Conn) -> list[SessionRecord]:
            if offset >= 0 and limit >= 0:
                rows = conn.execute(_LIST_SQL + " LIMIT %s OFFSET %s", (self.realm_id, wanted, limit, offset))
                return [_decode_session(r[0]) for r in rows.fetchall()]
            everything = conn.execute(_LIST_SQL, (self.realm_id, wanted)).fetchall()
            return page([_decode_session(r[0]) for r in everything], offset, limit)

        return self._run(body, "list_sessions")

    def read_messages(self, session_id: str, *, offset: int = 0, limit: int | None = None) -> list[Message]:
        sql = "SELECT body FROM rkat.messages WHERE realm_id = %s AND session_id = %s ORDER BY idx"

        def body(conn: Conn) -> list[Message]:
            if offset >= 0 and (limit is None or limit >= 0):
                rows = conn.execute(sql + " LIMIT %s OFFSET %s", (self.realm_id, session_id, limit, offset))
                return [decode_message(r[0]) for r in rows.fetchall()]
            everything = conn.execute(sql, (self.realm_id, session_id)).fetchall()
            return page([decode_message(r[0]) for r in everything], offset, limit)

        return self._run(body, "read_messages")

    def archive_session(self, session_id: str) -> bool:
        def body(conn: Conn) -> bool:
            record = load_session(conn, self.realm_id, session_id, lock=True)
            if record is None or record.archived:
                return False
            record.archived = True
            put_session(conn, self.realm_id, record)
            return True

        return self._run(body, "archive_session")

    def session_version(self, session_id: str) -> int | None:
        """The session row's version: it grows with every write to the session, by any host (blocking)."""
        row = self._run(lambda conn: conn.execute(
            "SELECT version FROM rkat.sessions WHERE realm_id = %s AND session_id = %s",
            (self.realm_id, session_id)).fetchone(), "session_version")
        return None if row is None else int(row[0])

    def change_stamp(self, session_id: str) -> tuple[int, ...] | None:
        return None  # see the module docstring: no round trip on the event loop

    # -- runs ---------------------------------------------------------------------

    def begin_run(self, run: RunRecord) -> SessionRecord:
        def body(conn: Conn) -> SessionRecord:
            while True:
                # The compare-and-set: only a transaction that finds no active run may set one.
                won = conn.execute(
                    "UPDATE rkat.sessions SET active_run_id = %s WHERE realm_id = %s AND session_id = %s"
                    " AND active_run_id IS NULL AND NOT archived RETURNING record",
                    (run.run_id, self.realm_id, run.session_id)).fetchone()
                if won is not None:
                    break
                state = conn.execute("SELECT active_run_id, archived FROM rkat.sessions"
                                     " WHERE realm_id = %s AND session_id = %s",
                                     (self.realm_id, run.session_id)).fetchone()
                if state is None or state[1]:
                    raise KeyError(run.session_id)
                if state[0] is not None:
                    raise SessionBusy(run.session_id, state[0])
                # The run we lost to committed between the two statements: try again.
            record = _decode_session(won[0])
            apply_begin(record, run)
            put_session(conn, self.realm_id, record)
            conn.execute("INSERT INTO rkat.runs (realm_id, run_id, session_id, status, record)"
                         " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (realm_id, run_id) DO UPDATE SET"
                         " session_id = excluded.session_id, status = excluded.status, record = excluded.record",
                         (self.realm_id, run.run_id, run.session_id, run.status, encode(run)))
            return record

        return self._run(body, "begin_run")

    def commit_run(self, commit: RunCommit) -> SessionRecord:
        def body(conn: Conn) -> SessionRecord:
            run = load_run(conn, self.realm_id, commit.run_id, lock=True)
            check_commit_allowed(run, commit)
            return self._apply_commit(conn, commit, run)

        return self._run(body, "commit_run")

    def _apply_commit(self, conn: Conn, commit: RunCommit, run: RunRecord | None) -> SessionRecord:
        """The body of a commit, inside the caller's transaction (the run's row already locked)."""
        record = load_session(conn, self.realm_id, commit.session_id, lock=True)
        if record is None:
            raise KeyError(commit.session_id)
        start = next_index(conn, self.realm_id, commit.session_id)
        append_rows(conn, self.realm_id, commit.session_id, start, commit.messages)
        apply_commit(record, commit, start + len(commit.messages), run)
        postgres_log.log_events(conn, self.realm_id, record, commit)
        for item in commit.inputs:
            postgres_log.put_input(conn, self.realm_id, item)
        put_session(conn, self.realm_id, record)
        if run is not None:
            put_run(conn, self.realm_id, run)
        return record

    def open_runs(self) -> list[RunRecord]:
        rows = self._run(lambda conn: conn.execute(
            "SELECT record FROM rkat.runs WHERE realm_id = %s AND status = 'running' ORDER BY created",
            (self.realm_id,)).fetchall(), "open_runs")
        return [_decode_run(r[0]) for r in rows]

    def get_run(self, run_id: str) -> RunRecord | None:
        return self._run(lambda conn: load_run(conn, self.realm_id, run_id), "get_run")

    # -- leases -------------------------------------------------------------------

    def renew_leases(self, owner: str, runs: list[tuple[str, str]], expires_at_ms: int) -> LeaseReport:
        def body(conn: Conn) -> dict[str, Renewal]:
            outcomes: dict[str, Renewal] = {}
            for run_id in sorted({run_id for _, run_id in runs}):  # one lock order for every host
                run = load_run(conn, self.realm_id, run_id, lock=True)
                outcomes[run_id] = apply_renewal(run, owner, expires_at_ms)
                if run is not None and outcomes[run_id] != "lost":
                    put_run(conn, self.realm_id, run)
            return outcomes

        return lease_report(self._run(body, "renew_leases"))

    def request_interrupt(self, session_id: str, run_id: str) -> bool:
        def body(conn: Conn) -> bool:
            run = load_run(conn, self.realm_id, run_id, lock=True)
            if run is None or run.status != "running" or run.session_id != session_id:
                return False
            run.interrupt_requested = True
            put_run(conn, self.realm_id, run)
            return True

        return self._run(body, "request_interrupt")

    def close_stale_run(self, session_id: str, run_id: str, *, now_ms: int, owner_dead: bool, reason: str) -> bool:
        def body(conn: Conn) -> bool:
            # Locked: of two hosts closing the same run, the second waits and then finds it closed.
            run = load_run(conn, self.realm_id, run_id, lock=True)
            if run is None or run.session_id != session_id or not lease_is_stale(run, now_ms=now_ms,
                                                                                  owner_dead=owner_dead):
                return False
            record = load_session(conn, self.realm_id, session_id, lock=True)
            if record is None:
                return False
            self._apply_commit(conn, interrupted_commit(run, record, now_ms=now_ms, reason=reason), run)
            return True

        return self._run(body, "close_stale_run")

    # -- event log and inputs -------------------------------------------------------

    def read_events(self, session_id: str, *, after_seq: int, limit: int) -> EventPage | None:
        return self._run(lambda conn: postgres_log.read_events(conn, self.realm_id, session_id, after_seq, limit),
                         "read_events", repeatable_read=True)

    def admit_input(self, record: InputRecord, row: Message | None, *, inbox_capacity: int) -> InputRecord | None:
        return self._run(lambda conn: postgres_log.admit_input(conn, self.realm_id, record, row, inbox_capacity),
                         "admit_input")

    def get_input(self, session_id: str, *, input_id: str | None = None,
                  idempotency_key: str | None = None) -> InputRecord | None:
        return self._run(lambda conn: postgres_log.get_input(conn, self.realm_id, session_id, input_id,
                                                             idempotency_key), "get_input")

    def queued_inputs(self, session_id: str) -> list[InputRecord]:
        return self._run(lambda conn: postgres_log.queued_inputs(conn, self.realm_id, session_id), "queued_inputs")

    # -- history ----------------------------------------------------------------------

    def rewrite_transcript(self, rewrite: TranscriptRewrite) -> tuple[SessionRecord, RevisionCommit]:
        return self._run(lambda conn: postgres_history.rewrite(conn, self.realm_id, rewrite), "rewrite_transcript")

    def list_revisions(self, session_id: str) -> list[RevisionCommit]:
        return self._run(lambda conn: postgres_history.list_revisions(conn, self.realm_id, session_id),
                         "list_revisions")

    def read_revision(self, session_id: str, revision: str, *, offset: int = 0,
                      limit: int | None = None) -> list[Message] | None:
        # One snapshot: the head cannot move between looking it up and reading its rows.
        return self._run(lambda conn: postgres_history.read_revision(conn, self.realm_id, session_id, revision,
                                                                     offset=offset, limit=limit),
                         "read_revision", repeatable_read=True)

    def fork_session(self, fork: ForkRequest) -> SessionRecord:
        return self._run(lambda conn: postgres_history.fork(conn, self.realm_id, fork), "fork_session")

    def close(self) -> None:
        if self._owns_database:
            self.database.close()
