"""Is a SQLite database's WAL index (its ``-shm`` file) intact? Checked without touching SQLite.

SQLite maps ``<db>-shm`` into every process that has the database open in WAL mode,
and while one does, the file is at least one 32 KiB region long. A shorter file means
someone truncated it under the running processes: the next database access of each
of them reads past the end of the mapped file and the kernel kills it with SIGBUS,
which Python cannot catch (docs/security.md). So callers that would touch the
database on their own schedule (the periodic checkpoint, ``/health``) look first and
report it, instead of being the access that crashes.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["WAL_INDEX_REGION", "truncated_wal_index"]

#: The first region of SQLite's WAL index: a ``-shm`` file in use is never shorter.
WAL_INDEX_REGION = 32768


def truncated_wal_index(database: Path | str) -> str | None:
    """A problem naming the ``-shm`` of ``database`` when it is shorter than SQLite keeps
    it while the database is open (only meaningful in a process that has it open), else None."""
    database = Path(database)
    shm = database.with_name(database.name + "-shm")
    try:
        size = shm.stat().st_size
    except OSError:
        return None
    if size >= WAL_INDEX_REGION:
        return None
    return (f"session database index {shm} was truncated to {size} bytes while the database is open: "
            f"every process using it crashes (SIGBUS) at its next database access; stop them and start "
            f"again (never truncate or delete -shm/-wal files of a realm in use)")
