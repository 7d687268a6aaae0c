"""Cancellable turn requests: ``X-Meerkat-Request-Id`` and ``POST /requests/{id}/cancel``.

A ``POST /sessions`` or ``POST /sessions/{id}/messages`` sent with the header can
be cancelled by id from another connection: the turn is interrupted (what was
said so far is committed, as for ``/interrupt``) and the request answers 499
REQUEST_CANCELLED. An empty id is 400; an id already in flight is 409.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Iterator

from meerkat.errors import ErrorCode, InvalidParams, error_from_code

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["CancellableRequests", "TrackedRequest", "HEADER"]

HEADER = "X-Meerkat-Request-Id"
_MAX_ID = 256


@dataclass
class TrackedRequest:
    """One cancellable request: the session its turn runs on (once known), and whether it was cancelled."""

    request_id: str
    session_id: str | None = None
    cancelled: bool = False


class CancellableRequests:
    """The cancellable requests in flight on one server."""

    def __init__(self, service: "SessionService") -> None:
        self._service = service
        self._inflight: dict[str, TrackedRequest] = {}

    @contextmanager
    def track(self, request_id: str | None) -> Iterator[TrackedRequest | None]:
        """Register ``request_id`` (the header's value, None when absent) while the request runs."""
        if request_id is None:
            yield None
            return
        request_id = request_id.strip()
        if not request_id or len(request_id) > _MAX_ID:
            raise InvalidParams(f"{HEADER} must be a non-empty id of at most {_MAX_ID} characters")
        if request_id in self._inflight:
            raise error_from_code(ErrorCode.DUPLICATE_REQUEST_ID, f"request id {request_id!r} is already in flight",
                                  {"request_id": request_id})
        entry = self._inflight[request_id] = TrackedRequest(request_id)
        try:
            yield entry
        finally:
            self._inflight.pop(request_id, None)

    async def bind(self, entry: TrackedRequest | None, session_id: str) -> None:
        """The request's turn runs on ``session_id``; interrupt it at once if a cancel came first."""
        if entry is None:
            return
        entry.session_id = session_id
        if entry.cancelled:
            await self._service.interrupt(session_id)

    async def cancel(self, request_id: str) -> bool:
        """Cancel the request; False when no such request is in flight."""
        entry = self._inflight.get(request_id)
        if entry is None:
            return False
        entry.cancelled = True
        if entry.session_id is not None:
            await self._service.interrupt(entry.session_id)
        return True
