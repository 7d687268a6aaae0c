"""Decoding untrusted JSON from a client, with every failure a PARSE_ERROR that says why.

``msgspec.json.decode`` fails in three ways, not one: ``DecodeError`` for bad
syntax, ``UnicodeDecodeError`` for a string that is not UTF-8, and
``RecursionError`` for nesting deeper than Python's recursion limit. A server
that only catches the first dies (or answers 500) on the other two.
"""

from __future__ import annotations

from typing import Any

import msgspec

from meerkat.errors import ErrorCode, MeerkatError, error_from_code

__all__ = ["decode_json", "json_parse_error"]

_decoder = msgspec.json.Decoder()


def json_parse_error(exc: Exception, what: str = "Parse error") -> MeerkatError:
    """The PARSE_ERROR for a decoding failure of :func:`msgspec.json.decode`, as ``"<what>: <reason>"``."""
    if isinstance(exc, UnicodeDecodeError):
        reason = "a string is not UTF-8"  # exc.start counts within that string, not the body
    elif isinstance(exc, RecursionError):
        reason = "nested too deeply"
    else:
        reason = str(exc)
    return error_from_code(ErrorCode.PARSE_ERROR, f"{what}: {reason}")


def decode_json(data: bytes | str, what: str = "Parse error") -> Any:
    """The JSON value in ``data``; raises PARSE_ERROR (a :class:`MeerkatError`) if there is none."""
    try:
        return _decoder.decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise json_parse_error(exc, what) from None
