"""Realms: ids, state roots, the on-disk layout, and the backend-pinning manifest.

A realm is a folder under a state root, ``<state_root>/<sanitised realm id>/``::

    realm_manifest.json   the backend pin: {"realm_id", "backend", "origin", "created_at"}
                          (+ "database" for postgres; see meerkat.realm_manifest)
    config.toml           the realm's config document (see ``meerkat.config.store``)
    config_state.json     its generation
    sessions.sqlite3      sessions, for the sqlite backend
    sessions_jsonl/       sessions, for the jsonl backend

Realm ids are validated before any path is built from them, so a realm can never
reach outside its state root (``../x``, ``a/b`` and ``.`` are refused). The
``memory`` backend touches no disk at all: no directory, no manifest. A
``postgres`` realm lives in its database, which says which realms exist; its
folder holds only a cache of the manifest (see :mod:`meerkat.realm_database`).

:func:`open_realm` blocks (mkdir, flock, fsync); call it from a worker thread
under trio.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from meerkat.config.store import LOCK_TIMEOUT_SECS
from meerkat.dburl import DatabaseIdentity, database_url as resolve_database_url
from meerkat.fsutil import atomic_write_bytes, exclusive_file_lock, make_private_dir
from meerkat.errors import InvalidParams, StoreError
from meerkat.ids import canonical_uuid, new_uuid7
from meerkat.project_dirs import git_work_tree_root, project_dir, project_state_root, workspace_context
from meerkat.realm_manifest import (BACKENDS, DEFAULT_BACKEND, MANIFEST_FILE, MANIFEST_LOCK_FILE, Backend, Origin,
                                    RealmManifest, parse_backend, parse_origin, read_manifest)

log = logging.getLogger("rkat.realm")

__all__ = [
    "Backend",
    "Origin",
    "BACKENDS",
    "DEFAULT_BACKEND",
    "MANIFEST_FILE",
    "RealmPaths",
    "RealmManifest",
    "RealmHandle",
    "validate_realm_id",
    "generated_realm_id",
    "workspace_realm_id",
    "default_state_root",
    "parse_backend",
    "realm_dir_name",
    "read_manifest",
    "stored_backends",
    "open_realm",
    "resolve_state_root",
    "project_state_root",
    "project_dir",
    "git_work_tree_root",
    "workspace_context",
]

_REALM_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_UNSAFE_DIR_CHARS_RE = re.compile(r"[^A-Za-z0-9_-]")
_FNV_OFFSET_BASIS = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_U64 = (1 << 64) - 1


def validate_realm_id(realm_id: str) -> str:
    """Return ``realm_id`` if it is a valid explicit realm id, else raise :class:`InvalidParams`.

    Valid: 1-64 characters, an ASCII letter or digit first, then only ``[A-Za-z0-9_-]``,
    and not something that parses as a UUID (it would be mistaken for a session id).
    """
    why = _realm_id_problem(realm_id)
    if why is not None:
        raise InvalidParams(f"invalid explicit realm id: {realm_id!r} ({why})", details={"realm_id": realm_id})
    return realm_id


def _realm_id_problem(realm_id: object) -> str | None:
    """Why ``realm_id`` is not a valid explicit id, or ``None`` if it is."""
    if not isinstance(realm_id, str):
        return "must be a string"
    if not 1 <= len(realm_id) <= 64:
        return "must be 1-64 characters"
    if not (realm_id[0].isascii() and realm_id[0].isalnum()):
        return "must start with an ASCII letter or digit"
    if _REALM_ID_RE.fullmatch(realm_id) is None:
        return "only ASCII letters, digits, '_' and '-' are allowed"
    if canonical_uuid(realm_id) is not None:
        return "must not be a UUID"
    return None


def generated_realm_id() -> str:
    """A fresh throw-away realm id: ``realm-<uuid7>`` (valid as an explicit id later)."""
    return f"realm-{new_uuid7()}"


def workspace_realm_id(path: str | Path) -> str:
    """The CLI's default realm for a context directory: ``ws-`` + FNV-1a-64 of its real path.

    Symlinked spellings of one directory converge. A path that does not exist is
    hashed as given, as upstream does when canonicalisation fails.
    """
    try:
        text = os.path.realpath(path, strict=True)
    except (OSError, ValueError):
        text = os.fspath(path)
    digest = _FNV_OFFSET_BASIS
    for byte in os.fsencode(text):  # UTF-8 on POSIX; undecodable names round-trip
        digest = ((digest ^ byte) * _FNV_PRIME) & _U64
    return f"ws-{digest:016x}"


def default_state_root() -> Path:
    """Where realms live by default: ``$RKAT_STATE_ROOT``, else ``<data dir>/meerkat/realms``.

    The data dir is ``$XDG_DATA_HOME`` or ``~/.local/share``; empty variables count as unset.
    """
    override = os.environ.get("RKAT_STATE_ROOT", "")
    if override:
        return Path(override)
    data_home = os.environ.get("XDG_DATA_HOME", "")
    base = Path(data_home) if data_home else Path.home() / ".local" / "share"
    return base / "meerkat" / "realms"


def realm_dir_name(realm_id: str) -> str:
    """The realm's folder name: every character outside ``[A-Za-z0-9_-]`` becomes ``_``."""
    return _UNSAFE_DIR_CHARS_RE.sub("_", realm_id)


