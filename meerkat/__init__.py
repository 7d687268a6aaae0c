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

#: The SDK's names, imported on first use (``from meerkat import MeerkatClient``), so that
#: ``import meerkat`` (and the ``rkat`` CLI) never pays for the SDK and anyio.
_SDK_NAMES = frozenset({"MeerkatClient", "Session", "EventStream", "UnknownEvent", "ToolCallDedupeKey",
                        "Capability", "SessionInfo", "SessionDetails", "ClientError", "BinaryNotFound",
                        "ConnectionClosed", "ClientClosed", "ProtocolError", "VersionMismatch",
                        "StreamNotConsumed"})
#: Event classes, for ``match event: case TextDelta(delta=chunk)``.
_EVENT_NAMES = frozenset({"RunStarted", "TurnStarted", "ReasoningDelta", "ReasoningComplete", "TextDelta",
                          "TextComplete", "ToolCallRequested", "ToolExecutionStarted", "ToolExecutionCompleted",
                          "ToolResultReceived", "TurnCompleted", "RunCompleted", "RunFailed", "BudgetWarning",
                          "StreamTruncated", "TurnUsageAccountingUnmeasured"})


def __getattr__(name: str) -> object:
    if name in _SDK_NAMES:
        from . import client

        return getattr(client, name)
    if name in _EVENT_NAMES:
        from . import events

        return getattr(events, name)
    raise AttributeError(f"module 'meerkat' has no attribute {name!r}")


__all__ = ["ErrorCode", "MeerkatError", "AgentEvent", "EventEnvelope", "HistoryPage", "InterruptResult",
           "RunResult", "SessionSummary", "SessionView", "__version__", *sorted(_SDK_NAMES), *sorted(_EVENT_NAMES)]
