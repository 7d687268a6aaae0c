"""Transcript rewrites, revisions and forks in the ``sqlite`` backend.

Each function runs inside the caller's ``BEGIN IMMEDIATE`` transaction, so a
rewrite (old head's rows kept, new rows written, commit recorded, head moved) or
a fork (source checked, rows copied, new session inserted) is all or nothing: a
process killed at any instant leaves the old revision or the new one, never a
mix. Rows are copied inside SQLite (``INSERT ... SELECT``) without decoding them,
so forking a long session costs about as much as reading it.
"""

from __future__ import annotations

import sqlite3
from typing import Callable

import msgspec

from ..transcript import Message, decode_message, encode_message
from .base import SessionRecord
from .query import page
from .revisions import (
    ForkRequest,
    RevisionCommit,
    TranscriptRewrite,
    apply_rewrite_record,
    check_fork,
    check_rewrite,
    effective_system_prompt,
    fork_record,
    last_assistant_text,
    make_commit,
    span_digest,
)

__all__ = ["MIGRATION", "rewrite", "list_revisions", "read_revision", "fork"]

#: The migration step that adds revision storage (appended to ``sqlite.MIGRATIONS``).
MIGRATION = """
CREATE TABLE IF NOT EXISTS transcript_revisions (
    session_id TEXT NOT NULL,
    ordinal    INTEGER NOT NULL,
    revision   TEXT NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (session_id, ordinal)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS revision_messages (
    session_id TEXT NOT NULL,
    revision   TEXT NOT NULL,
    idx        INTEGER NOT NULL,
    body       BLOB NOT NULL,
    PRIMARY KEY (session_id, revision, idx)
) WITHOUT ROWID;
"""

_encode = msgspec.json.Encoder().encode
_decode_commit = msgspec.json.Decoder(RevisionCommit).decode
#: How a system row's encoding starts (the tag is encoded first), to find them without decoding every row.
_SYSTEM_PREFIX = b'{"role":"system"'
_ASSISTANT_PREFIX = b'{"role":"block_assistant"'

Load = Callable[[sqlite3.Connection, str], "SessionRecord | None"]
Put = Callable[..., None]


def _bodies(conn: sqlite3.Connection, session_id: str, start: int = 0, end: int | None = None) -> list[bytes]:
    sql = "SELECT body FROM messages WHERE session_id = ? AND idx >= ?"
    args: tuple[object, ...] = (session_id, start)
    if end is not None:
        sql += " AND idx < ?"
        args += (end,)
    return [r[0] for r in conn.execute(sql + " ORDER BY idx", args)]


def _system_rows(conn: sqlite3.Connection, session_id: str, table: str = "messages", upto: int | None = None,
                 revision: str | None = None) -> list[Message]:
    sql = f"SELECT body FROM {table} WHERE session_id = ? AND substr(body, 1, ?) = ?"
    args: list[object] = [session_id, len(_SYSTEM_PREFIX), _SYSTEM_PREFIX]
    if revision is not None:
        sql += " AND revision = ?"
        args.append(revision)
    if upto is not None:
        sql += " AND idx < ?"
        args.append(upto)
    return [decode_message(r[0]) for r in conn.execute(sql + " ORDER BY idx", args)]


