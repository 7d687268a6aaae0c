"""Open the store a realm's manifest pins."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidParams
from .base import SessionStore
from .memory import MemoryStore

__all__ = ["open_store"]


def open_store(backend: str, *, sqlite_path: Path | None = None, jsonl_dir: Path | None = None) -> SessionStore:
    """A store for ``backend``; disk backends need their path."""
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
    raise InvalidParams(f"unknown realm backend {backend!r}: expected one of sqlite, jsonl, memory")
