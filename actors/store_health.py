"""Is the realm's store usable? For ``GET /health`` and ``rkat doctor``.

A damaged store must not look healthy: a deleted or replaced database, a deleted or
edited ``realm_manifest.json``, a corrupt page that makes every session call fail.
:func:`check_store` reads what every request needs (the manifest, the session
table) and reports each problem as one sentence naming the file; ``deep=True``
also runs SQLite's ``quick_check`` over the whole database (its cost grows with
the database: for ``rkat doctor``, not for a liveness probe).

A ``postgres`` realm's files are only a cache, so its check is the database
instead: :func:`check_database` connects afresh and times one query (reachable,
latency, server and schema version, the redacted URL), and the store read goes
through the host's own pool as every request does. A database that goes away
fails both; when it comes back the next check passes again.
"""

from __future__ import annotations

import sqlite3
from functools import partial
from typing import TYPE_CHECKING

import trio

from meerkat.dburl import scrub_secrets
from meerkat.errors import MeerkatError
from meerkat.realm import read_manifest
from meerkat.store.wal_index import truncated_wal_index

if TYPE_CHECKING:
    from meerkat.store.postgres_realms import DatabaseProbe

    from .service import SessionService

__all__ = ["check_store", "check_database"]


async def check_database(service: "SessionService") -> "DatabaseProbe | None":
    """One fresh round trip to a ``postgres`` realm's database (None for other backends); never raises."""
    realm = service.realm
    if realm.backend != "postgres" or realm.database_url is None:
        return None
    from meerkat.store.postgres_realms import probe_database

    return await trio.to_thread.run_sync(probe_database, realm.database_url)


async def check_store(service: "SessionService", *, deep: bool = False, full_paths: bool = True,
                      probe: "DatabaseProbe | None" = None) -> list[str]:
    """The problems found with ``service``'s store (empty: healthy). Never raises for a damaged store.

    ``full_paths=False`` names files relative to the realm directory (``<realm>/...``),
    for answers that may reach a client on the network (``GET /health`` needs no token).
    ``probe``: a :func:`check_database` answer the caller already has (not asked again).
    """
    problems = await _problems(service, deep, probe)
    if full_paths or not problems:
        return problems
    root = str(service.realm.paths.root)
    return [problem.replace(root, "<realm>") for problem in problems]


async def _problems(service: "SessionService", deep: bool, probe: "DatabaseProbe | None") -> list[str]:
    realm = service.realm
    if realm.backend == "memory":
        return []
    problems: list[str] = []
    paths = realm.paths
    if realm.backend == "postgres":
        probe = probe or await check_database(service)
        if probe is not None and not probe.reachable:  # the pool would only wait for it: answer now
            return [probe.problem or f"database {probe.url} is unreachable"]
        # The driver's texts are scrubbed by the store; once more here, since /health is public.
        return [scrub_secrets(p, realm.database_url) for p in await _store_read_problems(service)]
    try:
        manifest = await trio.to_thread.run_sync(read_manifest, paths.manifest_path)
    except MeerkatError as exc:
        problems.append(exc.message)
    else:
        if manifest is None:
            problems.append(f"realm manifest {paths.manifest_path} is missing (deleted while the realm is served?)")
        elif manifest.realm_id != realm.realm_id or manifest.backend != realm.backend:
            problems.append(f"realm manifest {paths.manifest_path} names realm {manifest.realm_id!r} "
                            f"({manifest.backend}), not the served {realm.realm_id!r} ({realm.backend})")
    if realm.backend == "sqlite":
        database = paths.sessions_sqlite_path
        if not database.exists():
            problems.append(f"session database {database} is missing")
        elif database.stat().st_size == 0:
            problems.append(f"session database {database} is empty (zero bytes): its sessions are gone from it")
        shm_problem = truncated_wal_index(database)
        if shm_problem is not None:  # reading the store now would kill this process (SIGBUS): report first
            return [*problems, shm_problem]
    if realm.backend == "jsonl" and not paths.sessions_jsonl_dir.is_dir():
        problems.append(f"session directory {paths.sessions_jsonl_dir} is missing")
    problems.extend(await _store_read_problems(service))
    if deep and realm.backend == "sqlite" and paths.sessions_sqlite_path.exists():
        problems.extend(await trio.to_thread.run_sync(_sqlite_quick_check, str(paths.sessions_sqlite_path)))
    return problems


async def _store_read_problems(service: "SessionService") -> list[str]:
    """Whether the store answers the read every session list makes."""
    supervisor = service.supervisor
    try:
        await supervisor.store_call(partial(supervisor.store.list_sessions, limit=1, offset=0))
    except MeerkatError as exc:
        return [f"the session store cannot be read: {exc.message}"]
    except Exception as exc:  # a damaged store may fail in ways the store does not wrap
        return [f"the session store cannot be read: {exc!r}"]
    return []


def _sqlite_quick_check(path: str) -> list[str]:
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as conn:
            rows = [str(row[0]) for row in conn.execute("PRAGMA quick_check(20)")]
    except sqlite3.Error as exc:
        return [f"session database {path} cannot be checked: {exc}"]
    if rows == ["ok"]:
        return []
    return [f"session database {path} is damaged: {row}" for row in rows]
