"""A spinner on stderr while the model has not answered yet (terminals only)."""

from __future__ import annotations

from typing import TextIO

import trio

__all__ = ["Spinner"]

_FRAMES = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
_INTERVAL_S = 0.08
_ERASE = "\r\x1b[K"


class Spinner:
    """Draws ``⠋ waiting for the model`` in place until :meth:`stop`.

    The first frame is drawn by :meth:`start` itself, so a fast answer still
    replaces a visible frame rather than racing the animation task.
    """

    def __init__(self, stream: TextIO, label: str = "waiting for the model") -> None:
        self._stream = stream
        self._label = label
        self._frame = 0
        self._running = False

    def start(self) -> None:
        """Show the first frame."""
        self._running = True
        self._draw()

    async def animate(self) -> None:
        """Advance the frames until stopped (run it as a task)."""
        while self._running:
            await trio.sleep(_INTERVAL_S)
            if self._running:
                self._frame = (self._frame + 1) % len(_FRAMES)
                self._draw()

    def stop(self) -> None:
        """Erase the spinner; safe to call more than once."""
        if self._running:
            self._running = False
            self._stream.write(_ERASE)
            self._stream.flush()

    def _draw(self) -> None:
        self._stream.write(f"{_ERASE}{_FRAMES[self._frame]} {self._label}")
        self._stream.flush()
