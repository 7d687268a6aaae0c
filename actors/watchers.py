"""Which processes follow which sessions of a shared realm, so turns can push events to them.

A turn may run in a process that lives for a few milliseconds (``rkat run``). By
the time another process polls the store, such a turn is over and its owner gone,
with the events it streamed. So processes that follow sessions say so: each
writes ``<realm>/live/<host>-<pid>.json`` naming its live link and the sessions
someone follows there. A process beginning a turn reads these files and pushes
the turn's events to every follower of that session as it publishes them.

The files are small and change only when the set of followed sessions does. A
file whose process is dead is removed by whoever finds it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec

from meerkat.fsutil import PRIVATE_FILE_MODE, make_private_dir
from meerkat.store import owner_is_alive

__all__ = ["WatchRegistry", "Watcher"]

log = logging.getLogger("rkat.live")

DIRECTORY = "live"
#: A directory listing is trusted as unchanged only if its mtime is older than this
#: (seconds): file times are coarse, so a change within the same tick could
#: otherwise hide behind an equal mtime.
SETTLED = 0.05


class _WatchFile(msgspec.Struct, kw_only=True):
    owner: str
    endpoint: str
    token: str
    sessions: list[str]


_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(_WatchFile).decode


@dataclass(frozen=True, slots=True)
class Watcher:
    """A process following a session: where to push its events."""

    owner: str
    endpoint: str
    token: str


class WatchRegistry:
    """This process's entry in a realm's ``live/`` directory, and lookups of the others'."""

    def __init__(self, realm_root: Path, owner: str) -> None:
        self.directory = Path(realm_root) / DIRECTORY
        self.owner = owner
        self._path = self.directory / (owner.replace(":", "-").replace(os.sep, "_") + ".json")
        self._published: frozenset[str] = frozenset()
        #: Publishes run in worker threads: one at a time, so the file always says what
        #: ``published`` says (two writers would share the temporary file and mix their bytes).
        self._write_lock = threading.Lock()
        self._closed = False
        self._cached_key: tuple[int, int] | None = None
        self._cached: list[_WatchFile] = []

    def publish(self, endpoint: str, token: str, sessions: frozenset[str]) -> None:
        """Say which sessions are followed here (an empty set removes the entry). Blocks on disk."""
        with self._write_lock:
            if self._closed or sessions == self._published:
                return  # closed: a publish that was still queued must not bring the entry back
            self._write(endpoint, token, sessions)

    def _write(self, endpoint: str, token: str, sessions: frozenset[str]) -> None:
        try:
            if not sessions:
                self._path.unlink(missing_ok=True)
            else:
                make_private_dir(self.directory)
                body = _WatchFile(owner=self.owner, endpoint=endpoint, token=token, sessions=sorted(sessions))
                temporary = self._path.with_suffix(".tmp")
                # It holds the live link's token: for this user's processes only.
                fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, PRIVATE_FILE_MODE)
                with os.fdopen(fd, "wb") as file:
                    os.fchmod(file.fileno(), PRIVATE_FILE_MODE)
                    file.write(_encode(body))
                os.replace(temporary, self._path)  # readers see the old file or the new one, never half
            self._published = sessions
        except OSError as exc:
            log.warning("cannot publish followed sessions in %s: %s", self.directory, exc)

    def watchers_of(self, session_id: str) -> list[Watcher]:
        """The other live processes following ``session_id``. Blocks on disk (briefly)."""
        entries = self._entries()
        return [Watcher(entry.owner, entry.endpoint, entry.token) for entry in entries
                if session_id in entry.sessions]

    def cached_watchers_of(self, session_id: str) -> list[Watcher] | None:
        """Like :meth:`watchers_of` from the last reading, if the directory has not changed since
        (one ``stat``); None when it must be read again."""
        key = self._directory_key()
        if key is None:
            return []
        if key != self._cached_key:
            return None
        return [Watcher(entry.owner, entry.endpoint, entry.token) for entry in self._cached
                if session_id in entry.sessions]

    def _directory_key(self) -> tuple[int, int] | None:
        try:
            stat = os.stat(self.directory)
        except OSError:
            return None
        return (stat.st_ino, stat.st_mtime_ns)

    @property
    def published(self) -> frozenset[str]:
        """The sessions this process last said it follows."""
        return self._published

    def _entries(self) -> list[_WatchFile]:
        # Entries are added and removed by rename and unlink, which change the
        # directory's mtime; a listing is cached only once that mtime has settled.
        key = self._directory_key()
        entries = []
        try:
            paths = list(self.directory.glob("*.json"))
        except OSError:
            return []
        for path in paths:
            try:
                entry = _decode(path.read_bytes())
            except (OSError, msgspec.DecodeError, msgspec.ValidationError):
                continue
            if entry.owner == self.owner:
                continue
            if not owner_is_alive(entry.owner):
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # not ours to remove (permissions): skipping it is enough
                    pass
                continue
            entries.append(entry)
        settled = key is not None and time.time_ns() - key[1] > SETTLED * 1e9
        self._cached_key, self._cached = (key if settled else None), entries
        return entries

    def close(self) -> None:
        """Remove this process's entry for good (later publishes are ignored)."""
        with self._write_lock:
            self._closed = True
            self._write("", "", frozenset())
