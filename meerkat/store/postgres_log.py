"""The ``postgres`` backend's event log and session inputs (see :mod:`.eventlog` for the rules).

A run's events are written by :func:`log_events` inside the run's commit
transaction, so a commit is all or nothing with its events; retention prunes
the oldest ones in the same transaction.
"""

from __future__ import annotations

import msgspec

from ..errors import InboxFull
from ..events import decode_envelope, encode_envelope
from ..transcript import Message
from .base import RunCommit, SessionRecord, apply_event_log
from .eventlog import EventPage, InputRecord
from .postgres_rows import Conn, append_rows, encode, load_session, next_index, put_session

__all__ = ["log_events", "put_input", "read_events", "admit_input", "get_input", "queued_inputs"]

_decode_input = msgspec.json.Decoder(InputRecord).decode


def log_events(conn: Conn, realm: str, record: SessionRecord, commit: RunCommit) -> None:
    """Append the run's events and prune past the retention (in the commit's transaction)."""
    if commit.events:
        # One statement for the run's events; a seq given twice keeps its last event (as a replace would).
        by_seq = {e.seq: encode_envelope(e) for e in commit.events}
        conn.execute("INSERT INTO rkat.events (realm_id, session_id, seq, body)"
                     " SELECT %s, %s, seq, body FROM unnest(%s::bigint[], %s::bytea[]) AS e (seq, body)"
                     " ON CONFLICT (realm_id, session_id, seq) DO UPDATE SET body = excluded.body",
                     (realm, commit.session_id, list(by_seq), list(by_seq.values())))
    prune = apply_event_log(record, commit)
    if prune:
        row = conn.execute("SELECT seq FROM rkat.events WHERE realm_id = %s AND session_id = %s"
                           " ORDER BY seq LIMIT 1 OFFSET %s", (realm, commit.session_id, prune - 1)).fetchone()
        if row is not None:
            conn.execute("DELETE FROM rkat.events WHERE realm_id = %s AND session_id = %s AND seq <= %s",
                         (realm, commit.session_id, row[0]))
            record.event_floor = max(record.event_floor, int(row[0]))


def put_input(conn: Conn, realm: str, item: InputRecord) -> None:
    """Insert or update an input (its state and record)."""
    conn.execute(
        "INSERT INTO rkat.inputs (realm_id, session_id, input_id, idempotency_key, state, record)"
        " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (realm_id, session_id, input_id)"
        " DO UPDATE SET state = excluded.state, record = excluded.record",
        (realm, item.session_id, item.input_id, item.idempotency_key, item.state, encode(item)))


def read_events(conn: Conn, realm: str, session_id: str, after_seq: int, limit: int) -> EventPage | None:
    """A page of logged events after ``after_seq`` (run in one snapshot by the caller)."""
    record = load_session(conn, realm, session_id)
    if record is None:
        return None
    rows = conn.execute("SELECT body FROM rkat.events WHERE realm_id = %s AND session_id = %s AND seq > %s"
                        " ORDER BY seq LIMIT %s", (realm, session_id, after_seq, limit + 1)).fetchall()
    latest = conn.execute("SELECT MAX(seq) FROM rkat.events WHERE realm_id = %s AND session_id = %s",
                          (realm, session_id)).fetchone()
    events = [decode_envelope(r[0]) for r in rows[:limit]]
    return EventPage(events=events, floor=record.event_floor, latest=int(latest[0] or 0) if latest else 0,
                     has_more=len(rows) > limit)


def _by_key(conn: Conn, realm: str, session_id: str, key: str | None) -> InputRecord | None:
    found = conn.execute("SELECT record FROM rkat.inputs WHERE realm_id = %s AND session_id = %s"
                         " AND idempotency_key = %s", (realm, session_id, key)).fetchone()
    return None if found is None else _decode_input(found[0])


def admit_input(conn: Conn, realm: str, record: InputRecord, row: Message | None,
                inbox_capacity: int) -> InputRecord | None:
    """Store a new input (and its transcript row); the stored one instead if its key is taken."""
    # The session row's lock serializes admissions to one session across hosts (key and capacity checks).
    session = load_session(conn, realm, record.session_id, lock=True)
    if session is None or session.archived:
        raise KeyError(record.session_id)
    if record.idempotency_key is not None:
        found = _by_key(conn, realm, record.session_id, record.idempotency_key)
        if found is not None:
            return found
    if record.state == "queued":
        waiting = conn.execute("SELECT COUNT(*) FROM rkat.inputs WHERE realm_id = %s AND session_id = %s"
                               " AND state = 'queued'", (realm, record.session_id)).fetchone()
        if waiting is not None and waiting[0] >= inbox_capacity:
            raise InboxFull(record.session_id, inbox_capacity)
    if row is not None:
        start = next_index(conn, realm, record.session_id)
        append_rows(conn, realm, record.session_id, start, [row])
        session.message_count = start + 1
        session.updated_at_ms = max(session.updated_at_ms, record.created_at_ms)
        put_session(conn, realm, session)
    put_input(conn, realm, record)
    return None


def get_input(conn: Conn, realm: str, session_id: str, input_id: str | None,
              idempotency_key: str | None) -> InputRecord | None:
    """One input by id, else by idempotency key."""
    if input_id is None:
        return _by_key(conn, realm, session_id, idempotency_key)
    found = conn.execute("SELECT record FROM rkat.inputs WHERE realm_id = %s AND session_id = %s AND input_id = %s",
                         (realm, session_id, input_id)).fetchone()
    return None if found is None else _decode_input(found[0])


def queued_inputs(conn: Conn, realm: str, session_id: str) -> list[InputRecord]:
    """The session's queued inputs in admission order."""
    rows = conn.execute("SELECT record FROM rkat.inputs WHERE realm_id = %s AND session_id = %s"
                        " AND state = 'queued' ORDER BY created", (realm, session_id)).fetchall()
    return [_decode_input(r[0]) for r in rows]
