"""The wire to one ``rkat-rpc`` child: JSON-RPC lines over its stdin and stdout.

One writer queue keeps requests in the order they were made. One reader task
sorts what the child writes: responses wake their callers, ``session/event``
notifications go to the streams following that session, and server-to-client
requests (``tool/execute``) are answered by the client's handler, each in its own
task so a handler can make SDK calls of its own. A streaming request hands its
response to its stream's queue *after* the events read before it, which is what
ends a stream exactly after its last event.
"""

from __future__ import annotations

import logging
import subprocess
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Sequence

import anyio
import msgspec
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio.streams.memory import MemoryObjectSendStream

from meerkat.errors import ErrorCode, InvalidParams, MeerkatError

from ._background import Background
from ._errors import ClientClosed, ClientError, ConnectionClosed, ProtocolError, error_from_wire
from ._events import event_from_params
from ._live import stream_item

__all__ = ["Connection", "StreamEnd", "ServerRequestHandler", "MAX_LINE_BYTES", "STDERR_TAIL_BYTES"]

log = logging.getLogger("meerkat.client")

#: Longest line accepted from the server (the published SDK's limit too).
MAX_LINE_BYTES = 64 * 1024 * 1024
#: How much of the server's stderr is kept for ConnectionClosed errors.
STDERR_TAIL_BYTES = 16 * 1024
#: Seconds to wait for the child to exit after SIGTERM, then again after SIGKILL.
EXIT_WAIT_SECS = 5.0

ServerRequestHandler = Callable[[str, Any], Awaitable[Any]]


class _Frame(msgspec.Struct):
    """One line from the server, sorted lazily: params and result stay raw until needed."""

    jsonrpc: Any = None
    id: Any = msgspec.UNSET
    method: Any = None
    params: msgspec.Raw = msgspec.Raw(b"null")
    result: msgspec.Raw = msgspec.Raw(b"null")
    error: Any = None


_frames = msgspec.json.Decoder(_Frame)
_any = msgspec.json.Decoder()
_encoder = msgspec.json.Encoder()


@dataclass(frozen=True, slots=True)
class StreamEnd:
    """The last item of a stream's queue: the response's result, or its error."""

    result: Any = None
    error: BaseException | None = None


class _Pending:
    __slots__ = ("done", "result", "error", "sink", "size")

    def __init__(self, sink: MemoryObjectSendStream[Any] | None, size: int = 0) -> None:
        self.done = anyio.Event()
        #: Bytes of the request line, to tell which call a server's "line too large" answer is for.
        self.size = size
        self.result: Any = None
        self.error: BaseException | None = None
        self.sink = sink

    def settle(self, result: Any = None, error: BaseException | None = None) -> None:
        self.result, self.error = result, error
        if self.sink is not None:
            try:
                self.sink.send_nowait(StreamEnd(result, error))
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass
        self.done.set()


