"""What the running server knows beyond the service: settings, open streams, turns in flight.

Shutdown needs both lists. On SIGINT/SIGTERM the server first ends every open
event stream with ``done`` and interrupts the turns its requests are waiting on,
so each waiting client gets an answer (REQUEST_CANCELLED) and every turn is
committed as interrupted; only then does hypercorn stop.
"""

from __future__ import annotations

import logging
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Iterator

import trio

from meerkat.errors import MeerkatError

from .sse import FrameCache

if TYPE_CHECKING:
    from actors import SessionService
    from actors.bus import Subscription

__all__ = ["ServerSettings", "RestState", "DEFAULT_MAX_BODY_BYTES", "DEFAULT_KEEPALIVE_SECS"]

log = logging.getLogger("rkat.rest")

#: Upstream's limit (axum's default, about 2 MB).
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
DEFAULT_KEEPALIVE_SECS = 15.0


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the app behaves (set from the command line)."""

    #: When set, every route but ``/health`` needs ``Authorization: Bearer <token>``.
    auth_token: str | None = None
    #: Largest request body accepted, in bytes (413 above it).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    #: Seconds of silence on an event stream before a keep-alive comment.
    keepalive_secs: float = DEFAULT_KEEPALIVE_SECS
    #: Seconds shutdown waits for interrupted turns to commit.
    shutdown_grace_secs: float = 10.0


@dataclass
class RestState:
    """The service plus the server's own bookkeeping."""

    service: "SessionService"
    settings: ServerSettings = field(default_factory=ServerSettings)
    frames: FrameCache = field(default_factory=FrameCache)
    closing: bool = False
    _streams: set["Subscription"] = field(default_factory=set)
    _turns: Counter[str] = field(default_factory=Counter)

    @property
    def realm_id(self) -> str:
        """The realm this server serves."""
        return self.service.realm.realm_id

    @contextmanager
    def open_stream(self, subscription: "Subscription") -> Iterator[None]:
        """Register an event stream so shutdown can end it with ``done``."""
        self._streams.add(subscription)
        try:
            yield
        finally:
            self._streams.discard(subscription)
            subscription.close()

    @contextmanager
    def turn_in_flight(self, session_id: str) -> Iterator[None]:
        """Mark a request waiting on a turn of ``session_id`` (shutdown interrupts it)."""
        self._turns[session_id] += 1
        try:
            yield
        finally:
            self._turns[session_id] -= 1
            if not self._turns[session_id]:
                del self._turns[session_id]

    async def shut_down(self) -> None:
        """Interrupt every turn a request waits on, wait (bounded) for the commits, then end every stream.

        Streams end last so their clients still see each run's ``run_failed``
        (the interrupt's acknowledgement) before ``done``.
        """
        self.closing = True
        with trio.move_on_after(self.settings.shutdown_grace_secs):
            async with trio.open_nursery() as nursery:
                for session_id in tuple(self._turns):
                    nursery.start_soon(self._interrupt, session_id)
        for subscription in tuple(self._streams):
            subscription.close()

    async def _interrupt(self, session_id: str) -> None:
        try:
            await self.service.interrupt(session_id)
        except MeerkatError as exc:  # archived meanwhile, etc.: nothing left to stop
            log.info("shutdown: interrupt of %s: %s", session_id, exc.message)
