"""The durable event log and the session inputs: the types every backend shares.

Event log: every event a session's run publishes is written with the run's
commit (one transaction, not one write per event), under its ``seq``. Text
deltas are kept one by one, never coalesced: ``list_since`` returns exactly
what a live subscriber saw (minus the per-subscriber ``stream_truncated``
markers, which are never logged). Events of a run that has not committed yet
are not in the log; a run that never commits (its process was killed) leaves
no events, and numbering jumps past them (see ``CRASH_SEQ_GAP``).

Retention: each session keeps its newest ``event_retention`` events (default
:data:`DEFAULT_EVENT_RETENTION`; realm config ``[events] retention``). Older
ones are pruned in batches inside a commit, and the session remembers the
highest pruned seq (its *floor*): a cursor below the floor is stale, since
events after it are gone (:class:`~meerkat.errors.StaleCursor`, HTTP 410).

Inputs: context injected into a session (``session/inject_context``) and
external events queued for it (``session/external_event``), each an
:class:`InputRecord` looked up by id or idempotency key.
"""

from __future__ import annotations

import hashlib
from typing import Any, Literal

import msgspec

from ..events import EventEnvelope

__all__ = [
    "DEFAULT_EVENT_RETENTION",
    "DEFAULT_INBOX_CAPACITY",
    "EventPage",
    "InputKind",
    "InputState",
    "InputRecord",
    "prune_cutoff",
    "input_fingerprint",
]

#: Events kept per session when the realm config does not say.
DEFAULT_EVENT_RETENTION = 10_000
#: External events that may wait for a session at once.
DEFAULT_INBOX_CAPACITY = 64

InputKind = Literal["inject_context", "external_event"]
#: ``applied``: the injected row is in the transcript. ``queued``: an external
#: event waits for its turn. ``consumed``: a run took it (``run_id``).
#: ``abandoned``: its run failed or was interrupted before using it.
InputState = Literal["applied", "queued", "consumed", "abandoned"]


class EventPage(msgspec.Struct, frozen=True, kw_only=True):
    """Events of one session after a cursor, oldest first."""

    events: list[EventEnvelope]
    #: The highest seq pruned by retention (0: nothing pruned yet).
    floor: int
    #: The seq of the newest event in the log (0: none yet).
    latest: int
    #: More events follow the last one returned (the page hit its limit).
    has_more: bool


class InputRecord(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One input admitted to a session, durable, found again by id or idempotency key."""

    input_id: str
    session_id: str
    kind: InputKind
    state: InputState
    created_at_ms: int
    updated_at_ms: int
    idempotency_key: str | None = None
    #: A digest of the content, to tell a retry (same content) from a conflict.
    fingerprint: str = ""
    source: str | None = None
    text: str | None = None
    event_type: str | None = None
    payload: Any = None
    blocks: list[dict[str, Any]] | None = None
    #: The run that consumed it.
    run_id: str | None = None
    #: The session's last event seq when it was applied or consumed.
    boundary_seq: int | None = None


def input_fingerprint(*parts: Any) -> str:
    """A stable digest of an input's content (object key order does not matter)."""
    blob = msgspec.json.encode(parts, order="sorted")
    return hashlib.sha256(blob).hexdigest()[:32]


def prune_cutoff(retained: int, retention: int) -> int:
    """How many of the oldest ``retained`` events to prune now (0: not yet).

    Pruning waits until the log is a little over its retention (1/64 of it, at
    least 64 events), so the delete runs once per several commits rather than on
    each one, yet stays small: one big delete inside a commit was the p99 of
    the turn (``bench/event_log.py``).
    """
    if retained <= retention + max(64, retention // 64):
        return 0
    return retained - retention
