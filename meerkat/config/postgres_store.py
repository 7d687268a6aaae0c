"""A realm's config document and generation in PostgreSQL (the ``postgres`` realm backend).

The same rules as the file store (:mod:`meerkat.config.store`): ``set`` replaces
the document, ``patch`` merges into it, both bump the generation, and with
``expected_generation`` either is a compare-and-swap. Here the critical section
is one transaction holding the realm's row of ``rkat.realm_config`` locked
(``SELECT ... FOR UPDATE``): hosts sharing the realm take turns, the generation
check and the write commit together, and a host that dies mid-write leaves the
previous document and generation (the server rolls its transaction back).

The document is stored as the same TOML text ``config.toml`` holds. Import this
module only for the postgres backend: it pulls in psycopg. Calls block on the
network: run them in a worker thread.
"""

from __future__ import annotations

import threading
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import psycopg

from meerkat.config.schema import Config, config_from_dict
from meerkat.config.store import _BaseConfigStore
from meerkat.errors import InvalidParams, StoreError
from meerkat.store.postgres_db import PostgresDatabase
from meerkat.store.postgres_schema import migrate

__all__ = ["PostgresConfigStore"]


@dataclass
class _Held:
    """The locked row, for the operation running in this thread."""

    conn: Any
    generation: int
    document: str | None


class PostgresConfigStore(_BaseConfigStore):
    """The config of realm ``realm_id`` in the database behind ``database`` (shared with its session store)."""

    def __init__(self, database: PostgresDatabase, *, realm_id: str) -> None:
        self.database = database
        self.realm_id = realm_id
        self._held = threading.local()
        migrate(database)  # idempotent; the session store usually did it already

    def __repr__(self) -> str:
        return f"PostgresConfigStore({self.database.target!r}, realm_id={self.realm_id!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            with self.database.pool.connection() as conn:
                conn.execute("INSERT INTO rkat.realm_config (realm_id) VALUES (%s) ON CONFLICT (realm_id) DO NOTHING",
                             (self.realm_id,))
                row = conn.execute("SELECT generation, document FROM rkat.realm_config WHERE realm_id = %s"
                                   " FOR UPDATE", (self.realm_id,)).fetchone()
                assert row is not None
                self._held.value = _Held(conn, int(row[0]), row[1])
                try:
                    yield
                finally:
                    self._held.value = None
        except psycopg.Error as exc:
            raise self.database.error(exc, f"realm {self.realm_id}: config") from None

    def _row(self) -> _Held:
        held: _Held | None = getattr(self._held, "value", None)
        assert held is not None, "config row read outside the critical section"
        return held

    def _load_generation(self) -> int:
        return self._row().generation

    def _load_config(self) -> Config:
        document = self._row().document
        if document is None:
            return Config()
        where = f"the config of realm {self.realm_id} in {self.database.target}"
        try:
            return config_from_dict(tomllib.loads(document))
        except tomllib.TOMLDecodeError as exc:
            raise StoreError(f"corrupt {where}: {exc}") from None
        except InvalidParams as exc:
            raise StoreError(f"invalid {where}: {exc.message}") from None

    def _save(self, config: Config, document: bytes, generation: int) -> None:
        held = self._row()
        held.conn.execute("UPDATE rkat.realm_config SET generation = %s, document = %s WHERE realm_id = %s",
                          (generation, document.decode("utf-8"), self.realm_id))
        held.generation, held.document = generation, document.decode("utf-8")
