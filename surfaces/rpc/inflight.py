"""What a request in flight is working on, so the ``cancel`` notification can stop it.

The connection sets :data:`CURRENT` for each request's task; a method that learns
which session its turn runs on (``session/create`` once the session exists,
``turn/start`` from its params) notes it here, and cancelling the request then
interrupts that turn (its partial answer kept) instead of abandoning the wait.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

__all__ = ["InFlight", "CURRENT", "note_session"]


@dataclass
class InFlight:
    """One request being answered: the session whose turn it waits on, once known."""

    method: str
    session_id: str | None = None
    #: A ``cancel`` came before the session was known: interrupt it as soon as it is.
    cancel_requested: bool = False


#: The request the current task answers (None outside a request).
CURRENT: ContextVar[InFlight | None] = ContextVar("rkat_rpc_request", default=None)


def note_session(session_id: str) -> bool:
    """The current request's turn runs on ``session_id``; True if the request was cancelled meanwhile."""
    current = CURRENT.get()
    if current is None:
        return False
    current.session_id = session_id
    return current.cancel_requested
