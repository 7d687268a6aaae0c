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

__all__ = ["decode_json", "json_parse_error", "number_out_of_range"]

_decoder = msgspec.json.Decoder()
#: JSON has numbers, not ints and floats: ``770.0`` is the integer 770 to JSON Schema (so to the OpenAPI
#: document), and to this decoder; a field that takes an integer would otherwise refuse it.
_INT_RANGE = float(1 << 63)


def _integral_as_int(literal: str) -> int | float:
    value = float(literal)
    return int(value) if value.is_integer() and abs(value) < _INT_RANGE else value


_integral_decoder = msgspec.json.Decoder(float_hook=_integral_as_int)


def json_parse_error(exc: Exception, what: str = "Parse error") -> MeerkatError:
    """The PARSE_ERROR for a decoding failure of :func:`msgspec.json.decode`, as ``"<what>: <reason>"``."""
    if isinstance(exc, UnicodeDecodeError):
        reason = "a string is not UTF-8"  # exc.start counts within that string, not the body
    elif isinstance(exc, RecursionError):
        reason = "nested too deeply"
    else:
        reason = str(exc)
    return error_from_code(ErrorCode.PARSE_ERROR, f"{what}: {reason}")


def number_out_of_range(exc: Exception) -> MeerkatError | None:
    """INVALID_PARAMS when ``exc`` is msgspec refusing a number of valid JSON as out of its range (a
    5,000-digit integer, ``1e400``): the document is well formed, one value is not usable."""
    if not isinstance(exc, msgspec.DecodeError) or " out of range" not in str(exc):
        return None
    where = str(exc).partition(" - at ")[2]  # msgspec's "Integer value out of range - at `$[...]`"
    return error_from_code(ErrorCode.INVALID_PARAMS, f"a number is out of range (at {where or 'the document'})")


def decode_json(data: bytes | str, what: str = "Parse error", *, integral_floats_as_int: bool = False) -> Any:
    """The JSON value in ``data``; raises PARSE_ERROR (a :class:`MeerkatError`) if there is none.

    With ``integral_floats_as_int``, a number written with a fraction or exponent that is a whole
    number (``770.0``, ``1e3``) decodes as an int, as JSON Schema counts it.
    """
    try:
        return (_integral_decoder if integral_floats_as_int else _decoder).decode(data)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise (number_out_of_range(exc) or json_parse_error(exc, what)) from None
