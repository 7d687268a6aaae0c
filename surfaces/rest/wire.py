"""The REST shapes where they differ from the RPC shapes the views produce.

Upstream's REST read gives RFC 3339 timestamps (``+00:00``), while its list keeps
Unix seconds; both leave ``labels`` out when there are none. Everything else is
the views' own ``to_wire()``.
"""

from __future__ import annotations

from typing import Any

from meerkat.transcript import rfc3339_from_ms
from meerkat.views import SessionSummary, SessionView

__all__ = ["session_read", "session_list"]


def _without_empty_labels(body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("labels"):
        body.pop("labels", None)
    return body


def session_read(view: SessionView) -> dict[str, Any]:
    """``GET /sessions/{id}``: timestamps as RFC 3339 strings."""
    body = view.to_wire()
    body["created_at"] = rfc3339_from_ms(view.created_at_ms)
    body["updated_at"] = rfc3339_from_ms(view.updated_at_ms)
    return _without_empty_labels(body)


def session_list(summaries: list[SessionSummary]) -> dict[str, Any]:
    """``GET /sessions``: ``{"sessions": [...]}`` with Unix-second timestamps."""
    return {"sessions": [_without_empty_labels(s.to_wire()) for s in summaries]}
