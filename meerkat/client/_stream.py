"""Live event streams of one turn: ``session.stream(...)`` and ``client.create_session_streaming(...)``.

::

    async with session.stream("Continue the story") as events:
        async for event in events:
            match event:
                case TextDelta(delta=chunk):
                    print(chunk, end="", flush=True)
    print(events.result.text)

Events are yielded as they happen, also for a new session: the session is
created first (``initial_turn: "deferred"``), then its first turn streams like
any other. Iteration ends when the turn's response arrives (every event of the
turn comes before it); an interrupted or failed turn raises its error after the
events it produced. Leaving the block early stops following the turn; the turn
itself goes on.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Awaitable, Callable

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from meerkat.events import TextDelta
from meerkat.views import RunResult

from ._errors import StreamNotConsumed
from ._events import Event
from ._transport import StreamEnd
from ._types import decode_run_result

if TYPE_CHECKING:
    from ._client import MeerkatClient
    from ._session import Session

__all__ = ["EventStream"]

#: Starts the stream: returns the session id whose turn the stream follows.
Starter = Callable[["EventStream"], Awaitable[str]]


class EventStream:
    """One turn's events, then its :attr:`result`. Use with ``async with``."""

    def __init__(self, client: "MeerkatClient", starter: Starter,
                 on_result: Callable[[RunResult], None] | None = None) -> None:
        self._client = client
        self._starter = starter
        self._on_result = on_result
        self._sink: MemoryObjectSendStream[Any] | None = None
        self._source: MemoryObjectReceiveStream[Any] | None = None
        self._unfollow: Callable[[], None] | None = None
        self._result: RunResult | None = None
        self._finished = False
        self.session_id: str | None = None
        """The session the turn runs in (known once the block is entered)."""

    # -- starting (used by the client and sessions) ---------------------------------

    def _follow_and_start(self, session_id: str, params: dict[str, Any]) -> None:
        """Follow ``session_id``'s events and send its ``turn/start`` (no ``session_events: false``)."""
        connection = self._client._connection()
        assert self._sink is not None
        self.session_id = session_id
        self._unfollow = connection.follow(session_id, self._sink)
        connection.send_request("turn/start", params, sink=self._sink)

    # -- the user's side -----------------------------------------------------------------

    async def __aenter__(self) -> "EventStream":
        if self._sink is None:
            self._sink, self._source = anyio.create_memory_object_stream[Any](math.inf)
            try:
                await self._starter(self)
            except BaseException:
                self._close()
                raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        self._close()

    def _close(self) -> None:
        self._stop_following()
        for end in (self._sink, self._source):
            if end is not None:
                end.close()

    def _stop_following(self) -> None:
        if self._unfollow is not None:
            self._unfollow()
            self._unfollow = None

    def __aiter__(self) -> "EventStream":
        return self

    async def __anext__(self) -> Event:
        if self._finished:
            raise StopAsyncIteration
        if self._source is None:
            await self.__aenter__()  # iterated without `async with`: start now, close at the end
        assert self._source is not None
        try:
            item = await self._source.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._finished = True
            raise StopAsyncIteration from None
        if not isinstance(item, StreamEnd):
            return item
        self._finished = True
        self._close()
        if item.error is not None:
            raise item.error
        self._result = decode_run_result(item.result)
        if self._on_result is not None:
            self._on_result(self._result)
        raise StopAsyncIteration

    @property
    def result(self) -> RunResult:
        """The turn's RunResult; :class:`StreamNotConsumed` until the stream has ended."""
        if self._result is None:
            raise StreamNotConsumed("the stream has not ended yet: iterate it to the end first")
        return self._result

    @property
    def session(self) -> "Session":
        """The session this stream's turn ran in, holding the result once the stream has ended."""
        from ._session import Session

        if self.session_id is None:
            raise StreamNotConsumed("the stream has not started yet: enter its `async with` block")
        return Session(self._client, self.session_id, self._result)

    async def collect(self) -> RunResult:
        """Consume the whole stream and return its result."""
        async with self:
            async for _ in self:
                pass
        return self.result

    async def collect_text(self) -> tuple[str, RunResult]:
        """Consume the whole stream: ``(the text its deltas spelled, the result)``, as the published SDK returns."""
        parts: list[str] = []
        async with self:
            async for event in self:
                if isinstance(event, TextDelta):
                    parts.append(event.delta)
        return "".join(parts), self.result
