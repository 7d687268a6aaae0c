"""The live side of a ``postgres`` realm: running turns' events before their commit, and wake-up pings.

Hosts serving one realm share no pids and no loopback ports, so a turn's live
events reach other hosts through the database:

* ``rkat.live_events`` (UNLOGGED: nothing here must survive a server crash, and
  it costs no WAL) holds the events a running turn has published so far. The
  owner appends them in small batches, each one short transaction; other hosts
  read the rows after their cursor. The committed event log (``rkat.events``)
  is written only by the run's commit, so rows of a finished run are redundant
  and are deleted soon after it ends (stray rows of dead owners by a sweep).
* ``NOTIFY`` carries small pings only, never event bodies (the server's notify
  queue serializes the committing transactions): the realm's live channel says
  "run R of session S has new live rows"; each owner process has its own channel on
  which it hears interrupt requests for its runs.

Every function here is synchronous and takes a psycopg connection: callers run
them in worker threads.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Iterable

import msgspec
import psycopg

__all__ = [
    "LIVE_EVENTS_MIGRATION",
    "LiveRow",
    "OwnerRequest",
    "append_live",
    "delete_live_runs",
    "live_channel",
    "live_ping",
    "notify",
    "parse_live_ping",
    "owner_channel",
    "read_live",
    "send_owner_request",
    "decode_owner_request",
    "sweep_live",
]

#: The schema step that adds the table (appended to the store's migrations).
LIVE_EVENTS_MIGRATION = """
    CREATE UNLOGGED TABLE IF NOT EXISTS rkat.live_events (
        realm_id      text NOT NULL,
        session_id    text NOT NULL,
        seq           bigint NOT NULL,
        run_id        text NOT NULL,
        written_at_ms bigint NOT NULL,
        body          bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id, seq)
    );
    CREATE INDEX IF NOT EXISTS live_events_by_run ON rkat.live_events (realm_id, run_id);
"""

Conn = psycopg.Connection[Any]


@dataclass(frozen=True, slots=True)
class LiveRow:
    """One published event of a running turn."""

    session_id: str
    seq: int
    run_id: str
    body: bytes


class OwnerRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """A ping to the process that owns a run (the run's interrupt flag is already set in the store)."""

    op: str
    session_id: str
    run_id: str


_encode = msgspec.json.Encoder().encode
_decode_request = msgspec.json.Decoder(OwnerRequest).decode


def _channel(prefix: str, *parts: str) -> str:
    # Channel names are identifiers (at most 63 bytes): a digest keeps any realm id or owner safe in one.
    digest = hashlib.sha256("\0".join(parts).encode()).hexdigest()[:24]
    return f"{prefix}{digest}"


def live_channel(realm_id: str) -> str:
    """The channel pinged with a session id when that session of ``realm_id`` has new live rows."""
    return _channel("rkat_live_", realm_id)


def live_ping(session_id: str, run_id: str) -> str:
    """The live channel's payload saying ``run_id`` of ``session_id`` has new rows."""
    return f"{session_id} {run_id}"


def parse_live_ping(payload: str) -> tuple[str, str]:
    """(session_id, run_id) of a :func:`live_ping` payload (run_id empty if it named none)."""
    session_id, _, run_id = payload.partition(" ")
    return session_id, run_id


def owner_channel(realm_id: str, owner: str) -> str:
    """The channel on which ``owner`` (``host_id:pid``) hears requests about its runs of ``realm_id``."""
    return _channel("rkat_owner_", realm_id, owner)


def append_live(conn: Conn, realm_id: str, rows: list[LiveRow], now_ms: int) -> None:
    """Write ``rows`` and ping each of their sessions, in one transaction (the pings go out at commit)."""
    if not rows:
        return
    with conn.transaction():
        _no_flush(conn)
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO rkat.live_events (realm_id, session_id, seq, run_id, written_at_ms, body)"
                " VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (realm_id, session_id, seq) DO UPDATE SET"
                " run_id = EXCLUDED.run_id, written_at_ms = EXCLUDED.written_at_ms, body = EXCLUDED.body",
                [(realm_id, row.session_id, row.seq, row.run_id, now_ms, row.body) for row in rows])
        channel = live_channel(realm_id)
        for session_id, run_id in dict.fromkeys((row.session_id, row.run_id) for row in rows):
            conn.execute("SELECT pg_notify(%s, %s)", (channel, live_ping(session_id, run_id)))


def read_live(conn: Conn, realm_id: str, session_id: str, after_seq: int, limit: int) -> list[bytes]:
    """The bodies of ``session_id``'s live rows with ``seq > after_seq``, oldest first, at most ``limit``."""
    rows = conn.execute("SELECT body FROM rkat.live_events WHERE realm_id = %s AND session_id = %s AND seq > %s"
                        " ORDER BY seq LIMIT %s", (realm_id, session_id, after_seq, limit)).fetchall()
    return [bytes(row[0]) for row in rows]


def delete_live_runs(conn: Conn, realm_id: str, run_ids: Iterable[str]) -> None:
    """Drop the live rows of runs that have ended (their events are in the committed log)."""
    ids = list(run_ids)
    if ids:
        conn.execute("DELETE FROM rkat.live_events WHERE realm_id = %s AND run_id = ANY(%s)", (realm_id, ids))


def sweep_live(conn: Conn, realm_id: str, written_before_ms: int) -> int:
    """Drop rows older than ``written_before_ms`` of runs no longer running (owners that died); how many."""
    cursor = conn.execute(
        "DELETE FROM rkat.live_events l WHERE l.realm_id = %s AND l.written_at_ms < %s AND NOT EXISTS"
        " (SELECT 1 FROM rkat.runs r WHERE r.realm_id = l.realm_id AND r.run_id = l.run_id"
        " AND r.status = 'running')", (realm_id, written_before_ms))
    return cursor.rowcount


def send_owner_request(conn: Conn, realm_id: str, owner: str, request: OwnerRequest) -> None:
    """Ping ``owner`` about one of its runs (in the caller's transaction; sent when it commits)."""
    notify(conn, owner_channel(realm_id, owner), _encode(request).decode())


def notify(conn: Conn, channel: str, payload: str) -> None:
    """Ping ``channel`` when the caller's transaction commits, without waiting for a disk flush."""
    _no_flush(conn)
    conn.execute("SELECT pg_notify(%s, %s)", (channel, payload))


def _no_flush(conn: Conn) -> None:
    # Live rows are UNLOGGED and pings best effort: nothing here is worth an fsync at commit
    # (a crash of the server loses them either way; the committed log and the store's flags stay).
    conn.execute("SET LOCAL synchronous_commit TO OFF")


def decode_owner_request(payload: str) -> OwnerRequest | None:
    """A request read off an owner channel, or None if it is not one of ours."""
    try:
        return _decode_request(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None
