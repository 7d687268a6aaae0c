"""Transcript rewrites, revisions and forks in the ``postgres`` backend (rules in :mod:`.revisions`).

Each function runs inside the caller's transaction, with the session's row
locked, so a rewrite (old head's rows kept, new rows written, commit recorded,
head moved) or a fork (source checked, rows copied, new session inserted) is
all or nothing, whichever host does it. Rows are copied inside the database
(``INSERT ... SELECT``) without decoding them.
"""

from __future__ import annotations

import msgspec

from ..transcript import Message, decode_message, encode_message
from .base import SessionRecord
from .postgres_rows import Conn, append_rows, encode, insert_session, load_session, put_session
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

__all__ = ["rewrite", "list_revisions", "read_revision", "fork"]

_decode_commit = msgspec.json.Decoder(RevisionCommit).decode
#: How a system row's encoding starts (the tag is encoded first), to find them without decoding every row.
_SYSTEM_PREFIX = b'{"role":"system"'
_ASSISTANT_PREFIX = b'{"role":"block_assistant"'


def _bodies(conn: Conn, realm: str, session_id: str, start: int = 0, end: int | None = None) -> list[bytes]:
    rows = conn.execute("SELECT body FROM rkat.messages WHERE realm_id = %s AND session_id = %s AND idx >= %s"
                        " AND (%s::integer IS NULL OR idx < %s) ORDER BY idx",
                        (realm, session_id, start, end, end)).fetchall()
    return [bytes(r[0]) for r in rows]


def _system_rows(conn: Conn, realm: str, session_id: str, upto: int | None = None) -> list[Message]:
    rows = conn.execute("SELECT body FROM rkat.messages WHERE realm_id = %s AND session_id = %s"
                        " AND substring(body FROM 1 FOR %s) = %s AND (%s::integer IS NULL OR idx < %s) ORDER BY idx",
                        (realm, session_id, len(_SYSTEM_PREFIX), _SYSTEM_PREFIX, upto, upto)).fetchall()
    return [decode_message(r[0]) for r in rows]


def rewrite(conn: Conn, realm: str, rw: TranscriptRewrite) -> tuple[SessionRecord, RevisionCommit]:
    """Commit ``rw`` on the session's head."""
    sid = rw.session_id
    record = load_session(conn, realm, sid, lock=True)
    known = _retained(conn, realm, sid) if rw.restore_from is not None else None
    record = check_rewrite(record, rw, known)
    head = record.transcript_revision
    count = record.message_count
    # Keep the replaced head's rows under its name, copied inside the database.
    conn.execute("INSERT INTO rkat.revision_messages (realm_id, session_id, revision, idx, body)"
                 " SELECT realm_id, session_id, %s, idx, body FROM rkat.messages"
                 " WHERE realm_id = %s AND session_id = %s"
                 " ON CONFLICT (realm_id, session_id, revision, idx) DO UPDATE SET body = excluded.body",
                 (head, realm, sid))
    if rw.restore_from is not None and rw.restore_from != head:
        start, end = 0, count
        replacement = [bytes(r[0]) for r in conn.execute(
            "SELECT body FROM rkat.revision_messages WHERE realm_id = %s AND session_id = %s AND revision = %s"
            " ORDER BY idx", (realm, sid, rw.restore_from)).fetchall()]
    elif rw.restore_from is not None:
        start, end, replacement = 0, count, _bodies(conn, realm, sid)
    else:
        start, end = rw.start, rw.end
        replacement = [encode_message(m) for m in rw.rows]
    original = _bodies(conn, realm, sid, start, end)
    tail = _bodies(conn, realm, sid, end)
    conn.execute("DELETE FROM rkat.messages WHERE realm_id = %s AND session_id = %s AND idx >= %s",
                 (realm, sid, start))
    append_rows(conn, realm, sid, start, [*replacement, *tail])
    after = start + len(replacement) + len(tail)
    commit = make_commit(record, rw, start, end, count, after, span_digest(original), span_digest(replacement))
    conn.execute("INSERT INTO rkat.transcript_revisions (realm_id, session_id, ordinal, revision, body)"
                 " VALUES (%s, %s, %s, %s, %s)", (realm, sid, commit.ordinal, commit.revision, encode(commit)))
    apply_rewrite_record(record, commit, message_count=after,
                         system_prompt=effective_system_prompt(_system_rows(conn, realm, sid)))
    put_session(conn, realm, record)
    return record, commit


