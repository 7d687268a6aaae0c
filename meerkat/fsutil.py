"""Small file-system helpers shared by the config store and realms.

Both need an exclusive lock that several processes respect (``flock``: the kernel
drops it when a process dies, so a crash never leaves a stale lock) and writes
that a reader sees whole or not at all (temp file, fsync, rename, fsync the folder).
"""

from __future__ import annotations

import fcntl
import os
import random
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from meerkat.errors import StoreError

__all__ = ["exclusive_file_lock", "atomic_write_bytes", "make_private_dir", "make_private_file",
           "PRIVATE_DIR_MODE", "PRIVATE_FILE_MODE"]

#: Realm state (transcripts, live-link tokens) is for its owner only, whatever the umask.
PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def _tighten(path: Path, mode: int) -> None:
    """``chmod`` ``path`` to ``mode`` if it is ours and others may read it (another user's: left alone)."""
    try:
        status = os.stat(path)
        if status.st_uid == os.getuid() and stat.S_IMODE(status.st_mode) != mode:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass


def make_private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents as 0700 (umask or not); tighten ``path`` if it exists.

    Raises ``OSError`` as ``mkdir`` does.
    """
    path = Path(path)
    missing = []
    probe = path
    while not probe.exists() and probe != probe.parent:
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        try:
            directory.mkdir(mode=PRIVATE_DIR_MODE)
        except FileExistsError:
            continue  # made by a concurrent opener: _tighten below still applies to ``path``
        os.chmod(directory, PRIVATE_DIR_MODE)  # mkdir's mode passes through the umask
    _tighten(path, PRIVATE_DIR_MODE)


def make_private_file(path: Path) -> None:
    """Create ``path`` empty as 0600 if missing; tighten it if it exists. Raises ``OSError``."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    try:
        status = os.fstat(fd)
        if status.st_uid == os.getuid() and stat.S_IMODE(status.st_mode) != PRIVATE_FILE_MODE:
            os.fchmod(fd, PRIVATE_FILE_MODE)
    finally:
        os.close(fd)


@contextmanager
def exclusive_file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` body.

    Polls with short jittered sleeps and raises ``StoreError("timed out acquiring
    <what> lock")`` after ``timeout`` seconds. The lock file is left in place on
    purpose: unlinking it would let a waiter lock the old inode while a newcomer
    locks a new file, and both would think they hold the lock.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except OSError as exc:
        raise StoreError(f"cannot open lock file {path}: {exc}") from None
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise StoreError(f"timed out acquiring {what} lock") from None
                # Short, jittered waits: a holder's critical section is a few fsyncs,
                # and jitter keeps two pollers from sampling the lock in lockstep.
                time.sleep(random.uniform(0.0005, 0.003))
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so readers see the old or the new file, never a mix.

    Writes a temp file in the same directory, fsyncs it, renames it over ``path``
    and fsyncs the directory so the rename itself survives a power loss.
    """
    directory = path.parent
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            with suppress(OSError):
                os.unlink(tmp)
            raise
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise StoreError(f"failed to write {path}: {exc}") from None