@dataclass(frozen=True, slots=True)
class RealmPaths:
    """Where a realm's files live (whether or not they exist yet)."""

    root: Path
    manifest_path: Path
    config_path: Path
    sessions_sqlite_path: Path
    sessions_jsonl_dir: Path

    @classmethod
    def for_realm(cls, state_root: Path | str, realm_id: str) -> RealmPaths:
        """The layout of ``realm_id`` under ``state_root``."""
        root = Path(state_root) / realm_dir_name(realm_id)
        return cls(
            root=root,
            manifest_path=root / MANIFEST_FILE,
            config_path=root / "config.toml",
            sessions_sqlite_path=root / "sessions.sqlite3",
            sessions_jsonl_dir=root / "sessions_jsonl",
        )

    def to_dict(self) -> dict[str, str]:
        """The ``resolved_paths`` object of config envelopes, paths as strings."""
        return {
            "root": str(self.root),
            "manifest_path": str(self.manifest_path),
            "config_path": str(self.config_path),
            "sessions_sqlite_path": str(self.sessions_sqlite_path),
            "sessions_jsonl_dir": str(self.sessions_jsonl_dir),
        }


@dataclass(frozen=True, slots=True)
class RealmHandle:
    """An opened realm: its id, pinned backend, and where its files are.

    ``paths`` is filled for ``memory`` realms too (for display); nothing exists there.
    A ``postgres`` realm also carries its database: the identity (for display) and
    the URL to connect with, which may hold a password and so is never in the repr.
    """

    realm_id: str
    backend: Backend
    origin: Origin
    instance_id: str | None
    isolated: bool
    paths: RealmPaths
    database: DatabaseIdentity | None = None
    database_url: str | None = field(default=None, repr=False)

    def resolved_paths(self) -> dict[str, str] | None:
        """The ``resolved_paths`` of config envelopes: where this realm's data is (None for ``memory``).

        A ``postgres`` realm's data is in its database (shown without a password);
        only the manifest cache is a file.
        """
        if self.backend == "memory":
            return None
        if self.database is not None:
            return {"root": str(self.paths.root), "manifest_path": str(self.paths.manifest_path),
                    "database": self.database.display()}
        return self.paths.to_dict()


