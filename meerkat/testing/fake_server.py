"""Fake LLM vendor servers: real HTTP on loopback, speaking each vendor's streaming format.

One server answers all four wire formats, picked by the request path, so any
provider (or all of them) can be pointed at it through its base URL:

===================================================  ============================
path                                                 format
===================================================  ============================
``POST .../v1/messages``                             Anthropic Messages SSE
``POST .../v1/responses``                            OpenAI Responses SSE
``POST .../v1/chat/completions``                     OpenAI chat completions SSE
``POST .../v1beta/models/MODEL:streamGenerateContent``  Gemini SSE (``alt=sse``)
===================================================  ============================

Each call takes the next item of the script (:mod:`meerkat.testing.script`):
a reply, or a fault. With the script empty, ``default`` answers (None: a 500
saying the script ran out). Every request is recorded (path, headers, JSON body)
so tests can assert what reached the wire. Knobs: ``latency_ms`` before the
first byte and ``tokens_per_second`` pacing the stream's events.

Use in tests::

    async with open_fake_provider_server() as server:
        server.script(Reply(text="hello"), HttpError(429, retry_after=0.01))
        ... point a provider at server.url ...

or as a process (``python -m meerkat.testing --port 8765 --reply "hello"``).
"""

from __future__ import annotations

import json
import re
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any, AsyncIterator, Awaitable, Callable

import msgspec
import trio

from .script import DropConnection, HttpError, Reply, ScriptItem, Stall
from .wire_formats import ENCODERS, ERROR_BODIES, responses_events

__all__ = ["ReceivedRequest", "FakeProviderServer", "open_fake_provider_server", "serve_fake_provider_server"]

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass(frozen=True)
class ReceivedRequest:
    """One call the server received."""

    vendor: str
    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]
    #: The body's bytes exactly as they arrived.
    raw: bytes = b""


_MODEL = re.compile(rb'"model":\s*"((?:[^"\\]|\\.)*)"')


def _glance(raw: bytes) -> dict[str, Any]:
    """The few fields a reply needs (model, include), without parsing a body that may be megabytes long
    into objects.

    Benchmarks send thousands of long histories: a full parse here would time the
    fake vendor, not the host. Tests record requests, and those are parsed whole.
    """
    if not raw.lstrip().startswith(b"{"):
        raise ValueError("not a JSON object")
    # Still the whole body is checked to be JSON (a truncated or badly spliced one must not pass):
    # msgspec validates without building objects, ~1.5 GB/s, a tenth of a full parse.
    msgspec.json.decode(raw, type=msgspec.Raw)
    found = _MODEL.search(raw)
    body: dict[str, Any] = {"model": json.loads(b'"' + found.group(1) + b'"')} if found else {}
    if b'"reasoning.encrypted_content"' in raw:
        body["include"] = ["reasoning.encrypted_content"]
    return body


class _Dropped(Exception):
    """Raised inside the app to make the server cut the connection mid-response."""


def _vendor(path: str) -> str | None:
    if path.endswith("/messages"):
        return "anthropic"
    if path.endswith("/responses"):
        return "openai"
    if path.endswith("/chat/completions"):
        return "chat"
    if path.endswith(":streamGenerateContent"):
        return "gemini"
    return None


