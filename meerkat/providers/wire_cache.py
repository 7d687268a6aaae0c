"""Request bodies whose cost does not grow with the history already sent.

A session's transcript only grows, and every model call sends all of it again.
Converting the whole transcript to the vendor's JSON on each call (and letting
an SDK walk it through its type annotations) makes a turn at row 1,000 cost
ten times a turn at row 20, all of it on the event loop. Instead, each live
session keeps a :class:`WireCache`: per vendor format, the JSON bytes of the
turns already encoded (:class:`EncodedHistory`). A call encodes only the rows
added since, and the body is spliced from the cached bytes and a small head
(:func:`splice_body`).

The bytes are exactly what the vendor's SDK would send for the same body
(``json.dumps`` with ``ensure_ascii=False`` and compact separators, keys in the
SDK's order), so prompt caching at the vendor sees a stable prefix; the tests
compare them with the SDK's own serialization.

Rows are immutable and a session's history is only ever appended to, so the
cache checks in O(1) that a request extends what it encoded (same row objects
at the same places); anything else (a reload from the store, another
process's commit, a history that was cut) rebuilds from scratch. The last turn
stays open, since the next rows may merge into it (tool results and a new
prompt are one user turn), and is re-encoded on each call.

A long encode (a cold session's first call) runs in a worker thread, so it
never stalls the other sessions of the process.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, Callable, Sequence

import trio

from ..transcript import Message
from .wire import Turn, conversation

__all__ = ["WireCache", "EncodedHistory", "RowTally", "dumps", "encode_history", "splice_body", "ordered",
           "THREAD_THRESHOLD_ROWS"]

#: Encodes one turn as comma-separated JSON items (b"" when the turn sends nothing).
TurnEncoder = Callable[[Turn], bytes]

#: Rows to convert above which the conversion runs in a worker thread.
THREAD_THRESHOLD_ROWS = 64

#: Stands in for the history in a body's head until the cached bytes are spliced in.
_MARKER = f"rkat-history-{uuid.uuid4().hex}"
_MARKER_JSON = json.dumps(_MARKER).encode()


def dumps(value: Any) -> bytes:
    """JSON bytes as the OpenAI/Anthropic SDKs and httpx2 serialize request bodies."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def items_json(items: list[Any]) -> bytes:
    """A list's items as comma-separated JSON (its encoding without the brackets)."""
    return dumps(items)[1:-1] if items else b""


