"""Opening a realm that lives in PostgreSQL.

The database is the source of truth: its ``rkat.realms`` table says which realms
exist (:mod:`meerkat.store.postgres_realms`), so every host that reaches the
database agrees, whatever its state root holds. The ``realm_manifest.json`` under
a host's state root is a cache of that row plus the database's identity (host,
port, dbname, user and the database's own id, never a password). The cache is
what lets ``rkat -r team ...`` find a database realm without ``--realm-backend``,
and what makes opening the realm against another database (a different
``database_id``) a clear error instead of a silently empty realm.

Blocking: call from a worker thread under trio.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path
from typing import Any, get_args

from meerkat.config.store import LOCK_TIMEOUT_SECS
from meerkat.dburl import DATABASE_URL_ENV, parse_database_url, redact_url
from meerkat.errors import InvalidParams, StoreError
from meerkat.fsutil import atomic_write_bytes, exclusive_file_lock, make_private_dir
from meerkat.realm_manifest import MANIFEST_FILE, MANIFEST_LOCK_FILE, Origin, RealmManifest

__all__ = ["missing_url_error", "database_realm_exists", "open_database_manifest", "open_database_stores"]

log = logging.getLogger("rkat.realm")


def missing_url_error(realm_id: str, manifest: RealmManifest | None) -> InvalidParams:
    """The error for a ``postgres`` realm opened without any database URL: which flag or variable to set."""
    where = f" ({manifest.database.display()})" if manifest is not None and manifest.database is not None else ""
    return InvalidParams(f"realm {realm_id!r} is stored in PostgreSQL{where}: pass --database-url URL or set "
                         f"{DATABASE_URL_ENV} (the password may also come from PGPASSWORD or ~/.pgpass)")


def database_realm_exists(url: str, realm_id: str) -> bool:
    """Whether the database at ``url`` holds ``realm_id`` (creates nothing)."""
    from meerkat.store.postgres_realms import find_realm

    parse_database_url(url)  # a malformed URL is an InvalidParams, not a driver error
    row, _database_id = find_realm(url, realm_id)
    return row is not None


def open_database_manifest(root: Path, realm_id: str, origin: Origin, url: str,
                           cached: RealmManifest | None) -> RealmManifest:
    """The realm's manifest read (or created) in the database at ``url``, refreshing the local cache.

    ``root`` is the realm's directory under the state root, where the cache lives;
    ``cached`` is the manifest there, if any: a realm cached as
    living in another database (another ``database_id``) is refused.
    """
    from meerkat.store.postgres_realms import read_or_create_realm

    identity = parse_database_url(url)
    row, database_id = read_or_create_realm(url, realm_id, origin)
    known = cached.database if cached is not None else None
    if known is not None and known.database_id and known.database_id != database_id:
        raise InvalidParams(
            f"realm {realm_id!r} lives in database {known.display()} (database id {known.database_id}), but "
            f"{redact_url(url)} reaches another database (database id {database_id}): pass the URL of the "
            f"realm's database, or use another realm id")
    row_origin = row.origin if row.origin in get_args(Origin) else "legacy_unknown"
    manifest = RealmManifest(realm_id=realm_id, backend="postgres", origin=row_origin,  # type: ignore[arg-type]
                             created_at=str(row.created_at), database=replace(identity, database_id=database_id))
    if manifest != cached:
        _write_cache(root, manifest)
    return manifest


def open_database_stores(realm_id: str, url: str) -> tuple[Any, Any]:
    """The session store and config store of a postgres realm, sharing one connection pool.

    The pool is sized by the realm's ``storage.postgres.pool_size``, which lives in
    the realm's config in the same database: the store opens with the default size,
    the config is read through it, and the pool is resized to what it says.
    """
    from meerkat.config.postgres_store import PostgresConfigStore
    from meerkat.store import open_store

    store: Any = open_store("postgres", database_url=url, realm_id=realm_id)
    try:
        config_store = PostgresConfigStore(store.database, realm_id=realm_id)
        pool_size = config_store.get().config.storage.postgres.pool_size
        store.database.pool.resize(min_size=1, max_size=pool_size)
    except BaseException:
        store.close()
        raise
    return store, config_store


def _write_cache(root: Path, manifest: RealmManifest) -> None:
    """Write the manifest cache; a state root that cannot take it costs only the cache (logged)."""
    path = root / MANIFEST_FILE
    try:
        make_private_dir(root)
        with exclusive_file_lock(root / MANIFEST_LOCK_FILE, timeout=LOCK_TIMEOUT_SECS, what="realm manifest"):
            atomic_write_bytes(path, json.dumps(manifest.to_dict()).encode())
    except (OSError, StoreError) as exc:
        log.warning("realm %s: cannot write its manifest cache %s (%s); the database still holds the realm",
                    manifest.realm_id, path, getattr(exc, "message", exc))