class FakeProviderServer:
    """The ASGI app and its script; see the module docstring."""

    def __init__(self, *, latency_ms: float = 0.0, tokens_per_second: float | None = None,
                 default: Reply | None = None, record: bool = True) -> None:
        self.latency_ms = latency_ms
        #: Keep every request in :attr:`requests` (benchmarks sending thousands of long bodies turn it off).
        self.record = record
        self.tokens_per_second = tokens_per_second
        self.default = default
        self.requests: list[ReceivedRequest] = []
        #: Also append each request as a JSON line ``{vendor, path, body}`` to this file (another process reads it).
        self.record_to: str | None = None
        #: Streams the client abandoned before their end (a cancelled turn closes its stream).
        self.disconnects = 0
        self.url = ""
        self._script: list[ScriptItem] = []
        self._disconnected = trio.Event()

    async def wait_disconnect(self) -> None:
        """Return once some client has abandoned a stream mid-way."""
        await self._disconnected.wait()

    def script(self, *items: ScriptItem) -> None:
        """Queue answers for the next calls, in order."""
        self._script.extend(items)

    @property
    def pending(self) -> int:
        """Scripted items not used yet."""
        return len(self._script)

    def _next(self) -> ScriptItem | None:
        return self._script.pop(0) if self._script else self.default

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        raw = b"".join(chunks)
        path = scope["path"]
        vendor = _vendor(path)
        if vendor is None or scope["method"] != "POST":
            await _respond(send, 404, {"error": {"message": f"fake provider server: no route {path}"}})
            return
        try:
            body = json.loads(raw or b"{}") if self.record else _glance(raw)
        except ValueError:
            await _respond(send, 400, ERROR_BODIES[vendor](400, "request body is not JSON"))
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if self.record:
            self.requests.append(ReceivedRequest(vendor, path, scope.get("query_string", b"").decode(), headers,
                                                 body, raw))
            if self.record_to is not None:
                with open(self.record_to, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"vendor": vendor, "path": path, "body": body}) + "\n")
        if self.latency_ms:
            await trio.sleep(self.latency_ms / 1000)
        item = self._next()
        if item is None:
            await _respond(send, 500, ERROR_BODIES[vendor](500, "fake provider server: the script ran out"))
            return
        if isinstance(item, HttpError):
            extra = [(b"retry-after", str(item.retry_after).encode())] if item.retry_after is not None else []
            await _respond(send, item.status, ERROR_BODIES[vendor](item.status, item.message), extra)
            return
        async with trio.open_nursery() as nursery:
            # An ASGI server does not cancel the app when the client leaves: it says so
            # through receive(), and this watcher ends the stream then.
            nursery.start_soon(self._watch_disconnect, receive, nursery.cancel_scope)
            await self._stream(send, vendor, body, path, item)
            nursery.cancel_scope.cancel()

    async def _watch_disconnect(self, receive: Receive, stream_scope: trio.CancelScope) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass
        self.disconnects += 1
        self._disconnected.set()
        stream_scope.cancel()

    async def _stream(self, send: Send, vendor: str, body: dict[str, Any], path: str, item: ScriptItem) -> None:
        reply = item if isinstance(item, Reply) else item.reply  # type: ignore[union-attr]
        model = path.rsplit("/", 1)[-1].split(":")[0] if vendor == "gemini" else str(body.get("model", ""))
        if vendor == "openai" and "reasoning.encrypted_content" in (body.get("include") or ()):
            frames = responses_events(reply, model, encrypted_reasoning=True)
        else:
            frames = ENCODERS[vendor](reply, model)
        cut = item.after_events if isinstance(item, (DropConnection, Stall)) else None
        pause = 1.0 / self.tokens_per_second if self.tokens_per_second else 0.0
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream"), (b"cache-control", b"no-cache")]})
        for index, frame in enumerate(frames):
            if index == cut:
                if isinstance(item, DropConnection):
                    raise _Dropped("scripted connection drop")
                assert isinstance(item, Stall)
                await trio.sleep(item.seconds)
            elif index and pause:
                await trio.sleep(pause)
            await send({"type": "http.response.body", "body": frame, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _respond(send: Send, status: int, body: dict[str, Any], extra: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()),
                            *extra]})
    await send({"type": "http.response.body", "body": data})


def _config(host: str, port: int) -> Any:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = None  # a scripted drop is not an error worth a traceback
    config.graceful_timeout = 0.1
    return config


async def serve_fake_provider_server(server: FakeProviderServer, host: str = "127.0.0.1", port: int = 0, *,
                                     task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
    """Serve ``server`` until cancelled; reports its URL (``http://127.0.0.1:PORT``) once listening."""
    from hypercorn.trio import serve

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, server, _config(host, port), mode="asgi"))  # type: ignore[arg-type]
        server.url = binds[0]
        task_status.started(server.url)


@asynccontextmanager
async def open_fake_provider_server(**knobs: Any) -> AsyncIterator[FakeProviderServer]:
    """A running fake server on a free loopback port, stopped when the block ends."""
    server = FakeProviderServer(**knobs)
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_fake_provider_server, server)
        try:
            yield server
        finally:
            nursery.cancel_scope.cancel()
