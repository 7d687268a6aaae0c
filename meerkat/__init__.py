"""meerkat: the domain of the rkat host, with no actors and no wire formats.

Ids, the shared error table, events and their envelope, the transcript, config,
realms, session stores, model providers and the turn loop. The runtime that hosts
sessions lives in :mod:`actors` (start with :func:`actors.open_service`); the wire
surfaces live in :mod:`surfaces`. Nothing here imports either.
"""

from .errors import (
    ErrorCode as ErrorCode,
    MeerkatError as MeerkatError,
)
from .events import AgentEvent as AgentEvent, EventEnvelope as EventEnvelope
from .views import (
    HistoryPage as HistoryPage,
    InterruptResult as InterruptResult,
    RunResult as RunResult,
    SessionSummary as SessionSummary,
    SessionView as SessionView,
)

__version__ = "0.1.0"

__all__ = ["ErrorCode", "MeerkatError", "AgentEvent", "EventEnvelope", "HistoryPage", "InterruptResult",
           "RunResult", "SessionSummary", "SessionView", "__version__"]
