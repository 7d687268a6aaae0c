"""One error table for every surface.

Every failure a user can see is a :class:`MeerkatError` carrying an
:class:`ErrorCode`. The code decides, in one place, what each surface shows:

* the JSON-RPC error code (``rkat-rpc``, matching upstream meerkat 0.9.6),
* the HTTP status (``rkat-rest``),
* the process exit code (``rkat``),
* an MCP tool error naming the code (``rkat-mcp``).

Exception tree::

    MeerkatError
     +-- SessionNotFound        SESSION_NOT_FOUND
     +-- SessionBusy            SESSION_BUSY (names the running turn)
     +-- RequestCancelled       REQUEST_CANCELLED (the turn was interrupted)
     +-- InvalidParams          INVALID_PARAMS (bad input, named field)
     +-- ConfigGenerationConflict  CONFIG_GENERATION_CONFLICT
     +-- ProviderError          PROVIDER_ERROR
     +-- BudgetExhausted        BUDGET_EXHAUSTED
     +-- AgentError             AGENT_ERROR
     +-- StoreError             STORE_ERROR
     +-- StaleCursor            STALE_CURSOR (events after the cursor were pruned)
     +-- InboxFull              INBOX_FULL (too many external events wait)
     +-- InternalError          INTERNAL_ERROR

Storage and provider exceptions are mapped to these at the boundary; nothing
else should leak to a surface.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = [
    "ErrorCode",
    "ErrorSpec",
    "ERROR_TABLE",
    "MeerkatError",
    "SessionNotFound",
    "SessionBusy",
    "RequestCancelled",
    "InvalidParams",
    "RevisionConflict",
    "ConfigGenerationConflict",
    "ProviderError",
    "BudgetExhausted",
    "AgentError",
    "StoreError",
    "InternalError",
    "StaleCursor",
    "InboxFull",
    "error_from_code",
]


class ErrorCode(str, enum.Enum):
    """Stable error codes, named as upstream names them on the wire."""

    SESSION_NOT_FOUND = "SESSION_NOT_FOUND"
    SESSION_BUSY = "SESSION_BUSY"
    SESSION_NOT_RUNNING = "SESSION_NOT_RUNNING"
    DUPLICATE_INPUT = "DUPLICATE_INPUT"
    REQUEST_CANCELLED = "REQUEST_CANCELLED"
    PROVIDER_ERROR = "PROVIDER_ERROR"
    BUDGET_EXHAUSTED = "BUDGET_EXHAUSTED"
    HOOK_DENIED = "HOOK_DENIED"
    AGENT_ERROR = "AGENT_ERROR"
    CAPABILITY_UNAVAILABLE = "CAPABILITY_UNAVAILABLE"
    INVALID_PARAMS = "INVALID_PARAMS"
    CONFIG_GENERATION_CONFLICT = "CONFIG_GENERATION_CONFLICT"
    PARSE_ERROR = "PARSE_ERROR"
    INVALID_REQUEST = "INVALID_REQUEST"
    METHOD_NOT_FOUND = "METHOD_NOT_FOUND"
    #: A REST path no route serves (an unknown RPC method is METHOD_NOT_FOUND).
    NOT_FOUND = "NOT_FOUND"
    METHOD_NOT_ALLOWED = "METHOD_NOT_ALLOWED"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    UNSUPPORTED_MEDIA_TYPE = "UNSUPPORTED_MEDIA_TYPE"
    UNAUTHORIZED = "UNAUTHORIZED"
    STORE_ERROR = "STORE_ERROR"
    INTERNAL_ERROR = "INTERNAL_ERROR"
    STALE_CURSOR = "STALE_CURSOR"
    INBOX_FULL = "INBOX_FULL"
    INPUT_IDEMPOTENCY_CONFLICT = "INPUT_IDEMPOTENCY_CONFLICT"
    DUPLICATE_REQUEST_ID = "DUPLICATE_REQUEST_ID"


@dataclass(frozen=True, slots=True)
class ErrorSpec:
    """How one error code appears on each surface."""

    jsonrpc_code: int
    http_status: int
    exit_code: int


#: The table. JSON-RPC codes follow upstream ``meerkat-contracts``; a generation
#: conflict is -32602 there (the published SDK sees ``"-32602"``), which we keep.
#: Exit codes: busy 11, cancelled 14, provider 20, budget 21 as upstream documents;
#: the rest fill the same scheme (1x session, 2x run, 1 generic, 2 usage).
ERROR_TABLE: dict[ErrorCode, ErrorSpec] = {
    ErrorCode.SESSION_NOT_FOUND: ErrorSpec(-32001, 404, 10),
    ErrorCode.SESSION_BUSY: ErrorSpec(-32002, 409, 11),
    ErrorCode.SESSION_NOT_RUNNING: ErrorSpec(-32003, 409, 12),
    ErrorCode.DUPLICATE_INPUT: ErrorSpec(-32004, 409, 13),
    ErrorCode.REQUEST_CANCELLED: ErrorSpec(-32005, 499, 14),
    ErrorCode.PROVIDER_ERROR: ErrorSpec(-32010, 502, 20),
    ErrorCode.BUDGET_EXHAUSTED: ErrorSpec(-32011, 429, 21),
    ErrorCode.HOOK_DENIED: ErrorSpec(-32012, 403, 22),
    ErrorCode.AGENT_ERROR: ErrorSpec(-32013, 500, 23),
    ErrorCode.CAPABILITY_UNAVAILABLE: ErrorSpec(-32020, 501, 24),
    ErrorCode.INVALID_PARAMS: ErrorSpec(-32602, 400, 2),
    ErrorCode.CONFIG_GENERATION_CONFLICT: ErrorSpec(-32602, 409, 15),
    ErrorCode.PARSE_ERROR: ErrorSpec(-32700, 400, 2),
    ErrorCode.INVALID_REQUEST: ErrorSpec(-32600, 400, 2),
    ErrorCode.METHOD_NOT_FOUND: ErrorSpec(-32601, 404, 2),
    ErrorCode.NOT_FOUND: ErrorSpec(-32601, 404, 2),
    ErrorCode.METHOD_NOT_ALLOWED: ErrorSpec(-32601, 405, 2),
    ErrorCode.PAYLOAD_TOO_LARGE: ErrorSpec(-32600, 413, 2),
    ErrorCode.UNSUPPORTED_MEDIA_TYPE: ErrorSpec(-32600, 415, 2),
    ErrorCode.UNAUTHORIZED: ErrorSpec(-32600, 401, 3),
    ErrorCode.STORE_ERROR: ErrorSpec(-32603, 500, 1),
    ErrorCode.INTERNAL_ERROR: ErrorSpec(-32603, 500, 1),
    # Upstream's multi-host code; the published SDK raises StaleCursorError for it.
    ErrorCode.STALE_CURSOR: ErrorSpec(-32027, 410, 16),
    ErrorCode.INBOX_FULL: ErrorSpec(-32002, 429, 17),
    ErrorCode.INPUT_IDEMPOTENCY_CONFLICT: ErrorSpec(-32004, 409, 13),
    # REST: an X-Meerkat-Request-Id already in flight (upstream's code for it).
    ErrorCode.DUPLICATE_REQUEST_ID: ErrorSpec(-32004, 409, 13),
}


class MeerkatError(Exception):
    """Base of every error a surface may show. ``code`` picks the row of the table."""

    code: ErrorCode = ErrorCode.INTERNAL_ERROR

    def __init__(self, message: str, *, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or {}

    @property
    def spec(self) -> ErrorSpec:
        """This error's row of :data:`ERROR_TABLE`."""
        return ERROR_TABLE[self.code]

    def to_dict(self) -> dict[str, Any]:
        """The ``{error, code, details?}`` body used by REST and MCP."""
        body: dict[str, Any] = {"error": self.message, "code": self.code.value}
        if self.details:
            body["details"] = self.details
        return body

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"