def _retained(conn: Conn, realm: str, session_id: str) -> set[str]:
    """The revisions kept besides the head: each one some commit replaced."""
    return {c.parent_revision for c in list_revisions(conn, realm, session_id)}


def list_revisions(conn: Conn, realm: str, session_id: str) -> list[RevisionCommit]:
    """Every commit of the session, oldest first."""
    rows = conn.execute("SELECT body FROM rkat.transcript_revisions WHERE realm_id = %s AND session_id = %s"
                        " ORDER BY ordinal", (realm, session_id)).fetchall()
    return [_decode_commit(r[0]) for r in rows]


def read_revision(conn: Conn, realm: str, session_id: str, revision: str, *, offset: int,
                  limit: int | None) -> list[Message] | None:
    """A page of a revision's rows (the head's are the live rows); None if unknown (one snapshot: the caller's)."""
    record = load_session(conn, realm, session_id)
    if record is None:
        return None
    if revision == record.transcript_revision:
        sql = "SELECT body FROM rkat.messages WHERE realm_id = %s AND session_id = %s ORDER BY idx"
        args: tuple[str, ...] = (realm, session_id)
    else:
        if revision not in _retained(conn, realm, session_id):
            return None
        sql = ("SELECT body FROM rkat.revision_messages WHERE realm_id = %s AND session_id = %s AND revision = %s"
               " ORDER BY idx")
        args = (realm, session_id, revision)
    if offset >= 0 and (limit is None or limit >= 0):
        rows = conn.execute(sql + " LIMIT %s OFFSET %s", (*args, limit, offset)).fetchall()
        return [decode_message(r[0]) for r in rows]
    return page([decode_message(r[0]) for r in conn.execute(sql, args).fetchall()], offset, limit)


def fork(conn: Conn, realm: str, request: ForkRequest) -> SessionRecord:
    """Create the forked session."""
    src = request.source_session_id
    source = check_fork(load_session(conn, realm, src, lock=True), request)
    new_id = request.record.session_id
    if load_session(conn, realm, new_id) is not None:
        raise ValueError(f"session {new_id} already exists")
    # Only the rows that shape the record are decoded: system rows and the last answer.
    system = _system_rows(conn, realm, src, upto=request.upto)
    last = conn.execute("SELECT body FROM rkat.messages WHERE realm_id = %s AND session_id = %s AND idx < %s"
                        " AND substring(body FROM 1 FOR %s) = %s ORDER BY idx DESC LIMIT 1",
                        (realm, src, request.upto, len(_ASSISTANT_PREFIX), _ASSISTANT_PREFIX)).fetchone()
    shaping = [*system, *([decode_message(last[0])] if last else []), *request.tail]
    record = fork_record(request, source, shaping)
    record = msgspec.structs.replace(record, message_count=request.upto + len(request.tail),
                                     last_assistant_text=last_assistant_text(shaping))
    if not insert_session(conn, realm, record):  # another host took the id meanwhile
        raise ValueError(f"session {new_id} already exists")
    conn.execute("INSERT INTO rkat.messages (realm_id, session_id, idx, body)"
                 " SELECT realm_id, %s, idx, body FROM rkat.messages"
                 " WHERE realm_id = %s AND session_id = %s AND idx < %s", (new_id, realm, src, request.upto))
    append_rows(conn, realm, new_id, request.upto, request.tail)
    return record
