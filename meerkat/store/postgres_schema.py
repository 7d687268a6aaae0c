"""The ``postgres`` backend's schema, and the migrations every host applies to it at start.

Layout: one schema, ``rkat``, shared by every realm that lives in the database.
Each table is keyed by ``realm_id`` first, so realms are separated by their rows
(never by ``search_path``), a realm's queries touch only its own index ranges,
and a new realm needs no DDL. Bodies (session records, transcript rows, events,
inputs, revision commits) are the same msgspec JSON the ``sqlite`` backend
stores, as ``bytea``; the columns beside them are what queries filter and
order by.

Migrations are an ordered list of steps, mirroring the ``sqlite`` backend's
(base; event log and inputs; revisions; live events); ``rkat.schema_migrations`` records the
ones applied. A host opening the store takes a transaction-scoped advisory
lock, applies the missing steps and records them in that one transaction, so
hosts starting at once apply each step exactly once (the others wait, then find
nothing left to do), and a host killed half-way leaves no step half-applied
(PostgreSQL's DDL is transactional). Steps are idempotent all the same. New
steps go at the end; a landed step is never edited.
"""

from __future__ import annotations

from typing import Any

import psycopg

from ..errors import StoreError
from .postgres_db import PostgresDatabase
from .postgres_live import LIVE_EVENTS_MIGRATION

__all__ = ["SCHEMA", "MIGRATIONS", "SCHEMA_VERSION", "MIGRATION_LOCK_KEY", "migrate"]

SCHEMA = "rkat"
#: The advisory lock key that serializes migrations (the bytes of ``rkat`` as a number).
MIGRATION_LOCK_KEY = 0x726B6174

MIGRATIONS: tuple[str, ...] = (
    # 1: sessions (record plus the columns list and busy checks use), transcript rows,
    # runs, and each realm's config document with its generation.
    """
    CREATE TABLE IF NOT EXISTS rkat.sessions (
        realm_id      text NOT NULL,
        session_id    text NOT NULL,
        updated_at_ms bigint NOT NULL,
        archived      boolean NOT NULL DEFAULT false,
        active_run_id text,
        labels        jsonb NOT NULL DEFAULT '{}',
        version       bigint NOT NULL DEFAULT 1,
        record        bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id)
    );
    CREATE INDEX IF NOT EXISTS sessions_live_order
        ON rkat.sessions (realm_id, archived, updated_at_ms DESC, session_id DESC);
    CREATE TABLE IF NOT EXISTS rkat.messages (
        realm_id   text NOT NULL,
        session_id text NOT NULL,
        idx        integer NOT NULL,
        body       bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id, idx)
    );
    CREATE TABLE IF NOT EXISTS rkat.runs (
        realm_id   text NOT NULL,
        run_id     text NOT NULL,
        session_id text NOT NULL,
        status     text NOT NULL,
        created    bigint GENERATED ALWAYS AS IDENTITY,
        record     bytea NOT NULL,
        PRIMARY KEY (realm_id, run_id)
    );
    CREATE INDEX IF NOT EXISTS runs_running ON rkat.runs (realm_id, created) WHERE status = 'running';
    CREATE TABLE IF NOT EXISTS rkat.realm_config (
        realm_id   text PRIMARY KEY,
        generation numeric(20, 0) NOT NULL DEFAULT 0,
        document   text
    );
    """,
    # 2: the durable event log (written with each run's commit) and session inputs.
    """
    CREATE TABLE IF NOT EXISTS rkat.events (
        realm_id   text NOT NULL,
        session_id text NOT NULL,
        seq        bigint NOT NULL,
        body       bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id, seq)
    );
    CREATE TABLE IF NOT EXISTS rkat.inputs (
        realm_id        text NOT NULL,
        session_id      text NOT NULL,
        input_id        text NOT NULL,
        idempotency_key text,
        state           text NOT NULL,
        created         bigint GENERATED ALWAYS AS IDENTITY,
        record          bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id, input_id)
    );
    CREATE UNIQUE INDEX IF NOT EXISTS inputs_by_key
        ON rkat.inputs (realm_id, session_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
    CREATE INDEX IF NOT EXISTS inputs_queued ON rkat.inputs (realm_id, session_id, created) WHERE state = 'queued';
    """,
    # 3: transcript revisions: each rewrite's commit, and the rows of every replaced revision.
    """
    CREATE TABLE IF NOT EXISTS rkat.transcript_revisions (
        realm_id   text NOT NULL,
        session_id text NOT NULL,
        ordinal    integer NOT NULL,
        revision   text NOT NULL,
        body       bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id, ordinal)
    );
    CREATE TABLE IF NOT EXISTS rkat.revision_messages (
        realm_id   text NOT NULL,
        session_id text NOT NULL,
        revision   text NOT NULL,
        idx        integer NOT NULL,
        body       bytea NOT NULL,
        PRIMARY KEY (realm_id, session_id, revision, idx)
    );
    """,
    # 4: running turns' events for other hosts, before their commit (see postgres_live).
    LIVE_EVENTS_MIGRATION,
)

#: The schema version this build writes (``max(version)`` of ``rkat.schema_migrations``).
SCHEMA_VERSION = len(MIGRATIONS)


def _statements(step: str) -> list[str]:
    return [s.strip() for s in step.split(";") if s.strip()]


def migrate(db: PostgresDatabase) -> int:
    """Bring the database's ``rkat`` schema to :data:`SCHEMA_VERSION`; returns the version found before.

    StoreError if the database was migrated by a newer build than this one.
    """

    def body(conn: psycopg.Connection[Any]) -> int:
        # Up to date (the usual case): no lock and no DDL, so a role without CREATE on the
        # database can serve a schema its owner migrated.
        current = conn.execute(f"SELECT to_regclass('{SCHEMA}.schema_migrations') IS NOT NULL").fetchone()
        if current and current[0]:
            row = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_migrations").fetchone()
            if row and row[0] == SCHEMA_VERSION:
                return SCHEMA_VERSION
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK_KEY,))
        conn.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        conn.execute(f"CREATE TABLE IF NOT EXISTS {SCHEMA}.schema_migrations ("
                     " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        row = conn.execute(f"SELECT COALESCE(MAX(version), 0) FROM {SCHEMA}.schema_migrations").fetchone()
        found = int(row[0]) if row else 0
        if found > SCHEMA_VERSION:
            raise StoreError(f"postgres store {db.target}: schema version {found} is newer than this build "
                             f"understands ({SCHEMA_VERSION}); upgrade rkat on this host")
        for version in range(found + 1, SCHEMA_VERSION + 1):
            for statement in _statements(MIGRATIONS[version - 1]):
                conn.execute(statement)
            conn.execute(f"INSERT INTO {SCHEMA}.schema_migrations (version) VALUES (%s)", (version,))
        return found

    return db.run(body, what="migrating the schema")
