"""What the SDK's calls return, decoded from the wire.

Run results and history pages are the host's own types (:class:`meerkat.RunResult`,
:class:`meerkat.HistoryPage` with :mod:`meerkat.transcript` rows), so code written
against the in-process API reads SDK results the same way. Sessions as listed and
read over the wire (timestamps in Unix seconds) are :class:`SessionInfo` and
:class:`SessionDetails`; handshake capabilities are :class:`Capability`.
"""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec

from meerkat.usage import Usage
from meerkat.views import HistoryPage, RunResult

from ._errors import ProtocolError

__all__ = ["SessionInfo", "SessionDetails", "Capability", "decode", "decode_run_result", "HistoryPage", "RunResult"]

T = TypeVar("T")


class SessionInfo(msgspec.Struct, frozen=True, kw_only=True):
    """A session as ``list_sessions`` shows it; times are Unix seconds."""

    session_id: str
    created_at: int
    updated_at: int
    message_count: int
    total_tokens: int
    is_active: bool
    labels: dict[str, str] = {}
    session_ref: str | None = None


class SessionDetails(SessionInfo, frozen=True, kw_only=True):
    """A session as ``read_session`` shows it: also its model, provider, usage and last answer."""

    model: str
    provider: str
    last_assistant_text: str | None = None
    usage: Usage = Usage()


class Capability(msgspec.Struct, frozen=True, kw_only=True):
    """One entry of the server's ``capabilities/get``."""

    id: str
    description: str
    status: str | dict[str, Any]

    @property
    def status_name(self) -> str:
        """``"Available"``, or the kind of unavailability (``"NotCompiled"``, ``"DisabledByPolicy"``...)."""
        return self.status if isinstance(self.status, str) else next(iter(self.status), "")

    @property
    def available(self) -> bool:
        """True when the server offers this capability."""
        return self.status_name == "Available"


def decode(value: Any, kind: type[T], what: str) -> T:
    """``value`` as ``kind``; ProtocolError naming ``what`` when the server sent another shape."""
    try:
        return msgspec.convert(value, kind)
    except msgspec.ValidationError as exc:
        raise ProtocolError(f"unexpected {what} from rkat-rpc: {exc}") from None


def decode_run_result(value: Any) -> RunResult:
    """A RunResult; fields only this host sends (``run_id``, ``run_usage``) are optional."""
    if isinstance(value, dict):
        value = {"run_id": None, "run_usage": value.get("usage", {}), **value}
    return decode(value, RunResult, "run result")
