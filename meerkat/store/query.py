"""Small helpers shared by the store backends: label filters and paging."""

from __future__ import annotations

from typing import Sequence, TypeVar

__all__ = ["labels_match", "page"]

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
