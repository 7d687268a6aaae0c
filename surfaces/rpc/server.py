"""One JSON-RPC connection: read requests, run them concurrently, write answers in order.

The reader never waits for a request to finish: each runs in its own task, so a
``turn/interrupt`` or a callback answer is read while a ``turn/start`` is
pending. Everything written goes through one outbox, drained by one writer task;
a request's notifications are queued before its response by the same task, so
they reach the client first. The writer hands whatever is queued to one write,
which is what makes a burst of text deltas cheap.

Notifications: ``initialized`` is accepted silently; ``cancel`` ``{"id": <request id>}``
cancels a request in flight: a ``turn/start`` or ``session/create`` is interrupted (its answer is the
-32005 error, the partial answer is kept, as for ``turn/interrupt``), any other
request is abandoned and answered with -32005 at once.

Closing stdin means "no more requests": requests already read get a grace period
(``eof_grace`` seconds, ``rkat-rpc --eof-grace``) to be answered, so
``rkat-rpc < requests.jsonl`` works; callbacks still waiting are failed (nobody
can answer them). Whatever is still running after the grace period is left to
the caller, which interrupts running turns (committed as interrupted) on the way
out, so the process exits promptly. If the client stops reading stdout, the
connection ends at once.
"""

from __future__ import annotations

import logging
import math
from contextlib import aclosing
from typing import TYPE_CHECKING

import trio

from meerkat.errors import ErrorCode, InternalError, MeerkatError, RequestCancelled
from surfaces.observability import note_meta_trace_context

from .callbacks import ClientCalls
from .framing import DEFAULT_MAX_LINE_BYTES, LineReader, Oversized
from .inflight import CURRENT, InFlight
from .methods import Methods
from .wire import Invalid, Notification, Request, Response, classify, encode_error, encode_result, protocol_error

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["RpcConnection"]

log = logging.getLogger("rkat.rpc")

#: Largest batch of queued lines written with one call.
_MAX_BATCH_BYTES = 1 << 20
#: Event lines queued for stdout past which event forwarders wait for the writer. While they
#: wait, each subscription's own bounded buffer fills and reports the gap with a
#: ``stream_truncated`` marker, so a client that stops reading costs bounded memory.
MAX_QUEUED_EVENT_LINES = 4096


