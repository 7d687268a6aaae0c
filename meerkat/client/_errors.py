"""Errors of the SDK: the server's, rebuilt as the shared classes, and the client's own.

A JSON-RPC error from ``rkat-rpc`` comes back as the same class the host raised
(``SessionNotFound``, ``SessionBusy``, ``ConfigGenerationConflict``...; see
:mod:`meerkat.errors`), because the server names the table row in
``error.data.error_code``. From another server, the numeric code picks the row.

Problems on this side of the wire are :class:`ClientError` subclasses::

    MeerkatError
     +-- ClientError
          +-- BinaryNotFound     no rkat-rpc to start (this SDK never downloads one)
          +-- ConnectionClosed   rkat-rpc exited; details["stderr_tail"] says why
          +-- ClientClosed       close() was called while the call was pending
          +-- ProtocolError      rkat-rpc wrote something that is not JSON-RPC
          +-- VersionMismatch    the server speaks another contract version
          +-- StreamNotConsumed  a stream's result was read before the stream ended
"""

from __future__ import annotations

from typing import Any

from meerkat.errors import ERROR_TABLE, ErrorCode, MeerkatError, error_from_code

__all__ = ["ClientError", "BinaryNotFound", "ConnectionClosed", "ConnectTimeout", "ClientClosed", "ProtocolError", "VersionMismatch",
           "StreamNotConsumed", "error_from_wire"]


class ClientError(MeerkatError):
    """A failure on the client side of the wire (``code`` stays INTERNAL_ERROR; the class says what)."""

    def clone(self) -> "ClientError":
        """A fresh instance to raise in another task (each waiter gets its own traceback)."""
        return type(self)(self.message, details=dict(self.details))


class BinaryNotFound(ClientError):
    """No ``rkat-rpc`` executable could be found."""


class ConnectionClosed(ClientError):
    """``rkat-rpc`` exited or closed its output; ``details`` has ``exit_code`` and ``stderr_tail``."""


class ConnectTimeout(ConnectionClosed):
    """``rkat-rpc`` started but did not complete the handshake within ``connect_timeout`` seconds."""


class ClientClosed(ClientError):
    """The client was closed while this call was pending, or before it was made."""


class ProtocolError(ClientError):
    """``rkat-rpc`` wrote a line that is not a JSON-RPC object, or an unusable result."""


class VersionMismatch(ClientError):
    """The server's contract version is not one this SDK speaks (0.9.x)."""


class StreamNotConsumed(ClientError):
    """``stream.result`` was read before the stream's response arrived."""


#: Numeric JSON-RPC code -> the table row to use when the server named none.
_BY_JSONRPC: dict[int, ErrorCode] = {}
for _code, _spec in ERROR_TABLE.items():
    _BY_JSONRPC.setdefault(_spec.jsonrpc_code, _code)
_BY_JSONRPC[-32603] = ErrorCode.INTERNAL_ERROR


def error_from_wire(error: Any) -> MeerkatError:
    """The exception for a JSON-RPC ``error`` object."""
    if not isinstance(error, dict):
        return ProtocolError(f"malformed error object from rkat-rpc: {error!r}")
    raw_message = error.get("message")
    message = raw_message if isinstance(raw_message, str) else "error without a message"
    data = error.get("data")
    details: dict[str, Any] | None = None
    name = None
    if isinstance(data, dict):
        name = data.get("error_code")
        details = data.get("details") if isinstance(data.get("details"), dict) else None
    if isinstance(name, str) and name in ErrorCode.__members__:
        return error_from_code(name, message, details)
    code = error.get("code")
    row = _BY_JSONRPC.get(code) if isinstance(code, int) else None
    extra = {"jsonrpc_code": code, **(details or {})}
    return error_from_code(row or ErrorCode.INTERNAL_ERROR, message, extra)
