"""Prometheus metrics of a host, with the ``prometheus-client`` library.

Installed by the servers (``rkat-rest`` serves them at ``GET /metrics``,
``rkat-rpc``/``rkat-mcp`` with ``--metrics HOST:PORT``). Names follow the
Prometheus conventions: ``rkat_`` prefix, base units (seconds), ``_total`` for
counters, and bounded labels only: provider, model (at most
:data:`MAX_MODELS` distinct, then ``other``), status, error class, store
operation; never a session or run id.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from . import Observer, TurnInfo, TurnProbe

__all__ = ["PrometheusObserver", "CONTENT_TYPE_LATEST", "MAX_MODELS", "MAX_ASLEEP_TRACKED"]

# No ``*_created`` gauge beside every counter and histogram series: in the text format it is
# a second time series per label set that Prometheus stores and nobody queries.
disable_created_metrics()

#: Distinct model names kept as label values; later ones count as ``other`` (a bounded label set).
MAX_MODELS = 64
#: Hibernated sessions remembered for ``rkat_session_actors{state="hibernated"}`` (about 100 bytes
#: each): past it the longest-asleep one is forgotten, so a long-lived host's memory stays bounded.
MAX_ASLEEP_TRACKED = 10_000
_TURN_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
_TTFT_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30)
_STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5)
_TOKEN_KINDS = (("input", "input_tokens"), ("output", "output_tokens"), ("cache_read", "cache_read_tokens"),
                ("cache_creation", "cache_creation_tokens"), ("reasoning", "reasoning_tokens"))


class PrometheusObserver(Observer):
    """Every host metric, in a registry of its own (:attr:`registry`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry = registry if registry is not None else CollectorRegistry()
        self._models: set[str] = set()
        self.actors = Gauge("rkat_session_actors", "Session actors of this process: live (in memory) or "
                            "hibernated (served here, now asleep in the store until next use; the "
                            f"{MAX_ASLEEP_TRACKED} most recent).", ["state"],
                            registry=registry)
        self._live = self.actors.labels("live")
        self._live.set(0)
        self._hibernated = self.actors.labels("hibernated")
        self._hibernated.set(0)
        #: Sessions whose actor hibernated here and has not woken since, oldest first (bounded).
        self._asleep: OrderedDict[str, None] = OrderedDict()
        self.hibernations = Counter("rkat_session_actor_hibernations", "Idle session actors that left memory "
                                    "(they wake from the store on next use).", registry=registry)
        self.actor_starts = Counter("rkat_session_actor_starts", "Session actors started (created or woken).",
                                    registry=registry)
        labels = ["provider", "model"]
        self.turns_running = Gauge("rkat_turns_running", "Turns running now in this process.", registry=registry)
        self.turns_started = Counter("rkat_turns_started", "Turns started.", labels, registry=registry)
        self.turns_ended = Counter("rkat_turns_ended", "Turns ended, by status (completed, failed, interrupted).",
                                   [*labels, "status"], registry=registry)
        self.turn_duration = Histogram("rkat_turn_duration_seconds", "Wall time of a turn, start to end.",
                                       [*labels, "status"], buckets=_TURN_BUCKETS, registry=registry)
        self.first_token = Histogram("rkat_time_to_first_token_seconds", "From a model call's start to its first "
                                     "text or reasoning delta.", labels, buckets=_TTFT_BUCKETS, registry=registry)
        self.model_calls = Counter("rkat_model_calls", "Model calls made (retries included).", labels,
                                   registry=registry)
        self.tokens = Counter("rkat_tokens", "Tokens reported by providers, by kind (input, output, cache_read, "
                              "cache_creation, reasoning).", [*labels, "kind"], registry=registry)
        self.tool_calls = Counter("rkat_tool_calls", "Tool calls executed, by outcome (ok, error).", ["outcome"],
                                  registry=registry)
        self.provider_errors = Counter("rkat_provider_errors", "Turns failed by their provider, by error class.",
                                       ["provider", "error_class"], registry=registry)
        self.provider_retries = Counter("rkat_provider_retries", "Model calls retried, by failure kind.",
                                        ["provider", "kind"], registry=registry)
        self.subscribers = Gauge("rkat_event_subscribers", "Event subscribers attached now.", registry=registry)
        self.dropped = Counter("rkat_events_dropped", "Events a slow subscriber lost (queue full).",
                               registry=registry)
        self.store_latency = Histogram("rkat_store_operation_duration_seconds", "Latency of store operations.",
                                       ["operation", "outcome"], buckets=_STORE_BUCKETS, registry=registry)
        self.leases = Counter("rkat_lease_renewals", "Run leases renewed, by outcome (ok, lost, failed).",
                                      ["outcome"], registry=registry)
        self.interrupts = Counter("rkat_cross_process_interrupts", "Interrupts that crossed processes "
                                  "(sent to another process's turn, or received from one).", ["direction"],
                                  registry=registry)

    def render(self) -> bytes:
        """The text exposition format (``Content-Type``: :data:`CONTENT_TYPE_LATEST`)."""
        return generate_latest(self.registry)

    def model_label(self, model: str) -> str:
        """``model``, or ``other`` once :data:`MAX_MODELS` distinct names were seen."""
        if model in self._models:
            return model
        if len(self._models) >= MAX_MODELS:
            return "other"
        self._models.add(model)
        return model

    # -- hooks ------------------------------------------------------------------

    def turn(self, info: TurnInfo) -> TurnProbe:
        return _TurnMetrics(self, info.provider, self.model_label(info.model))

    def actor_started(self, session_id: str) -> None:
        self._live.inc()
        self.actor_starts.inc()
        if session_id in self._asleep:
            del self._asleep[session_id]
            self._hibernated.set(len(self._asleep))

    def actor_stopped(self, session_id: str, hibernated: bool) -> None:
        self._live.dec()
        if hibernated:
            self.hibernations.inc()
            self._asleep[session_id] = None
            self._asleep.move_to_end(session_id)
            if len(self._asleep) > MAX_ASLEEP_TRACKED:
                self._asleep.popitem(last=False)
            self._hibernated.set(len(self._asleep))

    def store_operation(self, operation: str, seconds: float, ok: bool) -> None:
        self.store_latency.labels(operation, "ok" if ok else "error").observe(seconds)

    def lease_renewals(self, renewed: int, lost: int, ok: bool) -> None:
        if not ok:
            self.leases.labels("failed").inc()
            return
        if renewed:
            self.leases.labels("ok").inc(renewed)
        if lost:
            self.leases.labels("lost").inc(lost)

    def cross_process_interrupt(self, direction: str) -> None:
        self.interrupts.labels(direction).inc()

    def subscribers_changed(self, delta: int) -> None:
        self.subscribers.inc(delta)

    def events_dropped(self, count: int) -> None:
        self.dropped.inc(count)


class _TurnMetrics(TurnProbe):
    """One turn's clock and labels."""

    __slots__ = ("_m", "_provider", "_model", "_started", "_call_started", "_waiting_first")

    def __init__(self, metrics: PrometheusObserver, provider: str, model: str) -> None:
        self._m = metrics
        self._provider = provider
        self._model = model
        self._started = time.perf_counter()
        self._call_started = self._started
        self._waiting_first = False
        metrics.turns_started.labels(provider, model).inc()
        metrics.turns_running.inc()

    def event(self, payload: Any) -> None:
        kind = type(payload).__name__
        if kind in ("TextDelta", "ReasoningDelta"):
            if self._waiting_first:
                self._waiting_first = False
                self._m.first_token.labels(self._provider, self._model).observe(time.perf_counter() -
                                                                                self._call_started)
        elif kind == "TurnStarted":
            self._call_started = time.perf_counter()
            self._waiting_first = True
            self._m.model_calls.labels(self._provider, self._model).inc()
        elif kind == "Retrying":
            self._call_started = time.perf_counter()
            self._waiting_first = True
            self._m.model_calls.labels(self._provider, self._model).inc()
            self._m.provider_retries.labels(self._provider, payload.retry.failure.kind).inc()
        elif kind == "ToolExecutionCompleted":
            self._m.tool_calls.labels("error" if payload.is_error else "ok").inc()

    def finish(self, status: str, usage: Any, report: Any, cause: str | None) -> None:
        m = self._m
        m.turns_running.dec()
        m.turns_ended.labels(self._provider, self._model, status).inc()
        m.turn_duration.labels(self._provider, self._model, status).observe(time.perf_counter() - self._started)
        if usage is not None:
            for kind, field in _TOKEN_KINDS:
                count = getattr(usage, field, 0) or 0
                if count:
                    m.tokens.labels(self._provider, self._model, kind).inc(count)
        if report is not None and cause == "llm_failure":
            reason = report.reason or {}
            error_class = reason.get("provider_error_kind") or reason.get("reason_type") or report.error_class
            m.provider_errors.labels(self._provider, str(error_class)).inc()