def open_realm(
    realm_id: str | None = None,
    *,
    state_root: Path | str | None = None,
    backend: str | None = None,
    isolated: bool = False,
    instance_id: str | None = None,
    origin: str | None = None,
    database_url: str | None = None,
) -> RealmHandle:
    """Open (creating on first use) a realm and return its handle. Blocking.

    * ``realm_id=None`` or ``isolated=True`` opens a fresh generated realm;
      ``isolated`` together with an explicit id is an error.
    * ``backend`` is only a hint at creation: a new realm is pinned to it (default
      ``sqlite``); an existing realm pinned to another backend is an error.
    * ``origin`` defaults to ``generated`` or ``explicit``; pass ``workspace`` for
      a :func:`workspace_realm_id`.
    * ``memory`` writes nothing to disk (but still refuses a realm already pinned
      on disk to another backend).
    * ``postgres`` needs ``database_url`` (else ``$RKAT_DATABASE_URL``) and a named
      realm. A realm the database holds opens as ``postgres`` without asking for
      the backend, from any host; see :mod:`meerkat.realm_database`.

    Concurrent first opens, from threads or processes, agree on one manifest: it
    is read-or-created under an exclusive lock in the realm directory (for
    ``postgres``, in the database).
    """
    if isolated and realm_id is not None:
        raise InvalidParams("--realm and --isolated cannot be combined")
    requested = parse_backend(backend) if backend is not None else None
    if database_url and requested not in (None, "postgres"):
        raise InvalidParams(f"--database-url is only for --realm-backend postgres (not {requested!r})")
    default_origin: Origin
    if realm_id is None:
        if requested == "postgres":
            raise InvalidParams("a postgres realm must be named (pass --realm ID): a throw-away realm in a shared "
                                "database would outlive the process that made it")
        realm_id, default_origin = generated_realm_id(), "generated"
    else:
        realm_id, default_origin = validate_realm_id(realm_id), "explicit"
    wanted_origin = parse_origin(origin) if origin is not None else default_origin
    paths = RealmPaths.for_realm(state_root if state_root is not None else default_state_root(), realm_id)
    cached = read_manifest(paths.manifest_path)

    if requested == "memory":
        if cached is not None:
            _check_manifest(cached, realm_id, requested, paths.manifest_path)
        return RealmHandle(realm_id, "memory", wanted_origin, instance_id, isolated, paths)

    url = resolve_database_url(database_url)
    if _in_database(realm_id, requested, cached, url, explicit_url=bool(database_url), path=paths.manifest_path):
        from meerkat.realm_database import missing_url_error, open_database_manifest

        if url is None:
            raise missing_url_error(realm_id, cached)
        manifest = open_database_manifest(paths.root, realm_id, wanted_origin, url, cached)
        return RealmHandle(realm_id, "postgres", manifest.origin, instance_id, isolated, paths,
                           database=manifest.database, database_url=url)

    manifest = _read_or_create_manifest(paths, realm_id, requested, wanted_origin)
    return RealmHandle(realm_id, manifest.backend, manifest.origin, instance_id, isolated, paths)


def _in_database(realm_id: str, requested: Backend | None, cached: RealmManifest | None, url: str | None, *,
                 explicit_url: bool, path: Path) -> bool:
    """Whether the realm is (or is to be) a ``postgres`` realm; refuses a mismatch with the local manifest.

    Without a requested backend or a local manifest, a database URL at hand
    (``$RKAT_DATABASE_URL``) is asked whether it holds the realm: a host that never
    served it before must not make a same-named empty file realm beside it.
    """
    if cached is not None:
        _check_manifest(cached, realm_id, "postgres" if explicit_url and requested is None else requested, path)
        return cached.backend == "postgres"
    if requested is not None or url is None:
        return requested == "postgres"
    from meerkat.realm_database import database_realm_exists

    return database_realm_exists(url, realm_id)


def _read_or_create_manifest(
    paths: RealmPaths, realm_id: str, requested: Backend | None, origin: Origin
) -> RealmManifest:
    """The realm's manifest, written now if this is the realm's first open."""
    try:
        make_private_dir(paths.root)
    except OSError as exc:
        raise StoreError(f"cannot create realm directory {paths.root}: {exc}") from None
    lock_path = paths.root / MANIFEST_LOCK_FILE
    with exclusive_file_lock(lock_path, timeout=LOCK_TIMEOUT_SECS, what="realm manifest"):
        existing = read_manifest(paths.manifest_path)
        if existing is not None:
            _check_manifest(existing, realm_id, requested, paths.manifest_path)
            _warn_if_sessions_are_gone(paths, existing)
            return existing
        found = stored_backends(paths)
        backend = requested or (found[0] if len(found) == 1 else DEFAULT_BACKEND)
        if found:
            log.warning("realm %s had no realm_manifest.json (%s) although it holds %s sessions: the manifest "
                        "was deleted; writing a new one for the %s backend", realm_id, paths.manifest_path,
                        " and ".join(found), backend)
        manifest = RealmManifest(
            realm_id=realm_id,
            backend=backend,
            origin=origin,
            created_at=str(int(time.time())),
        )
        atomic_write_bytes(paths.manifest_path, json.dumps(manifest.to_dict()).encode())
        return manifest


def stored_backends(paths: RealmPaths) -> list[Backend]:
    """The disk backends whose session files hold something in the realm directory."""
    found: list[Backend] = []
    database = paths.sessions_sqlite_path
    if database.exists() and database.stat().st_size > 0:
        found.append("sqlite")
    if paths.sessions_jsonl_dir.is_dir() and any(paths.sessions_jsonl_dir.glob("*.jsonl")):
        found.append("jsonl")
    return found


def _older_than(manifest: RealmManifest, seconds: float) -> bool:
    try:
        return time.time() - int(manifest.created_at) > seconds
    except ValueError:
        return True


