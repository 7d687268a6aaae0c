"""The realm config document and its generation, with cross-process compare-and-swap.

A realm's config is one TOML document (``config.toml``) plus an integer generation
(``config_state.json``: ``{"generation": N}``, missing means 0). ``set`` replaces the
document, ``patch`` applies an RFC 7396 merge patch to the full default-filled
document; both bump the generation, and with ``expected_generation`` either becomes
a compare-and-swap that writes nothing on a mismatch.

Several processes may share a realm, so the generation is guarded on disk, not in
memory: every ``get``/``set``/``patch`` holds an exclusive ``flock`` on
``config_state.lock``. The kernel drops a flock when its holder dies, so a crashed
writer can never leave a stale lock behind (upstream's O_EXCL lock file needs a 30 s
staleness rule for that).

Everything here blocks (locks, fsync). Callers under trio run these methods in a
worker thread (``trio.to_thread.run_sync``).
"""

from __future__ import annotations

import abc
import json
import threading
import tomllib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import msgspec
import tomli_w

from meerkat.config.keys import check_known_keys
from meerkat.config.merge_patch import apply_merge_patch
from meerkat.config.models import check_config_model
from meerkat.config.schema import Config, config_from_dict, config_to_dict
from meerkat.errors import ConfigGenerationConflict, InvalidParams, StoreError
from meerkat.fsutil import atomic_write_bytes, exclusive_file_lock, make_private_dir

__all__ = [
    "ConfigEnvelope",
    "ConfigStore",
    "FileConfigStore",
    "MemoryConfigStore",
    "LOCK_TIMEOUT_SECS",
    "atomic_write_bytes",
    "exclusive_file_lock",
]

#: How long a config operation waits for the realm's config lock.
LOCK_TIMEOUT_SECS = 5.0
#: Generations saturate instead of wrapping, as upstream's ``u64`` does.
_MAX_GENERATION = 2**64 - 1


class ConfigEnvelope(msgspec.Struct, frozen=True, kw_only=True):
    """A config together with the generation it was read or written at."""

    config: Config
    generation: int

    def to_dict(self) -> dict[str, Any]:
        """``{"config": {...full document...}, "generation": N}``, JSON-able."""
        return {"config": config_to_dict(self.config), "generation": self.generation}


@runtime_checkable
class ConfigStore(Protocol):
    """What a realm needs from its config storage (file-backed or in memory)."""

    def get(self) -> ConfigEnvelope:
        """The current config and generation (defaults and 0 when nothing was written)."""
        ...

    def set(self, config: dict[str, Any] | Config, expected_generation: int | None = None) -> ConfigEnvelope:
        """Replace the whole config; missing sections and keys take their defaults."""
        ...

    def patch(self, patch: dict[str, Any], expected_generation: int | None = None) -> ConfigEnvelope:
        """Apply an RFC 7396 merge patch to the full current config."""
        ...


class _BaseConfigStore(abc.ABC):
    """The set/patch/CAS rules, shared so both stores behave identically.

    Subclasses provide the critical section and the raw loads and saves.
    """

    def get(self) -> ConfigEnvelope:
        """The current config and generation (defaults and 0 when nothing was written)."""
        with self._locked():
            generation = self._load_generation()
            return ConfigEnvelope(config=self._load_config(), generation=generation)

    def set(self, config: dict[str, Any] | Config, expected_generation: int | None = None) -> ConfigEnvelope:
        """Replace the whole config; missing sections and keys take their defaults.

        A replace never reads the current document, so it also repairs a corrupt file.
        Raises :class:`ConfigGenerationConflict` (writing nothing) when
        ``expected_generation`` is given and differs from the current generation.
        """
        _check_expected(expected_generation)
        if isinstance(config, Config):
            config = config_to_dict(config)  # re-validate: a Config can be built unchecked
        elif not isinstance(config, dict):
            raise InvalidParams(f"Invalid config: expected an object, got {type(config).__name__}")
        else:
            check_known_keys(config, Config)
        # Validate and encode before taking the lock: a bad payload never waits on it.
        new_config, document = _encode(config_from_dict(config))
        check_config_model(new_config)
        with self._locked():
            generation = _next_generation(self._load_generation(), expected_generation)
            self._save(new_config, document, generation)
        return ConfigEnvelope(config=new_config, generation=generation)

    def patch(self, patch: dict[str, Any], expected_generation: int | None = None) -> ConfigEnvelope:
        """Apply an RFC 7396 merge patch to the full current config (defaults included).

        A ``null`` removes a key, which then falls back to its default. Raises
        :class:`ConfigGenerationConflict` (writing nothing) on a generation mismatch.
        """
        _check_expected(expected_generation)
        if not isinstance(patch, dict):
            raise InvalidParams(f"Invalid config patch: expected an object, got {type(patch).__name__}")
        check_known_keys(patch, Config)
        with self._locked():
            generation = _next_generation(self._load_generation(), expected_generation)
            current = self._load_config()
            merged = apply_merge_patch(config_to_dict(current), patch)
            new_config, document = _encode(config_from_dict(merged))
            check_config_model(new_config, previous=current)
            self._save(new_config, document, generation)
        return ConfigEnvelope(config=new_config, generation=generation)

    @abc.abstractmethod
    def _locked(self) -> AbstractContextManager[None]:
        """The critical section every operation runs in."""

    @abc.abstractmethod
    def _load_generation(self) -> int:
        """The current generation (0 when none was ever written)."""

    @abc.abstractmethod
    def _load_config(self) -> Config:
        """The current config (defaults when none was ever written)."""

    @abc.abstractmethod
    def _save(self, config: Config, document: bytes, generation: int) -> None:
        """Persist a new config (already encoded as TOML) and its generation."""


