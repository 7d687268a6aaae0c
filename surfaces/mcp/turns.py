"""The turns started by ``meerkat_run``/``meerkat_resume`` calls, so that only a client's
cancellation of such a call interrupts its turn (design Decision 4: a client disconnect
is never an interrupt; only an interrupt is).

The ``mcp`` library cancels a tool handler for several reasons: the client sent
``notifications/cancelled`` for the call, the client went away (a closed stdio
pipe, a dropped HTTP response stream), or the server is stopping. The handler
cannot tell which, so it never interrupts: it leaves the turn running in its
session actor, which commits it as usual. The cancellation notification itself,
handed to :meth:`RunningTurns.cancelled` by the server's notification handler,
finds the call's turn here and interrupts it; the partial answer is kept.

On the 2026-07-28 streamable-HTTP wire a client has no cancellation message: the
protocol defines closing the call's response stream as its cancellation (the
official client does exactly that when a call is cancelled). There a cancelled
call therefore interrupts its turn (:func:`cancels_by_closing`); a connection lost
mid-call looks the same on that wire and is treated the same.

An entry lives as long as its turn, not as long as its call: the library unwinds
the cancelled handler and forwards the notification at the same moment, in no
fixed order, so each turn is watched by a task of this object's nursery until it
ends. The same watchers let the stdio server finish the turns of a client that
went away before it exits (:meth:`RunningTurns.wait_idle`).
"""

from __future__ import annotations

from collections import deque
from typing import Any, Hashable

import trio

from actors import SessionService, TurnStream
from meerkat.errors import MeerkatError

__all__ = ["RunningTurns", "CallKey", "call_key", "cancels_by_closing"]

#: A tool call: its connection (the HTTP ``Mcp-Session-Id``; ``None`` on stdio) and its JSON-RPC id.
CallKey = tuple[str | None, Hashable]

#: How many cancellations that arrived before their call's turn had started are remembered.
_EARLY_CANCELS = 256
#: How long a cancellation waits for the turn to be interrupted (the interrupt waits for the commit).
_INTERRUPT_GRACE_S = 10.0


def call_key(ctx: Any, request_id: Hashable) -> CallKey:
    """The key of the call ``request_id`` on the connection ``ctx`` (a request or notification context) is on.

    JSON-RPC ids are only unique per connection; on handshake-era HTTP a
    connection is an MCP session, named by the ``Mcp-Session-Id`` header every
    message of it carries. stdio serves a single connection.
    """
    headers = getattr(getattr(ctx, "request", None), "headers", None)
    connection = headers.get("mcp-session-id") if headers is not None else None
    return (connection, request_id)


#: The first protocol revision whose HTTP requests are single exchanges, cancelled by closing them.
_SINGLE_EXCHANGE_HTTP = "2026-07-28"


def cancels_by_closing(ctx: Any) -> bool:
    """Whether the call ``ctx`` serves is a 2026-07-28+ HTTP exchange, whose cancellation is a closed stream."""
    headers = getattr(getattr(ctx, "request", None), "headers", None)
    if headers is None:  # stdio: cancellations arrive as notifications
        return False
    return headers.get("mcp-protocol-version", "") >= _SINGLE_EXCHANGE_HTTP


class RunningTurns:
    """The running turns of this server's tool calls, by call (see the module docstring)."""

    def __init__(self, service: SessionService, nursery: trio.Nursery) -> None:
        self._service = service
        self._nursery = nursery
        # call -> its turn. A 2026-07-28 HTTP call has no connection id, so two such clients may
        # use the same key; that is harmless, as that wire never sends a cancellation to look one up.
        self._turns: dict[CallKey, TurnStream] = {}
        self._running = 0
        self._cancelled_early: deque[CallKey] = deque(maxlen=_EARLY_CANCELS)
        self._changed = trio.Event()

    def __len__(self) -> int:
        """How many turns started by tool calls are running."""
        return self._running

    def track(self, call: CallKey | None, stream: TurnStream) -> None:
        """Remember that ``call`` started ``stream``'s turn, until the turn ends."""
        self._running += 1
        if call is not None:
            self._turns[call] = stream
        self._nursery.start_soon(self._watch, call, stream)
        if call is not None and call in self._cancelled_early:  # cancelled while the turn was being started
            self._cancelled_early.remove(call)
            self._nursery.start_soon(self._interrupt, stream.session_id)

    async def cancelled(self, call: CallKey) -> None:
        """The client cancelled ``call``: interrupt the turn it started, if it still runs."""
        stream = self._turns.get(call)
        if stream is None:
            self._cancelled_early.append(call)
            return
        await self._interrupt(stream.session_id)

    def interrupt_soon(self, session_id: str) -> None:
        """Interrupt the session's turn from this object's nursery (callable from a task being cancelled)."""
        self._nursery.start_soon(self._interrupt, session_id)

    async def wait_idle(self) -> None:
        """Return once no turn started by a tool call is running."""
        while self._running:
            await self._changed.wait()

    async def _watch(self, call: CallKey | None, stream: TurnStream) -> None:
        try:
            await stream.result()
        except MeerkatError:
            pass  # the turn failed or was interrupted: ended all the same
        finally:
            if call is not None and self._turns.get(call) is stream:  # not a later call's entry
                del self._turns[call]
            self._running -= 1
            self._changed.set()
            self._changed = trio.Event()

    async def _interrupt(self, session_id: str) -> None:
        with trio.move_on_after(_INTERRUPT_GRACE_S):
            try:
                await self._service.interrupt(session_id)
            except MeerkatError:
                pass  # the session went away meanwhile: nothing left to stop
