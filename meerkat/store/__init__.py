"""Session stores: ``sqlite`` (default), ``jsonl``, ``memory`` and ``postgres`` behind one interface.

``postgres`` (:mod:`.postgres`) is imported only when opened: it pulls in psycopg.
"""

from __future__ import annotations

from .base import (
    CRASH_SEQ_GAP as CRASH_SEQ_GAP,
    MAX_LIST_LIMIT as MAX_LIST_LIMIT,
    RunCommit as RunCommit,
    RunRecord as RunRecord,
    RunStatus as RunStatus,
    SessionRecord as SessionRecord,
    SessionStore as SessionStore,
    current_owner as current_owner,
    host_id as host_id,
    owner_is_alive as owner_is_alive,
)
from .memory import MemoryStore as MemoryStore
from .factory import open_store as open_store

__all__ = [
    "CRASH_SEQ_GAP",
    "MAX_LIST_LIMIT",
    "RunCommit",
    "RunRecord",
    "RunStatus",
    "SessionRecord",
    "SessionStore",
    "MemoryStore",
    "current_owner",
    "host_id",
    "owner_is_alive",
    "open_store",
]
