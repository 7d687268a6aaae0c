"""Responses: JSON bodies, and every error as ``{error, code, details?}``.

The status of an error comes from the shared table (``meerkat.errors.ERROR_TABLE``),
never from this module. Rejections that Quart/werkzeug raise before a handler runs
(no route, a too-large body) are mapped onto the same table, so a client sees one
error shape whatever went wrong: an unknown route is NOT_FOUND (404), a
known route asked with another method METHOD_NOT_ALLOWED (405, with ``Allow``).
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec
from quart import Response
from werkzeug.exceptions import HTTPException

from meerkat.errors import ErrorCode, MeerkatError, error_from_code

__all__ = ["JSON_TYPE", "json_response", "error_response", "http_error_response", "internal_error_response"]

log = logging.getLogger("rkat.rest")

JSON_TYPE = "application/json"
_encoder = msgspec.json.Encoder()


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` encoded as compact JSON."""
    return Response(_encoder.encode(body), status=status, content_type=JSON_TYPE, headers=headers)


#: Server-side failures whose messages may name files or Python exceptions: the client
#: gets the code and a fixed sentence, the operator the whole message in the log.
_LOGGED_NOT_SENT = {
    ErrorCode.INTERNAL_ERROR: "internal error (the details are in the server log)",
    ErrorCode.STORE_ERROR: "the session store failed (the details are in the server log)",
}


def error_response(error: MeerkatError, headers: dict[str, str] | None = None) -> Response:
    """The error's JSON body with its table status (server-side failures without their internals)."""
    generic = _LOGGED_NOT_SENT.get(error.code)
    if generic is not None:
        log.error("%s: %s", error.code.value, error.message)
        error = error_from_code(error.code, generic)
    return json_response(error.to_dict(), error.spec.http_status, headers)


_HTTP_CODES = {
    404: ErrorCode.NOT_FOUND,
    405: ErrorCode.METHOD_NOT_ALLOWED,
    413: ErrorCode.PAYLOAD_TOO_LARGE,
    415: ErrorCode.UNSUPPORTED_MEDIA_TYPE,
}


def http_error_response(exc: HTTPException, method: str, path: str, max_body_bytes: int | None) -> Response:
    """A werkzeug rejection (raised before or around a handler) as a JSON error."""
    status = exc.code or 500
    code = _HTTP_CODES.get(status, ErrorCode.INVALID_REQUEST if status < 500 else ErrorCode.INTERNAL_ERROR)
    headers: dict[str, str] = {}
    if status == 404:
        message = f"no route for {method} {path}"
    elif status == 405:
        allowed = sorted(getattr(exc, "valid_methods", None) or [])
        message = f"method {method} is not allowed on {path}" + (f" (allowed: {', '.join(allowed)})" if allowed else "")
        headers["Allow"] = ", ".join(allowed)
    elif status == 413:
        message = "request body too large" + (f": the limit is {max_body_bytes} bytes" if max_body_bytes else "")
        # The rest of the body was never read: the connection cannot carry another request.
        headers["Connection"] = "close"
    else:
        message = exc.description or exc.name
    return error_response(error_from_code(code, message), headers)


def internal_error_response(exc: BaseException, method: str, path: str) -> Response:
    """An unexpected failure: logged with its traceback, answered without internals."""
    log.error("unhandled error on %s %s", method, path, exc_info=exc)
    error = error_from_code(ErrorCode.INTERNAL_ERROR, f"internal error: {type(exc).__name__}")
    return error_response(error)
