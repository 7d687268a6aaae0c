"""Serving one client on stdin/stdout, telling it about lines that are not JSON-RPC.

The ``mcp`` stdio transport drops an unreadable line silently (it hands the
parse failure to the server loop, which only logs it at debug level). A client
that sent it would then wait forever for an answer. Here such a line gets the
JSON-RPC answer ``{"id": null, "error": {"code": -32700, ...}}`` saying what was
wrong, a warning goes to stderr, and the server keeps reading.
"""

from __future__ import annotations

import logging
from types import TracebackType
from typing import Any

import mcp_types as types
import pydantic
from mcp.server.lowlevel import Server
from mcp.shared.message import SessionMessage

from meerkat.errors import ERROR_TABLE, ErrorCode

__all__ = ["serve_stdio", "ParseErrorReplies"]

log = logging.getLogger("rkat.mcp")


def _describe(error: Exception) -> str:
    if isinstance(error, pydantic.ValidationError) and error.errors():
        return error.errors()[0]["msg"]
    return str(error) or type(error).__name__


class ParseErrorReplies:
    """A transport read stream that answers unreadable input with -32700 instead of passing it on."""

    def __init__(self, inner: Any, write_stream: Any) -> None:
        self._inner = inner
        self._write = write_stream

    @property
    def last_context(self) -> Any:
        """The sender context of the last message (the server loop restores it per message)."""
        return getattr(self._inner, "last_context", None)

    async def receive(self) -> SessionMessage:
        """The next readable message; unreadable lines are answered and skipped."""
        while True:
            item = await self._inner.receive()
            if not isinstance(item, Exception):
                return item
            detail = _describe(item)
            log.warning("unreadable message on stdin: %s", detail)
            error = types.ErrorData(code=ERROR_TABLE[ErrorCode.PARSE_ERROR].jsonrpc_code,
                                    message=f"Parse error: not a JSON-RPC message ({detail})")
            await self._write.send(SessionMessage(types.JSONRPCError(jsonrpc="2.0", id=None, error=error)))

    def __aiter__(self) -> "ParseErrorReplies":
        return self

    async def __anext__(self) -> SessionMessage:
        import anyio

        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        """Close the underlying stream."""
        await self._inner.aclose()

    async def __aenter__(self) -> "ParseErrorReplies":
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()


async def serve_stdio(server: Server[Any]) -> None:
    """Serve one client on stdin/stdout until it closes stdin or stops reading stdout."""
    from mcp.server.stdio import stdio_server

    try:
        async with stdio_server() as (read_stream, write_stream):
            await server.run(ParseErrorReplies(read_stream, write_stream), write_stream,
                             server.create_initialization_options())
    except* BrokenPipeError:
        # The client closed its end of stdout (it exited or was killed): a disconnect, not a failure.
        log.info("the client stopped reading stdout")