class EncodedHistory:
    """One session's transcript in one vendor format, encoded up to the open last turn."""

    __slots__ = ("_closed", "_closed_rows", "_seen", "_anchor", "_first", "_tool_names", "_turn_encoder")

    def __init__(self) -> None:
        self._turn_encoder: TurnEncoder | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything encoded."""
        self._closed = bytearray()  # closed turns' items, comma-separated
        self._closed_rows = 0  # rows that made the closed turns
        self._seen = 0  # rows looked at by the last call
        self._anchor: Message | None = None  # the last of them
        self._first: Message | None = None
        self._tool_names: dict[str, str] = {}

    def _extends(self, messages: Sequence[Message]) -> bool:
        if self._seen == 0:
            return True
        return (len(messages) >= self._seen and messages[self._seen - 1] is self._anchor
                and messages[0] is self._first)

    def pending_rows(self, messages: Sequence[Message]) -> int:
        """How many rows a call with ``messages`` would convert."""
        return len(messages) - (self._closed_rows if self._extends(messages) else 0)

    def encode(self, messages: Sequence[Message], encode_turn: TurnEncoder) -> list[bytes | bytearray]:
        """The JSON items of ``messages`` as pieces to join with commas, converting only rows not seen before.

        The pieces are the cache's own buffer and the open turn: joined once, into
        the body (:func:`splice_body`), so a long history is copied once per call.
        """
        if encode_turn is not self._turn_encoder or not self._extends(messages):
            self.reset()
            self._turn_encoder = encode_turn
        starts: list[int] = []
        turns = conversation(messages[self._closed_rows:], self._tool_names, starts)
        # Encode everything before changing any state: a failure leaves the cache as it was.
        closed = [fragment for fragment in map(encode_turn, turns[:-1]) if fragment]
        last = encode_turn(turns[-1]) if turns else b""
        for fragment in closed:
            if self._closed:
                self._closed += b","
            self._closed += fragment
        if len(turns) > 1:
            self._closed_rows += starts[-1]
        self._seen = len(messages)
        self._anchor = messages[-1] if messages else None
        self._first = messages[0] if messages else None
        return [piece for piece in (self._closed, last) if piece]


class WireCache:
    """Per live session: its :class:`EncodedHistory` in each vendor format used so far."""

    __slots__ = ("_forms", "_tallies")

    def __init__(self) -> None:
        self._forms: dict[str, EncodedHistory] = {}
        self._tallies: dict[str, RowTally] = {}

    def history(self, wire_format: str) -> EncodedHistory:
        """The encoded history in ``wire_format`` (created empty on first use)."""
        form = self._forms.get(wire_format)
        if form is None:
            form = self._forms[wire_format] = EncodedHistory()
        return form

    def tally(self, name: str) -> "RowTally":
        """A running sum over the rows (the mock's word count), created empty on first use."""
        tally = self._tallies.get(name)
        if tally is None:
            tally = self._tallies[name] = RowTally()
        return tally

    def clear(self) -> None:
        """Forget every encoded form (the history changed in a way we did not see)."""
        self._forms.clear()
        self._tallies.clear()


class RowTally:
    """A sum of a per-row measure over a growing history, adding only rows not counted before."""

    __slots__ = ("_seen", "_anchor", "_first", "_total")

    def __init__(self) -> None:
        self._seen, self._total = 0, 0
        self._anchor: Message | None = None
        self._first: Message | None = None

    def pending_rows(self, messages: Sequence[Message]) -> int:
        """How many rows :meth:`total` would measure."""
        extends = self._seen and len(messages) >= self._seen and messages[self._seen - 1] is self._anchor \
            and messages[0] is self._first
        return len(messages) - (self._seen if extends else 0)

    def total(self, messages: Sequence[Message], measure: Callable[[Message], int]) -> int:
        """The sum of ``measure`` over ``messages``."""
        start = len(messages) - self.pending_rows(messages)
        if start == 0:
            self._total = 0
        self._total += sum(measure(m) for m in messages[start:])
        self._seen = len(messages)
        self._anchor = messages[-1] if messages else None
        self._first = messages[0] if messages else None
        return self._total


async def encode_history(cache: WireCache | None, wire_format: str, messages: Sequence[Message],
                         encode_turn: TurnEncoder) -> list[bytes | bytearray]:
    """The history's JSON items (pieces, see :meth:`EncodedHistory.encode`), from ``cache`` when given;
    long conversions run in a worker thread."""
    form = cache.history(wire_format) if cache is not None else EncodedHistory()
    if form.pending_rows(messages) > THREAD_THRESHOLD_ROWS:
        return await trio.to_thread.run_sync(form.encode, messages, encode_turn)
    return form.encode(messages, encode_turn)


def ordered(body: dict[str, Any], order: Sequence[str]) -> dict[str, Any]:
    """``body`` with its keys in ``order`` (the order an SDK builds its request in); others follow."""
    head = {key: body[key] for key in order if key in body}
    head.update((key, value) for key, value in body.items() if key not in head)
    return head


def history_marker() -> str:
    """The placeholder to put where the history goes in a body given to :func:`splice_body`."""
    return _MARKER


def splice_body(body: dict[str, Any], history: Sequence[bytes | bytearray]) -> bytes:
    """``body`` as JSON bytes, its :func:`history_marker` value replaced by the list of the ``history`` pieces."""
    head, tail = dumps(body).split(_MARKER_JSON, 1)
    parts: list[bytes | bytearray] = [head, b"["]
    for index, piece in enumerate(history):
        if index:
            parts.append(b",")
        parts.append(piece)
    parts += [b"]", tail]
    return b"".join(parts)
