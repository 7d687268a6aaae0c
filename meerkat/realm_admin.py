"""Realms on disk as a whole: which exist, which a process is serving, and removing throw-away ones.

A process serving a realm from disk holds a *shared* ``flock`` on the realm's
``.realm_in_use.lock`` (:func:`hold_in_use`); the kernel drops it when the process
ends, however it ends. So "in use" needs no pid files and no staleness rules: a
realm is in use exactly when an exclusive lock on that file cannot be taken.

Throw-away realms (origin ``generated``: a server started without ``--realm``, an
SDK client without a realm, ``rkat --isolated``) are removed by the host that made
them when it exits; :func:`prune_realms` removes what a crash left behind.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from meerkat.errors import StoreError
from meerkat.realm import MANIFEST_FILE, RealmManifest, read_manifest

__all__ = ["IN_USE_FILE", "RealmInfo", "hold_in_use", "release_in_use", "realm_in_use", "list_realms",
           "list_database_realms", "prune_realms", "remove_realm_dir"]

#: The lock file a serving process holds shared.
IN_USE_FILE = ".realm_in_use.lock"


@dataclass(frozen=True, slots=True)
class RealmInfo:
    """One realm directory found under a state root."""

    realm_id: str
    origin: str
    backend: str
    created_at: int
    #: Unix seconds of the newest change of any file directly in the realm directory.
    last_active: int
    #: None for a realm listed from its database: other hosts may serve it, and this one cannot tell.
    in_use: bool | None
    #: The realm directory; for a realm listed from its database, None.
    path: Path | None
    #: None for a realm listed from its database.
    size_bytes: int | None
    #: The database of a ``postgres`` realm, as a redacted URL (never a password); else None.
    database: str | None = None

    def to_dict(self) -> dict[str, object]:
        """JSON-able form (``rkat realm list --format json``)."""
        return {"realm_id": self.realm_id, "origin": self.origin, "backend": self.backend,
                "created_at": self.created_at, "last_active": self.last_active, "in_use": self.in_use,
                "path": None if self.path is None else str(self.path), "size_bytes": self.size_bytes,
                "database": self.database}


def hold_in_use(realm_root: Path) -> int:
    """Mark the realm as served by this process until :func:`release_in_use`; returns the descriptor."""
    fd = os.open(realm_root / IN_USE_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    fcntl.flock(fd, fcntl.LOCK_SH)
    return fd


def release_in_use(fd: int) -> None:
    """Drop the mark taken by :func:`hold_in_use`."""
    os.close(fd)


def realm_in_use(realm_root: Path) -> bool:
    """Whether any live process serves the realm at ``realm_root``."""
    try:
        fd = os.open(realm_root / IN_USE_FILE, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    except OSError:
        return True  # cannot tell: never treat it as free to remove
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _tree_size(path: Path) -> int:
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(directory, name)).st_size
            except OSError:
                pass
    return total


def _last_active(path: Path, manifest: RealmManifest) -> int:
    newest = int(manifest.created_at) if manifest.created_at.isdigit() else 0
    try:
        for entry in os.scandir(path):
            if entry.name != IN_USE_FILE:
                newest = max(newest, int(entry.stat(follow_symlinks=False).st_mtime))
    except OSError:
        pass
    return newest


def list_realms(state_root: Path) -> list[RealmInfo]:
    """Every realm under ``state_root`` (directories without a readable manifest are skipped), oldest first."""
    found: list[RealmInfo] = []
    try:
        entries = sorted(state_root.iterdir())
    except FileNotFoundError:
        return found
    except OSError as exc:
        raise StoreError(f"cannot list realms in {state_root}: {exc}") from None
    for path in entries:
        if not path.is_dir() or path.is_symlink():
            continue
        try:
            manifest = read_manifest(path / MANIFEST_FILE)
        except StoreError:
            continue
        if manifest is None:
            continue
        found.append(RealmInfo(
            realm_id=manifest.realm_id, origin=manifest.origin, backend=manifest.backend,
            created_at=int(manifest.created_at) if manifest.created_at.isdigit() else 0,
            last_active=_last_active(path, manifest), in_use=realm_in_use(path), path=path,
            size_bytes=_tree_size(path),
            database=None if manifest.database is None else manifest.database.display()))
    found.sort(key=lambda info: (info.last_active, info.realm_id))
    return found


def list_database_realms(database_url: str) -> list[RealmInfo]:
    """Every realm the PostgreSQL database at ``database_url`` holds, oldest first (blocking)."""
    from meerkat.dburl import parse_database_url
    from meerkat.store.postgres_realms import list_database_realms as rows

    shown = parse_database_url(database_url).display()  # as a cached manifest names it
    realms, _database_id = rows(database_url)
    return [RealmInfo(realm_id=r.realm_id, origin=r.origin, backend="postgres", created_at=r.created_at,
                      last_active=r.created_at, in_use=None, path=None, size_bytes=None, database=shown)
            for r in realms]


def remove_realm_dir(realm_root: Path) -> None:
    """Delete a realm directory and everything in it (missing is fine)."""
    if realm_root.exists():
        shutil.rmtree(realm_root)


def prune_realms(state_root: Path, *, older_than_s: float, origins: tuple[str, ...] = ("generated",),
                 dry_run: bool = False, now: float | None = None) -> list[RealmInfo]:
    """Remove realms of ``origins`` idle longer than ``older_than_s`` that no process serves; returns them.

    A ``postgres`` realm is never removed: its directory is only a cache, and its
    sessions live in the database, which other hosts may be serving it from.
    """
    cutoff = (time.time() if now is None else now) - older_than_s
    removed: list[RealmInfo] = []
    for info in list_realms(state_root):
        if info.origin not in origins or info.in_use or info.last_active > cutoff or info.backend == "postgres":
            continue
        assert info.path is not None and info.size_bytes is not None  # a realm directory was listed
        if not dry_run:
            if realm_in_use(info.path):  # started in the meantime
                continue
            try:
                remove_realm_dir(info.path)
            except OSError as exc:
                raise StoreError(f"cannot remove realm {info.realm_id} at {info.path}: {exc}") from None
        removed.append(info)
    return removed