class SessionNotFound(MeerkatError):
    """No live session with this id in the realm (unknown or archived)."""

    code = ErrorCode.SESSION_NOT_FOUND

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session not found: {session_id}", details={"session_id": session_id})
        self.session_id = session_id


class SessionBusy(MeerkatError):
    """A turn is already running on the session; ``running_run_id`` names it."""

    code = ErrorCode.SESSION_BUSY

    def __init__(self, session_id: str, running_run_id: str) -> None:
        super().__init__(
            f"Session {session_id} is busy: turn {running_run_id} is running",
            details={"session_id": session_id, "running_run_id": running_run_id},
        )
        self.session_id = session_id
        self.running_run_id = running_run_id


class RequestCancelled(MeerkatError):
    """The turn this request started was interrupted."""

    code = ErrorCode.REQUEST_CANCELLED


class InvalidParams(MeerkatError):
    """The request was malformed; the message names the bad field."""

    code = ErrorCode.INVALID_PARAMS


class RevisionConflict(InvalidParams):
    """A history write named another transcript revision than the session's head (compare-and-set)."""

    def __init__(self, session_id: str, expected: str, current: str) -> None:
        super().__init__(
            f"transcript revision conflict on session {session_id}: expected head {expected}, current head {current}",
            details={"session_id": session_id, "expected_revision": expected, "current_revision": current},
        )