def rewrite(conn: sqlite3.Connection, rw: TranscriptRewrite, load: Load, put: Put) -> tuple[SessionRecord,
                                                                                          RevisionCommit]:
    """Commit ``rw`` on the session's head (see :mod:`.revisions`)."""
    sid = rw.session_id
    known = _retained(conn, sid) if rw.restore_from is not None else None
    record = check_rewrite(load(conn, sid), rw, known)
    head = record.transcript_revision
    count = record.message_count
    # Keep the replaced head's rows under its name, copied inside SQLite.
    conn.execute("INSERT OR REPLACE INTO revision_messages (session_id, revision, idx, body)"
                 " SELECT session_id, ?, idx, body FROM messages WHERE session_id = ?", (head, sid))
    if rw.restore_from is not None and rw.restore_from != head:
        start, end = 0, count
        replacement = [r[0] for r in conn.execute(
            "SELECT body FROM revision_messages WHERE session_id = ? AND revision = ? ORDER BY idx",
            (sid, rw.restore_from))]
    elif rw.restore_from is not None:
        start, end, replacement = 0, count, _bodies(conn, sid)
    else:
        start, end = rw.start, rw.end
        replacement = [encode_message(m) for m in rw.rows]
    original = _bodies(conn, sid, start, end)
    tail = _bodies(conn, sid, end)
    conn.execute("DELETE FROM messages WHERE session_id = ? AND idx >= ?", (sid, start))
    conn.executemany("INSERT INTO messages (session_id, idx, body) VALUES (?, ?, ?)",
                     [(sid, start + i, body) for i, body in enumerate([*replacement, *tail])])
    after = start + len(replacement) + len(tail)
    commit = make_commit(record, rw, start, end, count, after, span_digest(original), span_digest(replacement))
    conn.execute("INSERT INTO transcript_revisions (session_id, ordinal, revision, body) VALUES (?, ?, ?, ?)",
                 (sid, commit.ordinal, commit.revision, _encode(commit)))
    apply_rewrite_record(record, commit, message_count=after,
                         system_prompt=effective_system_prompt(_system_rows(conn, sid)))
    put(conn, record, insert=False)
    return record, commit


def _retained(conn: sqlite3.Connection, session_id: str) -> set[str]:
    """The revisions kept besides the head: each one some commit replaced."""
    return {c.parent_revision for c in list_revisions(conn, session_id)}


def list_revisions(conn: sqlite3.Connection, session_id: str) -> list[RevisionCommit]:
    """Every commit of the session, oldest first."""
    rows = conn.execute("SELECT body FROM transcript_revisions WHERE session_id = ? ORDER BY ordinal",
                        (session_id,)).fetchall()
    return [_decode_commit(r[0]) for r in rows]


def read_revision(conn: sqlite3.Connection, session_id: str, revision: str, head: str, *, offset: int,
                  limit: int | None) -> list[Message] | None:
    """A page of a revision's rows (the head's are the live rows); None if the session never had it."""
    args: tuple[str, ...]
    if revision == head:
        table, where, args = "messages", "session_id = ?", (session_id,)
    else:
        if revision not in _retained(conn, session_id):
            return None
        table, where, args = "revision_messages", "session_id = ? AND revision = ?", (session_id, revision)
    sql = f"SELECT body FROM {table} WHERE {where} ORDER BY idx"
    if offset >= 0 and (limit is None or limit >= 0):
        rows = conn.execute(sql + " LIMIT ? OFFSET ?", (*args, -1 if limit is None else limit, offset)).fetchall()
        return [decode_message(r[0]) for r in rows]
    return page([decode_message(r[0]) for r in conn.execute(sql, args)], offset, limit)


def fork(conn: sqlite3.Connection, request: ForkRequest, load: Load, put: Put) -> SessionRecord:
    """Create the forked session (see :mod:`.revisions`)."""
    src = request.source_session_id
    source = check_fork(load(conn, src), request)
    new_id = request.record.session_id
    if conn.execute("SELECT 1 FROM sessions WHERE session_id = ?", (new_id,)).fetchone() is not None:
        raise ValueError(f"session {new_id} already exists")
    conn.execute("INSERT INTO messages (session_id, idx, body)"
                 " SELECT ?, idx, body FROM messages WHERE session_id = ? AND idx < ?", (new_id, src, request.upto))
    conn.executemany("INSERT INTO messages (session_id, idx, body) VALUES (?, ?, ?)",
                     [(new_id, request.upto + i, encode_message(m)) for i, m in enumerate(request.tail)])
    # Only the rows that shape the record are decoded: system rows and the last answer.
    system = _system_rows(conn, src, upto=request.upto)
    last = conn.execute("SELECT body FROM messages WHERE session_id = ? AND idx < ?"
                        " AND substr(body, 1, ?) = ? ORDER BY idx DESC LIMIT 1",
                        (src, request.upto, len(_ASSISTANT_PREFIX), _ASSISTANT_PREFIX)).fetchone()
    shaping = [*system, *([decode_message(last[0])] if last else []), *request.tail]
    record = fork_record(request, source, shaping)
    record = msgspec.structs.replace(record, message_count=request.upto + len(request.tail),
                                     last_assistant_text=last_assistant_text(shaping))
    put(conn, record, insert=True)
    return record
