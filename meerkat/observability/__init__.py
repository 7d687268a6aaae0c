"""Hooks the host calls so that metrics and traces can watch it.

The actors call the functions of this module at a few points (a turn begins and
ends, an actor starts or stops, a store call returns, leases are renewed, an
event is dropped). Each hook is a no-op while no :class:`Observer` is installed,
which is the default: this module imports nothing heavy, and the Prometheus
(:mod:`.metrics`) and OpenTelemetry (:mod:`.tracing`) observers are imported
only by the servers that turn them on.

A turn gets a :class:`TurnProbe` from every observer that wants one; the probe
sees the turn's events as they are published (model calls, text deltas, tool
calls, retries) and its end. No probe, no wrapping: a host without observers
publishes events exactly as before.
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

__all__ = [
    "Observer", "TurnProbe", "TurnInfo", "install", "uninstall", "installed", "enabled",
    "turn_probe", "observe_events", "actor_started", "actor_stopped", "store_operation", "lease_renewals",
    "cross_process_interrupt", "subscribers_changed", "events_dropped", "incoming_trace_context",
    "set_incoming_trace_context", "set_log_context", "log_context",
]


@dataclass(frozen=True, slots=True)
class TurnInfo:
    """What is known of a turn when it begins."""

    realm_id: str
    session_id: str
    run_id: str
    provider: str
    model: str
    prompt: Any = None
    #: W3C trace context (``traceparent``/``tracestate``) of the request that started the turn.
    trace_context: Mapping[str, str] | None = None


class TurnProbe:
    """Watches one turn. Every method is optional; the defaults do nothing."""

    def event(self, payload: Any) -> None:
        """An event the turn published (``TurnStarted``, ``TextDelta``, ``ToolCallRequested`` ...)."""

    def finish(self, status: str, usage: Any, report: Any, cause: str | None) -> None:
        """The turn ended: ``completed``, ``failed`` or ``interrupted``, with the run's own usage,
        the ``run_failed`` error report (None when completed) and its terminal cause kind."""


class Observer:
    """Something that records what the host does. Subclasses override the hooks they need."""

    def turn(self, info: TurnInfo) -> TurnProbe | None:
        """A probe for this turn, or None."""
        return None

    def actor_started(self, session_id: str) -> None:
        """A session actor came alive (created or woken from the store)."""

    def actor_stopped(self, session_id: str, hibernated: bool) -> None:
        """A session actor left memory: hibernated when idle, else archived or stopped."""

    def store_operation(self, operation: str, seconds: float, ok: bool) -> None:
        """A store method returned (or raised) after ``seconds``."""

    def lease_renewals(self, renewed: int, lost: int, ok: bool) -> None:
        """One renewal round of this process's run leases."""

    def cross_process_interrupt(self, direction: str) -> None:
        """An interrupt crossed processes: ``sent`` to another one or ``received`` from one."""

    def subscribers_changed(self, delta: int) -> None:
        """Event subscribers attached (+) or detached (-)."""

    def events_dropped(self, count: int) -> None:
        """A slow subscriber lost ``count`` events (its queue was full)."""


_observers: tuple[Observer, ...] = ()
log = logging.getLogger("rkat.observability")


def _broken(observer: object, hook: str) -> None:
    """An observer raised: say so once and take it out, so watching never breaks a turn."""
    log.exception("observer %r failed in %s; it is removed", observer, hook)
    uninstall(observer)  # type: ignore[arg-type]
_incoming: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("rkat_trace_context",
                                                                                      default=None)


def install(observer: Observer) -> Observer:
    """Add ``observer``; returns it (so tests can remove it with :func:`uninstall`)."""
    global _observers
    if observer not in _observers:
        _observers = (*_observers, observer)
    return observer


def uninstall(observer: Observer) -> None:
    """Remove ``observer`` if installed."""
    global _observers
    _observers = tuple(o for o in _observers if o is not observer)


def installed() -> tuple[Observer, ...]:
    """The observers installed now."""
    return _observers


