"""Small file-system helpers shared by the config store and realms.

Both need an exclusive lock that several processes respect (``flock``: the kernel
drops it when a process dies, so a crash never leaves a stale lock) and writes
that a reader sees whole or not at all (temp file, fsync, rename, fsync the folder).
"""

from __future__ import annotations

import fcntl
import os
import random
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from meerkat.errors import StoreError

__all__ = ["exclusive_file_lock", "atomic_write_bytes"]


@contextmanager
def exclusive_file_lock(path: Path, *, timeout: float, what: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on ``path`` (created if missing) for the ``with`` body.

    Polls with short jittered sleeps and raises ``StoreError("timed out acquiring
    <what> lock")`` after ``timeout`` seconds. The lock file is left in place on
    purpose: unlinking it would let a waiter lock the old inode while a newcomer
    locks a new file, and both would think they hold the lock.
    """
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
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