def _warn_if_sessions_are_gone(paths: RealmPaths, manifest: RealmManifest) -> None:
    """A realm whose store was deleted or emptied (or whose manifest was edited to another
    backend) would otherwise open as an empty realm without a word."""
    found = stored_backends(paths)
    database = paths.sessions_sqlite_path
    if manifest.backend == "sqlite" and _stays_empty(database):
        log.error("session database %s of realm %s is empty (zero bytes): its sessions are gone; restore it "
                  "from a backup (the realm opens empty)", database, manifest.realm_id)
    elif manifest.backend == "sqlite" and not database.exists() and _older_than(manifest, 60):
        # Every open creates the database right after the manifest: missing a minute later means deleted.
        log.error("session database %s of realm %s is missing although the realm exists: its sessions "
                  "are gone; restore it from a backup (the realm opens empty)", database, manifest.realm_id)
    if found and manifest.backend not in found:
        log.error("realm %s: its manifest %s says backend %s, but its sessions are stored as %s: the manifest "
                  "was edited? (the realm opens without them)", manifest.realm_id, paths.manifest_path,
                  manifest.backend, " and ".join(found))


#: How long a zero-byte session database may stay empty before it counts as emptied: the
#: process that creates a realm makes the file, then writes its schema a moment later, and
#: a second process opening the realm in between must not cry "sessions are gone".
EMPTY_DATABASE_GRACE_SECS = 2.0


def _stays_empty(database: Path) -> bool:
    """Whether ``database`` exists and is still zero bytes after the grace period (this runs
    in a worker thread, or in the CLI before any loop: the short wait blocks no session)."""
    deadline = time.monotonic() + EMPTY_DATABASE_GRACE_SECS
    while True:
        try:
            if database.stat().st_size > 0:
                return False
        except FileNotFoundError:
            return False
        if time.monotonic() >= deadline:
            return True
        time.sleep(0.05)


def _check_manifest(existing: RealmManifest, realm_id: str, requested: Backend | None, path: Path) -> None:
    """Refuse a manifest that belongs to another realm or pins another backend."""
    if existing.realm_id != realm_id:
        raise StoreError(
            f"realm directory collision: {path} belongs to realm '{existing.realm_id}', not '{realm_id}'"
        )
    if requested is not None and requested != existing.backend:
        raise InvalidParams(
            f"realm backend mismatch for '{realm_id}': requested '{requested}', existing '{existing.backend}'"
        )


def resolve_state_root(realm_id: str | None, state_root: str | None, *, context_root: str | Path | None,
                       project_default: bool) -> Path | None:
    """Where ``realm_id`` lives: the explicit root, else wherever it already exists, else the surface default.

    1. ``state_root`` (a flag) or ``$RKAT_STATE_ROOT`` is used as given.
    2. Otherwise a named realm is looked for in the project candidate
       (``<project>/.rkat/realms`` of ``context_root``; not looked at when it is
       None) and in the user candidate (``<data dir>/meerkat/realms``). Found in
       one: that one. Found in both, as different directories: an error, since
       either choice would hide the other's sessions.
    3. Found nowhere (or no realm named): the project candidate when
       ``project_default`` (the CLI), else None, meaning the user data directory.
       A project ``.rkat`` that is not trusted (:mod:`meerkat.project_dirs`) is no
       candidate: the user data directory is used instead.
    """
    explicit = state_root or os.environ.get("RKAT_STATE_ROOT") or None
    if explicit:
        return Path(explicit)
    project = None if context_root is None else project_state_root(context_root)  # None: untrusted
    default = (project or default_state_root()) if project_default else None
    if realm_id is None or project is None:
        return default
    user = default_state_root()
    in_project, in_user = _holds(project, realm_id), _holds(user, realm_id)
    if in_project and in_user and not _same_directory(project, user):
        raise InvalidParams(
            f"realm {realm_id!r} exists under both {project} and {user}; refusing to choose. "
            f"Pass --state-root to pick one (and move or remove the other copy).")
    if in_project:
        return project
    if in_user:
        return user
    return default


def _holds(root: Path, realm_id: str) -> bool:
    """Whether ``root`` holds ``realm_id``: its manifest is there and names it (unreadable is an error)."""
    manifest = read_manifest(RealmPaths.for_realm(root, realm_id).manifest_path)
    if manifest is None:
        return False
    if manifest.realm_id != realm_id:
        raise StoreError(f"realm directory for {realm_id!r} under {root} holds realm {manifest.realm_id!r}")
    return True


def _same_directory(first: Path, second: Path) -> bool:
    try:
        return first.samefile(second)
    except OSError:
        return False