class RpcConnection:
    """Serves one client over a pair of byte streams."""

    def __init__(self, service: "SessionService", output: trio.abc.SendStream, *,
                 max_line_bytes: int = DEFAULT_MAX_LINE_BYTES, eof_grace: float = math.inf,
                 max_queued_event_lines: int = MAX_QUEUED_EVENT_LINES) -> None:
        self._output = output
        self._eof_grace = eof_grace
        self._max_line_bytes = max_line_bytes
        self._outbox_send, self._outbox = trio.open_memory_channel[bytes](math.inf)
        self._max_queued_event_lines = max_queued_event_lines
        #: Lines in the outbox (kept here: reading the channel's statistics per event costs ~1.4 us).
        self._queued = 0
        #: Set (and replaced) each time the writer has handed a batch to stdout.
        self._written = trio.Event()
        self._calls = ClientCalls(self._send)
        self._methods = Methods(service, self._calls, self._send_event, self._event_room)
        self._service = service
        #: Requests being answered, by id: the request and the scope that cancels it.
        self._inflight: dict[object, tuple[Request, trio.CancelScope, InFlight]] = {}
        #: True while the writer is handing a batch to stdout.
        self._writing = False

    async def serve(self, input: trio.abc.ReceiveStream) -> None:
        """Serve until the input ends and every request read has been answered (or the grace period is over)."""
        async with trio.open_nursery() as connection:
            connection.start_soon(self._write_loop, connection.cancel_scope)
            self._methods.live.nursery = connection  # standalone event streams live as long as the connection
            async with trio.open_nursery() as requests:
                async with aclosing(LineReader(input, self._max_line_bytes).__aiter__()) as lines:
                    async for line in lines:
                        self._accept(line, requests)
                log.debug("input closed; finishing the requests in flight")
                self._calls.close()
                requests.cancel_scope.deadline = trio.current_time() + self._eof_grace
            await self._methods.live.close_all()  # their stream_end lines go out before the outbox closes
            await self._outbox_send.aclose()  # the writer drains what is queued, then stops

    async def shut_down(self, grace: float = 10.0) -> None:
        """SIGTERM: answer every request in flight (running turns are interrupted and committed,
        the rest cancelled: each gets REQUEST_CANCELLED, as REST answers 499), and write the answers."""
        async with trio.open_nursery() as interrupts:
            for request, scope, inflight in list(self._inflight.values()):
                if inflight.session_id is not None:  # a turn/start, or a session/create whose session exists
                    interrupts.start_soon(self._interrupt_quietly, inflight.session_id)
                elif request.method == "session/create":
                    inflight.cancel_requested = True  # interrupted as soon as its session exists
                else:
                    scope.cancel()
        with trio.move_on_after(grace):
            while self._inflight:
                await trio.sleep(0.01)
            while self._outbox.statistics().current_buffer_used or self._writing:
                await trio.sleep(0.01)

    async def _send(self, line: bytes) -> None:
        self._queued += 1
        await self._outbox_send.send(line)

    def _send_event(self, line: bytes) -> None:
        # Events are queued without a scheduler trip each (a burst of deltas costs one wake-up of
        # the writer). Forwarders call _event_room first, which bounds what piles up here.
        self._queued += 1
        self._outbox_send.send_nowait(line)

    async def _event_room(self) -> None:
        """Wait while the outbox holds ``max_queued_event_lines`` or more (the client reads slowly)."""
        while self._queued >= self._max_queued_event_lines:
            await self._written.wait()

    def _accept(self, line: bytes | Oversized, requests: trio.Nursery) -> None:
        if isinstance(line, Oversized):
            error = protocol_error(ErrorCode.PAYLOAD_TOO_LARGE,
                                   f"Request too large: a line of {line.size} bytes exceeds the limit of "
                                   f"{self._max_line_bytes} bytes (rkat-rpc --max-line-bytes)",
                                   {"size": line.size, "limit": self._max_line_bytes})
            requests.start_soon(self._send, encode_error(None, error))
            return
        incoming = classify(line)
        if isinstance(incoming, Request):
            requests.start_soon(self._answer, incoming, name=f"rpc {incoming.method} #{incoming.id}")
        elif isinstance(incoming, Response):
            self._calls.answer(incoming.id, incoming.result, incoming.error)
        elif isinstance(incoming, Invalid):
            requests.start_soon(self._send, encode_error(incoming.id, incoming.error))
        elif isinstance(incoming, Notification):
            # Notifications are never answered; upstream's `initialized` needs nothing.
            if incoming.method == "cancel":
                self._cancel(incoming.params, requests)
            else:
                log.debug("ignoring notification %s", incoming.method)

    def _cancel(self, params: object, requests: trio.Nursery) -> None:
        """The ``cancel`` notification: stop the request named by ``params.id``."""
        if not isinstance(params, dict):
            return
        request_id = next((params[k] for k in ("id", "request_id", "requestId") if k in params), None)
        entry = self._inflight.get(request_id) if isinstance(request_id, (int, str, float)) else None
        if entry is None:
            log.debug("cancel: no request %r in flight", request_id)
            return
        request, scope, inflight = entry
        if inflight.session_id is not None:
            # Interrupt the turn: it commits what was said so far and the request fails with -32005.
            requests.start_soon(self._interrupt_quietly, inflight.session_id)
        elif request.method == "session/create":
            inflight.cancel_requested = True  # its session is being made: interrupted once it exists
        else:
            scope.cancel()

    async def _interrupt_quietly(self, session_id: str) -> None:
        try:
            await self._service.interrupt(session_id)
        except MeerkatError as exc:
            log.info("cancel: could not interrupt session %s: %s", session_id, exc)

    async def _answer(self, request: Request) -> None:
        if isinstance(request.params, dict):  # this task's turns get the caller's trace context
            note_meta_trace_context(request.params.get("_meta"))
        scope = trio.CancelScope()
        inflight = InFlight(request.method)
        if request.method == "turn/start" and isinstance(request.params, dict) \
                and isinstance(request.params.get("session_id"), str):
            inflight.session_id = request.params["session_id"]
        CURRENT.set(inflight)  # this task's own context: methods note the session their turn runs on
        tracked = request.id is not None and request.id not in self._inflight
        if tracked:
            self._inflight[request.id] = (request, scope, inflight)
        try:
            with scope:
                result = await self._methods.call(request.method, request.params)
            if scope.cancelled_caught:
                raise RequestCancelled("request cancelled")
        except MeerkatError as exc:
            line = encode_error(request.id, exc)
        except Exception as exc:  # a bug: answer the call, keep serving, leave a trace on stderr
            log.exception("%s failed", request.method)
            line = encode_error(request.id, InternalError(f"internal error: {type(exc).__name__}: {exc}"))
        else:
            line = encode_result(request.id, result)
        finally:
            if tracked:
                del self._inflight[request.id]
        await self._send(line)

    async def _write_loop(self, connection_scope: trio.CancelScope) -> None:
        try:
            async for line in self._outbox:
                batch = [line]
                size = len(line)
                self._queued -= 1
                while size < _MAX_BATCH_BYTES:
                    try:
                        more = self._outbox.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    batch.append(more)
                    size += len(more)
                    self._queued -= 1
                self._writing = True
                try:
                    await self._output.send_all(b"".join(batch))
                finally:
                    self._writing = False
                self._written.set()
                self._written = trio.Event()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.info("stdout closed (%s); stopping", exc)
            connection_scope.cancel()
