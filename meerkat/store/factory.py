"""Open the store a realm's manifest pins."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidParams
from .base import SessionStore
from .memory import MemoryStore

__all__ = ["open_store"]


def open_store(backend: str, *, sqlite_path: Path | None = None, jsonl_dir: Path | None = None,
               database_url: str | None = None, realm_id: str | None = None,
               pool_size: int | None = None) -> SessionStore:
    """A store for ``backend``; disk backends need their path, ``postgres`` its URL and the realm id.

    ``pool_size``: the most connections a ``postgres`` store opens (default
    :data:`~meerkat.store.postgres_db.DEFAULT_POOL_SIZE`).
    """
    if backend == "memory":
        return MemoryStore()
    if backend == "sqlite":
        from .sqlite import SqliteStore

        assert sqlite_path is not None
        return SqliteStore(sqlite_path)
    if backend == "jsonl":
        from .jsonl import JsonlStore

        assert jsonl_dir is not None
        return JsonlStore(jsonl_dir)
    if backend == "postgres":
        from .postgres import PostgresStore
        from .postgres_db import DEFAULT_POOL_SIZE

        if not database_url:
            raise InvalidParams("the postgres realm backend needs a database URL (--database-url or RKAT_DATABASE_URL)")
        assert realm_id is not None
        return PostgresStore(database_url, realm_id=realm_id, pool_size=pool_size or DEFAULT_POOL_SIZE)
    raise InvalidParams(f"unknown realm backend {backend!r}: expected one of sqlite, jsonl, memory, postgres")
