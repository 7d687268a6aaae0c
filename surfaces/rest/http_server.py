"""The HTTP server under ``rkat-rest``: hypercorn's connection handling, our accept loop.

Why not ``hypercorn.trio.serve`` as is (hypercorn 0.18 with quart-trio 0.12):

* quart-trio cancels a request's task as soon as hypercorn reports the stream closed,
  and hypercorn reports that from inside the app's last ``send``: the close of a
  connection that must close (HTTP/1.0, ``Connection: close``) and the start of the
  idle keep-alive timer were cancelled half-way, so no connection was ever closed.
  :func:`shield_final_send` lets that last ``send`` finish.
* trio's accept loop logs a traceback every 0.1 s while the process is out of file
  descriptors, and nothing bounds how many connections a client may hold open. Our
  loop caps open connections (one over the cap gets ``503`` and is closed), and logs
  running out of descriptors once per episode while the open connections go on.
"""

from __future__ import annotations

import errno
import json
import logging
import resource
from functools import partial
from typing import Any, Awaitable, Callable

import trio
from hypercorn.config import Config
from hypercorn.trio.lifespan import Lifespan
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import ShutdownError, raise_shutdown, repr_socket_addr, wrap_app

__all__ = ["shield_final_send", "serve", "default_max_connections"]

log = logging.getLogger("rkat.rest.http")

#: Errors of ``accept`` that mean "out of descriptors or memory": wait and retry.
_CAPACITY_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})
_CAPACITY_RETRY_SECS = 0.1
#: Descriptors kept free for what a turn needs besides its connection (store files, vendors).
_RESERVED_FDS = 64
_BUSY_RESPONSE = (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
                  b"Connection: close\r\nRetry-After: 1\r\nContent-Length: 99\r\n\r\n"
                  b'{"code":"SERVER_BUSY","message":"too many open connections; retry later","retryable":true}')
_BUSY_RESPONSE = _BUSY_RESPONSE.replace(
    b"Content-Length: 99", b"Content-Length: %d" % len(_BUSY_RESPONSE.split(b"\r\n\r\n", 1)[1]))

#: An ASGI application (scope, receive, send); loose on purpose: Quart and hypercorn each type it their own way.
Asgi = Callable[[Any, Any, Any], Awaitable[None]]


class _Connection(TCPServer):
    """hypercorn's connection, which ends as soon as its client has gone.

    Its idle keep-alive timer would otherwise hold the descriptor of a connection the
    client closed until the timer ran out.
    """

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


def default_max_connections() -> int:
    """Half the descriptors this process may open (at most 1024): the rest stay for the realm."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 1024
    return max(8, min(1024, (soft - _RESERVED_FDS) // 2))


def shield_final_send(app: Asgi) -> Asgi:
    """``app`` whose last ``http.response.body`` send cannot be cancelled half-way (see module doc)."""
    async def shielded_app(scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http":
            await app(scope, receive, send)
            return

        async def send_final_shielded(message: dict) -> None:
            if message.get("type") == "http.response.body" and not message.get("more_body", False):
                with trio.CancelScope(shield=True):
                    await send(message)
            else:
                await send(message)

        await app(scope, receive, send_final_shielded)
    return shielded_app


def _host_problem(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why the ``Host`` header cannot name a host (a 64-character label, bad IDNA), else None."""
    raw = next((value for name, value in headers if name.lower() == b"host"), None)
    if raw is None:
        return None
    text = raw.decode("latin-1")
    name = text[1:text.index("]")] if text.startswith("[") and "]" in text else text.rsplit(":", 1)[0]
    if text.startswith("["):
        return None  # an IPv6 literal: no labels to check
    try:
        name.encode("idna")
    except UnicodeError as exc:
        return f"invalid Host header {text[:80]!r}: {exc}"
    return None


