"""Reading and writing the ``postgres`` backend's session, run and transcript rows (inside a transaction).

Every function takes the caller's connection, in the caller's transaction, and
the realm id, which scopes every statement. ``lock=True`` reads a row ``FOR
UPDATE``: another host's transaction that wants it waits until this one ends,
then sees what it wrote. Lock order, to rule out deadlocks: a run's row before
its session's row, sessions in id order.
"""

from __future__ import annotations

from typing import Any, Iterable

import msgspec
from psycopg import Connection
from psycopg.types.json import Jsonb

from ..transcript import Message, encode_message
from .base import RunRecord, SessionRecord

__all__ = ["Conn", "load_session", "put_session", "insert_session", "load_run", "put_run", "next_index",
           "append_rows", "encode"]

Conn = Connection[Any]

encode = msgspec.json.Encoder().encode
_decode_session = msgspec.json.Decoder(SessionRecord).decode
_decode_run = msgspec.json.Decoder(RunRecord).decode


def load_session(conn: Conn, realm: str, session_id: str, *, lock: bool = False) -> SessionRecord | None:
    """The stored session record, or None."""
    row = conn.execute("SELECT record FROM rkat.sessions WHERE realm_id = %s AND session_id = %s"
                       + (" FOR UPDATE" if lock else ""), (realm, session_id)).fetchone()
    return None if row is None else _decode_session(row[0])


def _columns(record: SessionRecord) -> tuple[Any, ...]:
    return (record.updated_at_ms, record.archived, record.active_run_id, Jsonb(record.labels), encode(record))


def insert_session(conn: Conn, realm: str, record: SessionRecord) -> bool:
    """Insert a new session row; False (nothing written) if the id is taken, by any host."""
    cur = conn.execute(
        "INSERT INTO rkat.sessions (updated_at_ms, archived, active_run_id, labels, record, realm_id, session_id)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s) ON CONFLICT (realm_id, session_id) DO NOTHING",
        (*_columns(record), realm, record.session_id))
    return cur.rowcount == 1


def put_session(conn: Conn, realm: str, record: SessionRecord) -> None:
    """Overwrite a session row, bumping its version (what :meth:`PostgresStore.session_version` reads)."""
    conn.execute(
        "UPDATE rkat.sessions SET updated_at_ms = %s, archived = %s, active_run_id = %s, labels = %s, record = %s,"
        " version = version + 1 WHERE realm_id = %s AND session_id = %s",
        (*_columns(record), realm, record.session_id))


def load_run(conn: Conn, realm: str, run_id: str, *, lock: bool = False) -> RunRecord | None:
    """The stored run record, or None."""
    row = conn.execute("SELECT record FROM rkat.runs WHERE realm_id = %s AND run_id = %s"
                       + (" FOR UPDATE" if lock else ""), (realm, run_id)).fetchone()
    return None if row is None else _decode_run(row[0])


def put_run(conn: Conn, realm: str, run: RunRecord) -> None:
    """Overwrite a run's status and record."""
    conn.execute("UPDATE rkat.runs SET status = %s, record = %s WHERE realm_id = %s AND run_id = %s",
                 (run.status, encode(run), realm, run.run_id))


def next_index(conn: Conn, realm: str, session_id: str) -> int:
    """The index the session's next transcript row gets (its row count)."""
    row = conn.execute("SELECT COALESCE(MAX(idx) + 1, 0) FROM rkat.messages WHERE realm_id = %s AND session_id = %s",
                       (realm, session_id)).fetchone()
    return int(row[0]) if row else 0


def append_rows(conn: Conn, realm: str, session_id: str, start: int, rows: Iterable[Message | bytes]) -> None:
    """Write rows (messages, or bodies already encoded) at ``start``, ``start + 1``, ...

    One statement for all of them (arrays unnested server-side): a turn's rows
    cost one round trip and one statement, not one each.
    """
    bodies = [row if isinstance(row, bytes) else encode_message(row) for row in rows]
    if bodies:
        conn.execute("INSERT INTO rkat.messages (realm_id, session_id, idx, body)"
                     " SELECT %s, %s, idx, body FROM unnest(%s::integer[], %s::bytea[]) AS r (idx, body)",
                     (realm, session_id, list(range(start, start + len(bodies))), bodies))
