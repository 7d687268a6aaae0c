"""Small helpers shared by the store backends: label filters and paging."""

from __future__ import annotations

import bisect
from typing import TYPE_CHECKING, Sequence, TypeVar

if TYPE_CHECKING:
    from ..events import EventEnvelope
    from .eventlog import EventPage

__all__ = ["labels_match", "page", "read_log"]

T = TypeVar("T")


def labels_match(labels: dict[str, str], wanted: dict[str, str] | None) -> bool:
    """True when ``labels`` contains every pair of ``wanted``."""
    if not wanted:
        return True
    return all(labels.get(k) == v for k, v in wanted.items())


def page(items: Sequence[T], offset: int, limit: int | None) -> list[T]:
    """``items[offset:offset+limit]`` (all remaining when ``limit`` is None)."""
    end = None if limit is None else offset + limit
    return list(items[offset:end])


def read_log(log: Sequence["EventEnvelope"], floor: int, after_seq: int, limit: int) -> "EventPage":
    """A page of an in-memory event log (sorted by seq) after ``after_seq``."""
    from .eventlog import EventPage

    start = bisect.bisect_right(log, after_seq, key=lambda e: e.seq)
    events = list(log[start:start + limit])
    return EventPage(events=events, floor=floor, latest=log[-1].seq if log else 0,
                     has_more=start + limit < len(log))
