"""The realm manifest: which backend (and, for ``postgres``, which database) a realm is pinned to.

``<state_root>/<realm>/realm_manifest.json`` holds ``{"realm_id", "backend",
"origin", "created_at"}``, plus for a ``postgres`` realm ``"database"``: the
database's identity without secrets (host, port, dbname, user and the id the
database carries; see :class:`meerkat.dburl.DatabaseIdentity`). For a database
realm the file is only a cache: the database's own realm table is the truth
(:mod:`meerkat.realm_database`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

from meerkat.dburl import DatabaseIdentity
from meerkat.errors import InvalidParams, StoreError

__all__ = ["Backend", "Origin", "BACKENDS", "DEFAULT_BACKEND", "MANIFEST_FILE", "MANIFEST_LOCK_FILE",
           "RealmManifest", "read_manifest", "parse_backend", "parse_origin"]

Backend = Literal["sqlite", "jsonl", "memory", "postgres"]
#: How a realm came to exist. ``legacy_unknown`` is only ever read, never written.
Origin = Literal["generated", "workspace", "explicit", "legacy_unknown"]

BACKENDS: tuple[Backend, ...] = get_args(Backend)
DEFAULT_BACKEND: Backend = "sqlite"
MANIFEST_FILE = "realm_manifest.json"
MANIFEST_LOCK_FILE = ".realm_manifest.lock"
#: Upstream's format 2 only adds fields we ignore; anything newer we refuse to guess at.
_MAX_MANIFEST_FORMAT = 2
_ORIGINS: tuple[str, ...] = get_args(Origin)
#: "memory" never has a manifest, so one claiming it is as corrupt as an unknown name.
_PINNED_BACKENDS = ("sqlite", "jsonl", "postgres")


def parse_backend(value: str) -> Backend:
    """``value`` as a :data:`Backend`, or :class:`InvalidParams` listing the allowed values."""
    if value not in BACKENDS:
        allowed = ", ".join(BACKENDS)
        raise InvalidParams(f"invalid realm backend {value!r}: expected one of {allowed}")
    return cast(Backend, value)


def parse_origin(value: str) -> Origin:
    """A requested origin; ``legacy_unknown`` is read from old manifests, never requested."""
    if value not in ("generated", "workspace", "explicit"):
        raise InvalidParams(f"invalid realm origin {value!r}: expected one of generated, workspace, explicit")
    return cast(Origin, value)


@dataclass(frozen=True, slots=True)
class RealmManifest:
    """The contents of ``realm_manifest.json``: which backend the realm is pinned to."""

    realm_id: str
    backend: Backend
    origin: Origin
    #: Unix seconds as a decimal string, as upstream writes it.
    created_at: str
    #: The database of a ``postgres`` realm (never a password); None for every other backend.
    database: DatabaseIdentity | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to disk."""
        out: dict[str, Any] = {
            "realm_id": self.realm_id,
            "backend": self.backend,
            "origin": self.origin,
            "created_at": self.created_at,
        }
        if self.database is not None:
            out["database"] = self.database.to_dict()
        return out

    @classmethod
    def from_dict(cls, data: Any) -> RealmManifest:
        """Parse a manifest object; raises ``ValueError`` describing what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        fmt = data.get("manifest_format", 1)
        if type(fmt) is not int or fmt > _MAX_MANIFEST_FORMAT:
            raise ValueError(f"unsupported manifest_format {fmt!r}")
        fields = {}
        for key in ("realm_id", "backend", "origin", "created_at"):
            value = data.get(key)
            if not isinstance(value, str):
                raise ValueError(f"missing or non-string {key!r}")
            fields[key] = value
        if fields["backend"] not in _PINNED_BACKENDS:
            raise ValueError(f"unknown backend {fields['backend']!r}")
        if fields["origin"] not in _ORIGINS:
            raise ValueError(f"unknown origin {fields['origin']!r}")
        database = None
        if fields["backend"] == "postgres":
            database = DatabaseIdentity.from_dict(data.get("database"))
        return cls(
            realm_id=fields["realm_id"],
            backend=cast(Backend, fields["backend"]),
            origin=cast(Origin, fields["origin"]),
            created_at=fields["created_at"],
            database=database,
        )


def read_manifest(path: Path) -> RealmManifest | None:
    """The manifest at ``path``, ``None`` if absent; unreadable or corrupt is a :class:`StoreError`.

    Only "file not found" counts as absent: any other I/O error could hide an
    existing realm, and guessing "absent" would fork it.
    """
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read realm manifest {path}: {exc}") from None
    try:
        return RealmManifest.from_dict(json.loads(raw))
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise StoreError(f"corrupt realm manifest {path}: {exc}") from None
