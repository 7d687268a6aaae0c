"""Typed messages the actors accept. Each carries its one-shot reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from meerkat.observability import incoming_trace_context
from meerkat.store.eventlog import InputRecord
from meerkat.views import InterruptResult, RunResult, SessionView

from .bus import Subscription
from .mailbox import Reply

__all__ = [
    "TurnRequest",
    "StartTurn",
    "Interrupt",
    "Archive",
    "Subscribe",
    "Read",
    "InjectContext",
    "QueueExternalEvent",
    "StopRun",
    "SessionMessage",
]


@dataclass(frozen=True, slots=True)
class TurnRequest:
    """One user input and its per-turn overrides."""

    prompt: str | list[dict[str, Any]]
    model: str | None = None
    provider: str | None = None
    system_prompt: str | None = None
    max_tokens: int | None = None
    provider_params: dict[str, Any] | None = None
    #: Extra system instructions for this turn only (never stored).
    additional_instructions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class StartTurn:
    """Run a turn. ``accepted`` answers at once (run id and, if asked, a subscription
    to this run's events); ``done`` answers when the run ends."""

    request: TurnRequest
    stream: bool
    accepted: Reply[tuple[str, Subscription | None]] = field(default_factory=Reply)
    done: Reply[RunResult] = field(default_factory=Reply)
    #: The trace context of the request that asked (taken from the asking task), for tracing.
    trace_context: Any = field(default_factory=incoming_trace_context)


@dataclass(frozen=True, slots=True)
class Interrupt:
    """Cancel the running turn (a no-op when idle); answers once the run has ended."""

    reply: Reply[InterruptResult] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class Archive:
    """Hide the session; a running turn finishes first, then the actor retires."""

    reply: Reply[bool] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class Subscribe:
    """Attach a subscriber, live or resuming after ``after_seq``."""

    after_seq: int | None = None
    reply: Reply[Subscription] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class Read:
    """The session as it is now, running state included."""

    reply: Reply[SessionView] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class InjectContext:
    """Append a durable system row the model sees from its next call on; answers the input
    already stored under the same idempotency key instead, or None when this one was applied."""

    record: InputRecord
    reply: Reply[InputRecord | None] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class QueueExternalEvent:
    """Queue an external event as input; it runs as a turn once the session is free."""

    record: InputRecord
    reply: Reply[InputRecord | None] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class StopRun:
    """Stop run ``run_id`` if it is the session's current run (in any process)."""

    run_id: str
    reason: str
    reply: Reply[dict[str, Any]] = field(default_factory=Reply)


SessionMessage = StartTurn | Interrupt | Archive | Subscribe | Read | InjectContext | QueueExternalEvent | StopRun


# -- realm supervisor ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CreateParams:
    """Settings of a new session."""

    model: str | None = None
    provider: str | None = None
    system_prompt: str | None = None
    max_tokens: int | None = None
    provider_params: dict[str, Any] | None = None
    labels: dict[str, str] | None = None
    budget_max_tokens: int | None = None
    #: A turn follows at once: a provider that cannot run (no API key) fails the create
    #: instead of leaving an empty session behind.
    first_turn: bool = False


@dataclass(frozen=True, slots=True)
class CreateSession:
    """Create a session (no turn yet); answers with its stored record."""

    params: CreateParams
    reply: Reply[Any] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class ListSessions:
    """A page of live sessions, most recently updated first."""

    limit: int
    offset: int
    labels: dict[str, str] | None = None
    reply: Reply[Any] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class GetConfig:
    """The realm's config document and generation."""

    reply: Reply[Any] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class SetConfig:
    """Replace the config (compare-and-swap when ``expected_generation`` is given)."""

    config: Any
    expected_generation: int | None = None
    reply: Reply[Any] = field(default_factory=Reply)


@dataclass(frozen=True, slots=True)
class PatchConfig:
    """RFC 7396 merge-patch the config (compare-and-swap when ``expected_generation`` is given)."""

    patch: Any
    expected_generation: int | None = None
    reply: Reply[Any] = field(default_factory=Reply)


RealmMessage = CreateSession | ListSessions | GetConfig | SetConfig | PatchConfig