class Connection:
    """A running ``rkat-rpc`` child; open with :meth:`open`, end with :meth:`close`."""

    def __init__(self, process: anyio.abc.Process, background: Background,
                 on_request: ServerRequestHandler) -> None:
        self._process = process
        self._background = background
        self._on_request = on_request
        self._next_id = 0
        self._pending: dict[int, _Pending] = {}
        self._routes: dict[str, set[MemoryObjectSendStream[Any]]] = {}
        #: Standalone subscriptions (``session/stream_open``) by stream id.
        self._stream_routes: dict[str, MemoryObjectSendStream[Any]] = {}
        self._outbox_send, self._outbox = anyio.create_memory_object_stream[bytes](float("inf"))
        self._failure: ClientError | None = None
        self._stderr_tail = bytearray()
        self._stderr_done = anyio.Event()
        self._closed = False

    @classmethod
    async def open(cls, argv: Sequence[str], on_request: ServerRequestHandler,
                   env: dict[str, str] | None = None) -> "Connection":
        """Start the child and the tasks serving it."""
        process = await anyio.open_process(list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                           stderr=subprocess.PIPE, env=env)
        background = await Background.open()
        self = cls(process, background, on_request)
        background.start_soon(self._drain_stderr)
        background.start_soon(self._write_loop, on_error=self._transport_failed)
        background.start_soon(self._read_loop, on_error=self._transport_failed)
        return self

    # -- calls ----------------------------------------------------------------

    def _check_open(self) -> None:
        if self._failure is not None:
            raise self._failure.clone()

    def send_request(self, method: str, params: dict[str, Any],
                     sink: MemoryObjectSendStream[Any] | None = None) -> _Pending:
        """Queue a request now (calls keep their order on the wire); await ``.done`` for the answer."""
        self._check_open()
        request_id = self._next_id + 1
        # Encode before registering: a value JSON cannot carry fails this call alone, at once.
        try:
            line = _encoder.encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}) + b"\n"
            line.decode("utf-8")  # msgspec passes lone surrogates through; rkat-rpc would refuse the line
        except (TypeError, ValueError, msgspec.EncodeError) as exc:  # UnicodeError is a ValueError
            raise InvalidParams(f"{method}: the request cannot be sent as JSON: {exc}") from None
        self._next_id = request_id
        pending = self._pending[request_id] = _Pending(sink, len(line))
        self._outbox_send.send_nowait(line)
        return pending

    async def request(self, method: str, params: dict[str, Any]) -> Any:
        """Call ``method`` and return its result (raises the server's error as its class)."""
        pending = self.send_request(method, params)
        await pending.done.wait()
        if pending.error is not None:
            raise pending.error
        return pending.result

    def follow(self, session_id: str, sink: MemoryObjectSendStream[Any]) -> Callable[[], None]:
        """Send ``session_id``'s events to ``sink`` until the returned function is called."""
        self._routes.setdefault(session_id, set()).add(sink)

        def unfollow() -> None:
            sinks = self._routes.get(session_id)
            if sinks is not None:
                sinks.discard(sink)
                if not sinks:
                    del self._routes[session_id]

        return unfollow

    def follow_stream(self, stream_id: str, sink: MemoryObjectSendStream[Any]) -> Callable[[], None]:
        """Send a subscription's envelopes (and its end) to ``sink`` until the returned function is called."""
        self._stream_routes[stream_id] = sink

        def unfollow() -> None:
            self._stream_routes.pop(stream_id, None)

        return unfollow

    def spawn(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Run ``fn`` in the connection's background group (ended by :meth:`close`)."""
        self._background.start_soon(fn, *args)

    # -- the child's output ------------------------------------------------------

    async def _read_loop(self) -> None:
        stream = BufferedByteReceiveStream(self._process.stdout)  # type: ignore[arg-type]
        failure: ClientError | None = None
        while failure is None:
            try:
                line = await stream.receive_until(b"\n", MAX_LINE_BYTES)
            except (anyio.EndOfStream, anyio.IncompleteRead, anyio.ClosedResourceError, anyio.BrokenResourceError):
                break
            except anyio.DelimiterNotFound:
                failure = ProtocolError(f"rkat-rpc wrote a line longer than {MAX_LINE_BYTES} bytes")
                break
            failure = self._dispatch(line)
        if failure is None:
            failure = await self._exit_error()
        self._fail_all(failure)

    def _dispatch(self, line: bytes) -> ClientError | None:
        try:
            frame = _frames.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            return ProtocolError(f"malformed JSON frame from rkat-rpc: {exc}: {line[:200]!r}")
        if frame.id is not msgspec.UNSET:
            if frame.method is not None:
                self._background.start_soon(self._answer_server, frame.id, frame.method, frame.params)
                return None
            if frame.id is None and frame.error:  # a line the server could not read at all
                self._fail_unreadable(error_from_wire(frame.error))
                return None
            pending = self._pending.pop(frame.id, None) if isinstance(frame.id, int) else None
            if pending is None:
                log.debug("dropping a response to unknown id %r", frame.id)
            elif frame.error:
                pending.settle(error=error_from_wire(frame.error))
            else:
                result = _any.decode(frame.result)
                pending.settle(result={} if result is None else result)
            return None
        if frame.method == "session/event":
            session_id, event = event_from_params(frame.params)
            for sink in tuple(self._routes.get(session_id or "", ())):
                try:
                    sink.send_nowait(event)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                    pass
        elif frame.method in ("session/stream_event", "session/stream_end"):
            self._route_stream(frame.method, frame.params)
        return None

    def _route_stream(self, method: str, raw: msgspec.Raw) -> None:
        stream_id, item = stream_item(method, raw)
        sink = self._stream_routes.get(stream_id or "")
        if sink is not None and item is not None:
            try:
                sink.send_nowait(item)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError):
                pass

    def _fail_unreadable(self, error: MeerkatError) -> None:
        """Settle the calls an ``id: null`` error answers: the lines longer than the server's limit.

        The server cannot name the request it could not read. Only an oversized
        line can be ours (we never send malformed JSON), and its size tells which.
        """
        limit = error.details.get("limit")
        if error.code is not ErrorCode.PAYLOAD_TOO_LARGE or not isinstance(limit, int):
            log.warning("rkat-rpc could not read a request: %s", error.message)
            return
        for request_id, pending in list(self._pending.items()):
            if pending.size > limit:
                del self._pending[request_id]
                pending.settle(error=error)

    async def _answer_server(self, request_id: Any, method: Any, raw_params: msgspec.Raw) -> None:
        try:
            result = await self._on_request(method, _any.decode(raw_params))
        except MeerkatError as exc:
            reply = {"jsonrpc": "2.0", "id": request_id, "error": {"code": exc.spec.jsonrpc_code,
                                                                    "message": exc.message}}
        else:
            reply = {"jsonrpc": "2.0", "id": request_id, "result": result}
        if self._failure is None:
            self._outbox_send.send_nowait(_encoder.encode(reply) + b"\n")

    async def _write_loop(self) -> None:
        stdin = self._process.stdin
        assert stdin is not None
        async for line in self._outbox:
            await stdin.send(line)

    async def _drain_stderr(self) -> None:
        stderr = self._process.stderr
        assert stderr is not None
        try:
            async for chunk in stderr:
                self._stderr_tail += chunk
                del self._stderr_tail[:-STDERR_TAIL_BYTES]
        except (anyio.ClosedResourceError, anyio.BrokenResourceError):
            pass
        finally:
            self._stderr_done.set()

    async def _exit_error(self) -> ClientError:
        with anyio.move_on_after(EXIT_WAIT_SECS):
            await self._stderr_done.wait()
        code: int | None = None
        with anyio.move_on_after(EXIT_WAIT_SECS):
            code = await self._process.wait()
        tail = self._stderr_tail.decode("utf-8", "replace")
        return ConnectionClosed(f"rkat-rpc exited (code {code}); stderr: {tail[-2000:].strip() or '(empty)'}",
                                details={"exit_code": code, "stderr_tail": tail})

    # -- failure and shutdown ------------------------------------------------------

    def _transport_failed(self, exc: BaseException) -> None:
        failure = exc if isinstance(exc, ClientError) else ConnectionClosed(f"lost rkat-rpc: {exc!r}")
        self._fail_all(failure)

    def _fail_all(self, failure: ClientError) -> None:
        if self._failure is None:
            self._failure = failure
        pending, self._pending = self._pending, {}
        for call in pending.values():
            call.settle(error=self._failure.clone())

    async def close(self) -> None:
        """Fail pending calls (ClientClosed), close the child's stdin, SIGTERM it, reap it."""
        if self._closed:
            return
        self._closed = True
        self._fail_all(ClientClosed("the client was closed"))
        process = self._process
        with anyio.CancelScope(shield=True):
            try:
                await process.stdin.aclose()  # type: ignore[union-attr]
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
                pass
            if process.returncode is None:
                try:
                    process.terminate()
                except ProcessLookupError:
                    pass
                with anyio.move_on_after(EXIT_WAIT_SECS):
                    await process.wait()
                if process.returncode is None:
                    process.kill()
                    with anyio.move_on_after(EXIT_WAIT_SECS):
                        await process.wait()
            await self._background.aclose()
            self._outbox_send.close()
            self._outbox.close()
            await process.aclose()