def enabled() -> bool:
    """Whether any observer is installed (callers skip their timing work otherwise)."""
    return bool(_observers)


_log_fields: contextvars.ContextVar[Mapping[str, str] | None] = contextvars.ContextVar("rkat_log_context",
                                                                                     default=None)


def set_log_context(**fields: str) -> None:
    """Ids that log lines of the current task (and the tasks it starts) carry: session_id, run_id, realm_id."""
    current = _log_fields.get()
    _log_fields.set({**current, **fields} if current else fields)


def log_context() -> Mapping[str, str] | None:
    """What :func:`set_log_context` set in this task, if anything."""
    return _log_fields.get()


def set_incoming_trace_context(carrier: Mapping[str, str] | None) -> None:
    """Remember the trace context of the request being served (the current task's context)."""
    _incoming.set(carrier)


def incoming_trace_context() -> Mapping[str, str] | None:
    """The trace context :func:`set_incoming_trace_context` set in this task, if any."""
    return _incoming.get()


class _Probes(TurnProbe):
    """The probes of one turn, each shielded from the others' failures (a failing one is dropped)."""

    __slots__ = ("_probes",)

    def __init__(self, probes: list[TurnProbe]) -> None:
        self._probes = probes

    def event(self, payload: Any) -> None:
        for probe in self._probes:
            try:
                probe.event(payload)
            except Exception:
                self._drop(probe, "event")

    def finish(self, status: str, usage: Any, report: Any, cause: str | None) -> None:
        for probe in self._probes:
            try:
                probe.finish(status, usage, report, cause)
            except Exception:
                log.exception("turn probe %r failed in finish", probe)

    def _drop(self, probe: TurnProbe, hook: str) -> None:
        log.exception("turn probe %r failed in %s; it stops watching this turn", probe, hook)
        self._probes = [p for p in self._probes if p is not probe]


def turn_probe(info: TurnInfo) -> TurnProbe | None:
    """The probes of every observer for a turn beginning now, as one; None without observers."""
    probes = []
    for observer in _observers:
        try:
            probe = observer.turn(info)
        except Exception:
            _broken(observer, "turn")
            continue
        if probe is not None:
            probes.append(probe)
    return _Probes(probes) if probes else None


def observe_events(emit: Callable[[Any], Any], probe: TurnProbe | None) -> Callable[[Any], Any]:
    """``emit``, also showing each event to ``probe`` (``emit`` itself when there is no probe)."""
    if probe is None:
        return emit
    see = probe.event

    def emit_and_observe(payload: Any) -> Any:
        result = emit(payload)
        see(payload)
        return result
    return emit_and_observe


def _each(hook: str, *args: Any) -> None:
    for observer in _observers:
        try:
            getattr(observer, hook)(*args)
        except Exception:
            _broken(observer, hook)


def actor_started(session_id: str) -> None:
    """Hook: see :meth:`Observer.actor_started`."""
    if _observers:
        _each("actor_started", session_id)


def actor_stopped(session_id: str, hibernated: bool) -> None:
    """Hook: see :meth:`Observer.actor_stopped`."""
    if _observers:
        _each("actor_stopped", session_id, hibernated)


def store_operation(operation: str, seconds: float, ok: bool) -> None:
    """Hook: see :meth:`Observer.store_operation`."""
    if _observers:
        _each("store_operation", operation, seconds, ok)


def lease_renewals(renewed: int, lost: int, ok: bool) -> None:
    """Hook: see :meth:`Observer.lease_renewals`."""
    if _observers:
        _each("lease_renewals", renewed, lost, ok)


def cross_process_interrupt(direction: str) -> None:
    """Hook: see :meth:`Observer.cross_process_interrupt`."""
    if _observers:
        _each("cross_process_interrupt", direction)


def subscribers_changed(delta: int) -> None:
    """Hook: see :meth:`Observer.subscribers_changed`."""
    if _observers:
        _each("subscribers_changed", delta)


def events_dropped(count: int) -> None:
    """Hook: see :meth:`Observer.events_dropped`."""
    if _observers:
        _each("events_dropped", count)
