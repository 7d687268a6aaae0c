"""Which realms a PostgreSQL database holds: the source of truth for ``postgres`` realms.

Several hosts serve one database realm, each with its own state root (or none
worth keeping), so a realm's existence, origin and creation time live in the
database, in two small tables of the ``rkat`` schema (where the store keeps
everything else) this module creates on first use::

    rkat.database_identity  one row: the database's id (a UUID made once), shown in manifests
    rkat.realms             one row per realm: realm_id, origin, created_at (Unix seconds)

The realm manifest under a host's state root is only a cache of the row (see
:mod:`meerkat.realm_database`). Creating the tables takes a transaction-scoped
advisory lock (the store's migration lock), so hosts starting at once do not race
on ``CREATE SCHEMA``/``CREATE TABLE``.

Blocking (psycopg 3, synchronous): call from a worker thread under trio. Every
error is a :class:`StoreError` naming the database by its redacted URL and never
carrying the password.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from meerkat.dburl import redact_url, scrub_secrets
from meerkat.errors import StoreError
from meerkat.ids import new_uuid7

if TYPE_CHECKING:
    import psycopg

__all__ = ["DatabaseRealm", "DatabaseProbe", "CONNECT_TIMEOUT_S", "connect", "find_realm", "read_or_create_realm",
           "list_database_realms", "probe_database"]

#: How long opening a connection may take before the database counts as unreachable.
CONNECT_TIMEOUT_S = 5
#: pg_advisory_xact_lock key serialising DDL in the ``rkat`` schema: the same key the store's
#: migrations take (the bytes of "rkat"), so the two never create the schema at once.
_SCHEMA_LOCK_KEY = 0x726B6174
_CREATE = (
    "CREATE SCHEMA IF NOT EXISTS rkat",
    "CREATE TABLE IF NOT EXISTS rkat.database_identity (singleton boolean PRIMARY KEY DEFAULT true "
    "CHECK (singleton), database_id text NOT NULL, created_at bigint NOT NULL)",
    "CREATE TABLE IF NOT EXISTS rkat.realms (realm_id text PRIMARY KEY, origin text NOT NULL, "
    "created_at bigint NOT NULL)",
)


@dataclass(frozen=True, slots=True)
class DatabaseRealm:
    """One row of ``rkat.realms``."""

    realm_id: str
    origin: str
    created_at: int


@dataclass(frozen=True, slots=True)
class DatabaseProbe:
    """What one round trip to the database found, for ``/health`` and ``rkat doctor``."""

    url: str
    """The redacted URL."""
    reachable: bool
    latency_ms: float | None = None
    server_version: str | None = None
    #: ``max(version)`` of the store's ``rkat.schema_migrations`` (0: the store never migrated it).
    schema_version: int | None = None
    database_id: str | None = None
    problem: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-able, without the fields that are unknown."""
        return {key: value for key, value in (("url", self.url), ("reachable", self.reachable),
                                               ("latency_ms", self.latency_ms),
                                               ("server_version", self.server_version),
                                               ("schema_version", self.schema_version),
                                               ("database_id", self.database_id), ("problem", self.problem))
                if value is not None}


def _store_error(url: str, exc: Exception, doing: str) -> StoreError:
    detail = scrub_secrets(str(exc).strip() or type(exc).__name__, url)
    return StoreError(f"database {redact_url(url)}: cannot {doing}: {detail}")


@contextmanager
def connect(url: str, *, doing: str = "connect") -> Iterator["psycopg.Connection"]:
    """A short-lived autocommit connection to ``url``; any driver error becomes a :class:`StoreError`."""
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)
    except psycopg.Error as exc:
        raise _store_error(url, exc, "connect") from None
    try:
        with conn:
            yield conn
    except psycopg.Error as exc:
        raise _store_error(url, exc, doing) from None


def _tables_exist(conn: "psycopg.Connection") -> bool:
    row = conn.execute("SELECT to_regclass('rkat.realms') IS NOT NULL "
                       "AND to_regclass('rkat.database_identity') IS NOT NULL").fetchone()
    return bool(row and row[0])