class FileConfigStore(_BaseConfigStore):
    """A realm directory's ``config.toml`` + ``config_state.json``, locked across processes."""

    def __init__(self, realm_dir: Path | str, *, lock_timeout: float = LOCK_TIMEOUT_SECS) -> None:
        self.realm_dir = Path(realm_dir)
        self.config_path = self.realm_dir / "config.toml"
        self.state_path = self.realm_dir / "config_state.json"
        self.lock_path = self.realm_dir / "config_state.lock"
        self._lock_timeout = lock_timeout

    def __repr__(self) -> str:
        return f"FileConfigStore({str(self.realm_dir)!r})"

    @contextmanager
    def _locked(self) -> Iterator[None]:
        # get/set/patch create the realm directory (but never the manifest).
        try:
            make_private_dir(self.realm_dir)
        except OSError as exc:
            raise StoreError(f"cannot create realm directory {self.realm_dir}: {exc}") from None
        with exclusive_file_lock(self.lock_path, timeout=self._lock_timeout, what="config"):
            yield

    def _load_generation(self) -> int:
        raw = _read_optional(self.state_path)
        if raw is None:
            return 0
        try:
            value = json.loads(raw)["generation"]
        except (ValueError, TypeError, KeyError):
            value = None
        if type(value) is not int or value < 0:
            raise StoreError(f"corrupt config state file {self.state_path}: expected {{\"generation\": N}}")
        return value

    def _load_config(self) -> Config:
        raw = _read_optional(self.config_path)
        if raw is None:
            return Config()
        try:
            data = tomllib.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise StoreError(f"corrupt config file {self.config_path}: {exc}") from None
        try:
            return config_from_dict(data)
        except InvalidParams as exc:
            raise StoreError(f"invalid config file {self.config_path}: {exc.message}") from None

    def _save(self, config: Config, document: bytes, generation: int) -> None:
        # Document first, generation second: a crash in between leaves the new
        # document at the old generation, and the next write still bumps past it.
        atomic_write_bytes(self.config_path, document)
        atomic_write_bytes(self.state_path, json.dumps({"generation": generation}).encode())


class MemoryConfigStore(_BaseConfigStore):
    """The same store kept in process memory (the ``memory`` backend); nothing touches disk."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._config = Config()
        self._generation = 0

    @contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            yield

    def _load_generation(self) -> int:
        return self._generation

    def _load_config(self) -> Config:
        return _deep_copy(self._config)

    def _save(self, config: Config, document: bytes, generation: int) -> None:
        self._config, self._generation = _deep_copy(config), generation


def _deep_copy(config: Config) -> Config:
    """A private copy: a Config is frozen, but its free-form tables are plain dicts, and a
    caller mutating the one it was handed must not change what the store holds."""
    return msgspec.msgpack.decode(msgspec.msgpack.encode(config), type=Config)


def _read_optional(path: Path) -> bytes | None:
    """The file's bytes, ``None`` if it does not exist; any other I/O error is a StoreError."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StoreError(f"cannot read {path}: {exc}") from None


def _encode(config: Config) -> tuple[Config, bytes]:
    """The TOML bytes to store, and the config exactly as reading them back yields it.

    TOML has no null, so ``None`` values are dropped from the document; the returned
    config is rebuilt from that same document so a write's reply equals the next get.
    """
    document = _drop_nulls(config_to_dict(config))
    try:
        text = tomli_w.dumps(document)
    except (TypeError, ValueError) as exc:
        raise InvalidParams(f"Invalid config: value cannot be stored as TOML: {exc}") from None
    return config_from_dict(document), text.encode("utf-8")


def _drop_nulls(value: Any) -> Any:
    """``value`` with every ``None`` member of every table removed (arrays keep their items)."""
    if isinstance(value, dict):
        return {key: _drop_nulls(item) for key, item in value.items() if item is not None}
    if isinstance(value, list):
        return [_drop_nulls(item) for item in value]
    return value


def _check_expected(expected_generation: object) -> None:
    """``expected_generation`` must be ``None`` or an int >= 0 (``True`` is not an int here)."""
    if expected_generation is None:
        return
    if type(expected_generation) is not int or expected_generation < 0:
        raise InvalidParams(
            f"Invalid expected_generation: must be an integer >= 0, got {expected_generation!r}",
            details={"key": "expected_generation"},
        )


def _next_generation(current: int, expected: int | None) -> int:
    """The generation a write produces, or a conflict when the caller expected another."""
    if expected is not None and expected != current:
        raise ConfigGenerationConflict(expected, current)
    return min(current + 1, _MAX_GENERATION)
