"""A spinner on stderr while the model has not answered yet (terminals only).

It shows how long the wait has lasted and, after a failed attempt, which retry
comes next and when (``retry 2/3 in 30 s``), so a slow or stalled vendor is
never a silent hang.
"""

from __future__ import annotations

from typing import TextIO

import math
import time

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
        self._started = time.monotonic()
        self._note = ""
        self._retry: tuple[int, int, float] | None = None

    def start(self) -> None:
        """Show the first frame."""
        self._running = True
        self._started = time.monotonic()
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

    def note(self, text: str) -> None:
        """Show ``text`` after the label, from the next frame on."""
        self._note = text

    def retry(self, attempt: int, max_retries: int, delay_s: float) -> None:
        """Show the coming retry, counting down its wait (``retry 2/3 in 30 s``, then ``retry 2/3``)."""
        self._retry = (attempt, max_retries, time.monotonic() + delay_s)

    def clear(self) -> None:
        """Erase the current frame so a whole line can be printed; the next frame redraws it."""
        if self._running:
            self._stream.write(_ERASE)
            self._stream.flush()

    def _draw(self) -> None:
        now = time.monotonic()
        elapsed = int(now - self._started)
        note = f" · {self._note}" if self._note else ""
        if self._retry is not None:
            attempt, max_retries, at = self._retry
            wait = f" in {math.ceil(at - now)} s" if at > now else ""
            note += f" · retry {attempt}/{max_retries}{wait}"
        self._stream.write(f"{_ERASE}{_FRAMES[self._frame]} {self._label} ({elapsed} s){note}")
        self._stream.flush()