def _ensure_tables(conn: "psycopg.Connection") -> None:
    if _tables_exist(conn):
        return
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK_KEY,))
        for statement in _CREATE:
            conn.execute(statement)
        conn.execute("INSERT INTO rkat.database_identity (database_id, created_at) VALUES (%s, %s) "
                     "ON CONFLICT (singleton) DO NOTHING", (new_uuid7(), int(time.time())))


def _database_id(conn: "psycopg.Connection") -> str:
    row = conn.execute("SELECT database_id FROM rkat.database_identity").fetchone()
    if row is None:  # the tables exist but the row was deleted by hand
        raise StoreError("table rkat.database_identity has no row: it was emptied by hand; restore it from a backup")
    return str(row[0])


def _realm_row(conn: "psycopg.Connection", realm_id: str) -> DatabaseRealm | None:
    row = conn.execute("SELECT realm_id, origin, created_at FROM rkat.realms WHERE realm_id = %s",
                       (realm_id,)).fetchone()
    return None if row is None else DatabaseRealm(str(row[0]), str(row[1]), int(row[2]))


def find_realm(url: str, realm_id: str) -> tuple[DatabaseRealm | None, str | None]:
    """``realm_id``'s row and the database id; creates nothing (both None in a database rkat never used)."""
    with connect(url, doing="read its realms") as conn:
        if not _tables_exist(conn):
            return None, None
        return _realm_row(conn, realm_id), _database_id(conn)


def read_or_create_realm(url: str, realm_id: str, origin: str) -> tuple[DatabaseRealm, str]:
    """``realm_id``'s row (inserted now if the realm is new, with ``origin``) and the database id."""
    with connect(url, doing="open the realm") as conn:
        _ensure_tables(conn)
        conn.execute("INSERT INTO rkat.realms (realm_id, origin, created_at) VALUES (%s, %s, %s) "
                     "ON CONFLICT (realm_id) DO NOTHING", (realm_id, origin, int(time.time())))
        row = _realm_row(conn, realm_id)
        assert row is not None  # inserted above, or there already; rows are never deleted here
        return row, _database_id(conn)


def list_database_realms(url: str) -> tuple[list[DatabaseRealm], str | None]:
    """Every realm the database holds (oldest first) and its id; empty in a database rkat never used."""
    with connect(url, doing="list its realms") as conn:
        if not _tables_exist(conn):
            return [], None
        rows = conn.execute("SELECT realm_id, origin, created_at FROM rkat.realms ORDER BY created_at, realm_id"
                            ).fetchall()
        return [DatabaseRealm(str(r[0]), str(r[1]), int(r[2])) for r in rows], _database_id(conn)


def probe_database(url: str) -> DatabaseProbe:
    """Connect, run one query, and report; never raises for an unreachable or broken database."""
    try:
        with connect(url, doing="answer a query") as conn:
            started = time.monotonic()  # the round trip of one query, not the connection's set-up
            conn.execute("SELECT 1").fetchone()
            latency_ms = round((time.monotonic() - started) * 1000, 1)
            version = conn.execute("SHOW server_version").fetchone()
            database_id = _database_id(conn) if _tables_exist(conn) else None
            schema_version = _schema_version(conn)
    except StoreError as exc:
        return DatabaseProbe(redact_url(url), False, problem=exc.message)
    return DatabaseProbe(redact_url(url), True, latency_ms=latency_ms,
                         server_version=None if version is None else str(version[0]),
                         schema_version=schema_version, database_id=database_id)


def _schema_version(conn: "psycopg.Connection") -> int:
    """The store's schema version (its migrations table; 0 before the store first migrated)."""
    exists = conn.execute("SELECT to_regclass('rkat.schema_migrations') IS NOT NULL").fetchone()
    if not (exists and exists[0]):
        return 0
    row = conn.execute("SELECT COALESCE(MAX(version), 0) FROM rkat.schema_migrations").fetchone()
    return int(row[0]) if row else 0
