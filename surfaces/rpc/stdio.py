"""trio streams over the process's stdin and stdout.

Pipes and sockets (how every SDK runs us) get :class:`trio.lowlevel.FdStream`:
non-blocking, no threads. A terminal or a regular file must stay blocking (a tty's
flags are shared with stderr), so those are served by worker threads instead.
"""

from __future__ import annotations

import os
import stat

import trio

__all__ = ["stdio_streams", "ThreadedFdStream"]


class ThreadedFdStream(trio.abc.Stream):
    """A blocking file descriptor read and written from worker threads."""

    def __init__(self, fd: int) -> None:
        self._fd = fd

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return await trio.to_thread.run_sync(os.read, self._fd, max_bytes or 65536, abandon_on_cancel=True)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data)
        while view:
            written = await trio.to_thread.run_sync(os.write, self._fd, view)
            view = view[written:]

    async def wait_send_all_might_not_block(self) -> None:
        return None

    async def aclose(self) -> None:
        os.close(self._fd)


def _stream(fd: int) -> trio.abc.Stream:
    mode = os.fstat(fd).st_mode
    if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode):
        return trio.lowlevel.FdStream(fd)
    return ThreadedFdStream(fd)


def stdio_streams(input_fd: int, output_fd: int) -> tuple[trio.abc.Stream, trio.abc.Stream]:
    """(input, output) streams owning ``input_fd`` and ``output_fd`` (pass duplicates)."""
    return _stream(input_fd), _stream(output_fd)