class ConfigGenerationConflict(MeerkatError):
    """A compare-and-swap config write saw another generation than expected."""

    code = ErrorCode.CONFIG_GENERATION_CONFLICT

    def __init__(self, expected: int, current: int) -> None:
        super().__init__(
            f"Generation conflict: expected {expected}, current {current}",
            details={"expected_generation": expected, "current_generation": current},
        )
        self.expected = expected
        self.current = current


class ProviderError(MeerkatError):
    """The model provider failed or could not be used (missing key, bad model...)."""

    code = ErrorCode.PROVIDER_ERROR


class BudgetExhausted(MeerkatError):
    """The session's token budget is used up."""

    code = ErrorCode.BUDGET_EXHAUSTED


class AgentError(MeerkatError):
    """The agent could not finish the run (turn limit, unknown tool, ...)."""

    code = ErrorCode.AGENT_ERROR


class StoreError(MeerkatError):
    """The session store failed (disk, database); nothing committed was damaged."""

    code = ErrorCode.STORE_ERROR


class LeaseLost(StoreError):
    """A run's lease expired and another process closed the run; its late commit was refused."""

    def __init__(self, session_id: str, run_id: str) -> None:
        super().__init__(
            f"run {run_id} of session {session_id} lost its lease: another process closed it as interrupted "
            "because this one stopped renewing it in time; nothing of the run was committed",
            details={"session_id": session_id, "run_id": run_id},
        )


class InternalError(MeerkatError):
    """A bug or an unexpected failure inside the host."""

    code = ErrorCode.INTERNAL_ERROR


class StaleCursor(MeerkatError):
    """The events after a cursor were pruned from the log; ``watermark`` is the oldest resumable cursor."""

    code = ErrorCode.STALE_CURSOR

    def __init__(self, session_id: str, requested: int, watermark: int) -> None:
        super().__init__(
            f"cursor {requested} of session {session_id} is stale: events up to {watermark} were pruned "
            f"by the event log's retention; resume from {watermark} or later",
            details={"requested": requested, "watermark": watermark},
        )


class InboxFull(MeerkatError):
    """The session's inbox of queued external events is full."""

    code = ErrorCode.INBOX_FULL

    def __init__(self, session_id: str, capacity: int) -> None:
        super().__init__(
            f"session {session_id} has {capacity} external events waiting (its inbox capacity); "
            "retry after it has processed some",
            details={"session_id": session_id, "capacity": capacity},
        )


_CLASSES: dict[ErrorCode, type[MeerkatError]] = {
    cls.code: cls
    for cls in (RequestCancelled, InvalidParams, ProviderError, BudgetExhausted, AgentError, StoreError, InternalError)
}


#: Classes whose constructor takes typed fields; rebuilt from the message and details instead.
_REBUILT: dict[ErrorCode, tuple[type[MeerkatError], dict[str, str]]] = {
    ErrorCode.SESSION_NOT_FOUND: (SessionNotFound, {"session_id": "session_id"}),
    ErrorCode.SESSION_BUSY: (SessionBusy, {"session_id": "session_id", "running_run_id": "running_run_id"}),
    ErrorCode.CONFIG_GENERATION_CONFLICT: (ConfigGenerationConflict,
                                           {"expected": "expected_generation", "current": "current_generation"}),
}


def error_from_code(code: ErrorCode | str, message: str, details: dict[str, Any] | None = None) -> MeerkatError:
    """Build an error of the right class from a code and a message (used across process lines).

    ``SessionNotFound``, ``SessionBusy`` and ``ConfigGenerationConflict`` come back
    as themselves, their fields taken from ``details`` (None where missing), so a
    client on the far side of a wire can ``except`` the same classes.
    """
    code = ErrorCode(code)
    cls = _CLASSES.get(code)
    if cls is not None:
        return cls(message, details=details)
    rebuilt = _REBUILT.get(code)
    if rebuilt is not None:
        kind, fields = rebuilt
        err = kind.__new__(kind)
        MeerkatError.__init__(err, message, details=details)
        for attribute, key in fields.items():
            setattr(err, attribute, (details or {}).get(key))
        return err
    err = MeerkatError(message, details=details)
    err.code = code
    return err
