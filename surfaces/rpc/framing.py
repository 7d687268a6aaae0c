"""Newline-delimited framing over a byte stream, with a line size limit.

:class:`LineReader` yields each complete line. A line longer than the limit is
never buffered whole: the reader skips to its end and yields :class:`Oversized`
in its place, so one huge request costs a refusal, not the process's memory.
Blank lines are skipped (they carry no request).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AsyncGenerator, Union

import trio

__all__ = ["Oversized", "LineReader", "DEFAULT_MAX_LINE_BYTES"]

#: Largest request line accepted by default (16 MiB: room for inline images).
DEFAULT_MAX_LINE_BYTES = 16 * 1024 * 1024
_CHUNK = 64 * 1024


@dataclass(frozen=True, slots=True)
class Oversized:
    """A line that exceeded the limit and was discarded; ``size`` bytes long."""

    size: int


class LineReader:
    """Async iterator of lines (without the newline) or :class:`Oversized` markers."""

    def __init__(self, stream: trio.abc.ReceiveStream, max_line_bytes: int = DEFAULT_MAX_LINE_BYTES) -> None:
        self._stream = stream
        self._max = max_line_bytes

    async def __aiter__(self) -> AsyncGenerator[Union[bytes, Oversized], None]:
        buffer = bytearray()
        skipping: int | None = None  # bytes of an oversized line seen so far
        while True:
            chunk = await self._stream.receive_some(_CHUNK)
            if not chunk:
                break
            start = 0
            while True:
                end = chunk.find(b"\n", start)
                if end < 0:
                    piece = chunk[start:]
                    if skipping is not None:
                        skipping += len(piece)
                    elif len(buffer) + len(piece) > self._max:
                        skipping = len(buffer) + len(piece)
                        buffer.clear()
                    else:
                        buffer += piece
                    break
                piece = chunk[start:end]
                start = end + 1
                if skipping is not None:
                    size, skipping = skipping + len(piece), None
                    yield Oversized(size)
                    continue
                if len(buffer) + len(piece) > self._max:
                    size = len(buffer) + len(piece)
                    buffer.clear()
                    yield Oversized(size)
                    continue
                if buffer:
                    buffer += piece
                    line = bytes(buffer)
                    buffer.clear()
                else:
                    line = bytes(piece)
                if line.strip():
                    yield line
        if skipping is not None:
            yield Oversized(skipping)
        elif buffer.strip():
            yield bytes(buffer)  # a last line without its newline still counts
