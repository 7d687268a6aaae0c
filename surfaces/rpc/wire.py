"""JSON-RPC 2.0 objects: sorting what arrives, encoding what leaves.

Sans-I/O: bytes in, typed values out, and bytes back. Every error a client can
see is a :class:`meerkat.errors.MeerkatError` mapped through the one error
table: ``error.code`` is the table's JSON-RPC code (what upstream sends), and
``error.data`` names the table row as ``{"error_code": "SESSION_BUSY",
"details": {...}}``. The key is deliberately not ``code``: the published SDK
would then report the name instead of the numeric code it is known to report.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Union

import msgspec

from meerkat.errors import ErrorCode, MeerkatError, error_from_code
from meerkat.events import EventEnvelope
from surfaces.json_input import json_parse_error, number_out_of_range

__all__ = ["Request", "Notification", "Response", "Invalid", "Incoming", "classify", "encode_result",
           "encode_error", "encode_request", "encode_event", "protocol_error"]

RequestId = Union[int, str, float, None]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


@dataclass(frozen=True, slots=True)
class Request:
    """A call the client expects an answer to."""

    id: RequestId
    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class Notification:
    """A call without an id: never answered."""

    method: str
    params: Any


@dataclass(frozen=True, slots=True)
class Response:
    """The client's answer to one of our server-to-client requests."""

    id: RequestId
    result: Any
    error: Any


@dataclass(frozen=True, slots=True)
class Invalid:
    """A line that is not a usable JSON-RPC object; answer ``error`` to ``id``."""

    id: RequestId
    error: MeerkatError


Incoming = Union[Request, Notification, Response, Invalid]


def protocol_error(code: ErrorCode, message: str, details: dict[str, Any] | None = None) -> MeerkatError:
    """A protocol-level error (parse, invalid request, unknown method) from the shared table."""
    return error_from_code(code, message, details)


def _valid_id(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float, str)) and not isinstance(value, bool))


class _Unreadable:
    """An integer literal too long to turn into an int (only its request's id matters here)."""


def _out_of_range(line: bytes, exc: Exception, error: MeerkatError) -> Invalid:
    """Answer valid JSON with a number past what the decoder takes (a 5,000-digit integer, ``1e400``)
    to its request's id: an answer to id null leaves a client waiting on its own id forever."""
    try:
        message = json.loads(line, parse_int=lambda text: int(text) if len(text) <= 64 else _Unreadable(),
                             parse_float=float)
    except (ValueError, RecursionError):
        return Invalid(None, json_parse_error(exc))
    request_id = message.get("id") if isinstance(message, dict) else None
    if not _valid_id(request_id) or isinstance(request_id, float) and not math.isfinite(request_id):
        return Invalid(None, json_parse_error(exc))
    return Invalid(request_id, error)


def classify(line: bytes) -> Incoming:
    """Sort one line: a request, a notification, a response to us, or something invalid."""
    try:
        message = _decoder.decode(line)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        out_of_range = number_out_of_range(exc)
        if out_of_range is not None:
            return _out_of_range(line, exc, out_of_range)
        return Invalid(None, json_parse_error(exc))
    if isinstance(message, list):
        return Invalid(None, protocol_error(ErrorCode.INVALID_REQUEST,
                                            "Invalid request: batches are not supported, send one object per line"))
    if not isinstance(message, dict):
        return Invalid(None, protocol_error(ErrorCode.INVALID_REQUEST,
                                            "Invalid request: expected a JSON object"))
    has_id = "id" in message
    request_id = message.get("id")
    if has_id and not _valid_id(request_id):
        return Invalid(None, protocol_error(ErrorCode.INVALID_REQUEST,
                                            "Invalid request: `id` must be a string, a number or null"))
    if message.get("jsonrpc") != "2.0":
        return Invalid(request_id, protocol_error(ErrorCode.INVALID_REQUEST,
                                                  'Invalid request: `jsonrpc` must be "2.0"'))
    method = message.get("method")
    if method is None:
        if has_id and ("result" in message or "error" in message):
            return Response(request_id, message.get("result"), message.get("error"))
        return Invalid(request_id, protocol_error(ErrorCode.INVALID_REQUEST,
                                                  "Invalid request: missing field `method`"))
    if not isinstance(method, str):
        return Invalid(request_id, protocol_error(ErrorCode.INVALID_REQUEST,
                                                  "Invalid request: `method` must be a string"))
    params = message.get("params")
    if not has_id:
        return Notification(method, params)
    return Request(request_id, method, params)


def encode_result(request_id: RequestId, result: Any) -> bytes:
    """A success response line."""
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "result": result}) + b"\n"


def encode_error(request_id: RequestId, error: MeerkatError) -> bytes:
    """An error response line, coded from the shared error table."""
    data: dict[str, Any] = {"error_code": error.code.value}
    if error.details:
        data["details"] = error.details
    body = {"code": error.spec.jsonrpc_code, "message": error.message, "data": data}
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "error": body}) + b"\n"


def encode_request(request_id: str, method: str, params: dict[str, Any]) -> bytes:
    """A server-to-client request line (``tool/execute``)."""
    return _encoder.encode({"jsonrpc": "2.0", "id": request_id, "method": method, "params": params}) + b"\n"


def encode_event(session_id: str, envelope: EventEnvelope) -> bytes:
    """A ``session/event`` notification line carrying one event envelope."""
    return _encoder.encode({"jsonrpc": "2.0", "method": "session/event",
                            "params": {"session_id": session_id, "event": envelope}}) + b"\n"