def reject_bad_host(app: Asgi) -> Asgi:
    """``app`` answering 400 to a ``Host`` header that names no host (the web framework would
    answer an empty 500 and log a traceback)."""
    async def checked_app(scope: dict, receive: Any, send: Any) -> None:
        problem = _host_problem(scope.get("headers") or []) if scope.get("type") == "http" else None
        if problem is None:
            await app(scope, receive, send)
            return
        body = json.dumps({"error": problem, "code": "INVALID_REQUEST"}).encode()
        await send({"type": "http.response.start", "status": 400, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
    return checked_app


class _ConnectionSlots:
    """How many connections are open; one past ``limit`` is answered 503 and closed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.open = 0
        self._refused_logged = False

    def take(self) -> bool:
        if self.open >= self.limit:
            if not self._refused_logged:
                log.warning("%d connections open (--max-connections); refusing new ones with 503 until some "
                            "close", self.open)
                self._refused_logged = True
            return False
        self.open += 1
        return True

    def give_back(self) -> None:
        self.open -= 1
        if self.open < self.limit * 3 // 4:
            self._refused_logged = False


async def _accept_loop(listener: trio.SocketListener, nursery: trio.Nursery, handler: Callable[[Any], Any],
                       slots: _ConnectionSlots) -> None:
    out_of_fds = False
    async with listener:
        while True:
            try:
                stream = await listener.accept()
            except OSError as exc:
                if exc.errno not in _CAPACITY_ERRNOS:
                    raise
                if not out_of_fds:
                    log.error("cannot accept connections: %s (open connections: %d); new connections wait "
                              "until descriptors are free, open ones are still served (raise the limit with "
                              "'ulimit -n', or lower --max-connections)", exc.strerror, slots.open)
                    out_of_fds = True
                await trio.sleep(_CAPACITY_RETRY_SECS)
                continue
            if out_of_fds:
                log.warning("accepting connections again")
                out_of_fds = False
            if slots.take():
                nursery.start_soon(_run_connection, stream, handler, slots)
            else:
                nursery.start_soon(_refuse, stream)


async def _run_connection(stream: trio.SocketStream, handler: Callable[[Any], Any], slots: _ConnectionSlots) -> None:
    try:
        await handler(stream)
    finally:
        slots.give_back()
        await trio.aclose_forcefully(stream)


async def _refuse(stream: trio.SocketStream) -> None:
    # Answer, then read what the client sent until it closes (a second at most): closing
    # with its request unread would reset the connection, and the client lose the 503.
    with trio.move_on_after(1.0):
        try:
            await stream.send_all(_BUSY_RESPONSE)
            await stream.send_eof()
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
    await trio.aclose_forcefully(stream)


async def serve(app: Asgi, config: Config, *, max_connections: int,
                shutdown_trigger: Callable[[], Awaitable[None]],
                task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``app`` on ``config.bind`` (plain HTTP) until ``shutdown_trigger`` returns.

    Mirrors ``hypercorn.trio.run.worker_serve`` (lifespan, graceful timeout), with
    :func:`shield_final_send` and the capped accept loop above.
    """
    wrapped = wrap_app(shield_final_send(reject_bad_host(app)), config.wsgi_max_body_size, "asgi")
    lifespan_state: dict = {}
    lifespan = Lifespan(wrapped, config, lifespan_state)
    context = WorkerContext(None)
    slots = _ConnectionSlots(max_connections)

    async with trio.open_nursery() as lifespan_nursery:
        await lifespan_nursery.start(lifespan.handle_lifespan)
        await lifespan.wait_for_startup()
        async with trio.open_nursery() as server_nursery:
            sockets = config.create_sockets()
            listeners = []
            binds = []
            for sock in sockets.insecure_sockets:
                sock.listen(config.backlog)
                listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
                binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
            handler = partial(_Connection, wrapped, config, context, ConnectionState(lifespan_state.copy()))
            task_status.started(binds)
            try:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(raise_shutdown, shutdown_trigger)
                    for listener in listeners:
                        nursery.start_soon(_accept_loop, listener, server_nursery, handler, slots)
            except BaseExceptionGroup as error:
                _, other = error.split(ShutdownError)
                if other is not None:
                    raise other
            finally:
                await context.terminated.set()
                server_nursery.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
        await lifespan.wait_for_shutdown()
        lifespan_nursery.cancel_scope.cancel()

