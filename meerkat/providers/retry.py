"""When and how long to wait before retrying a failed model call.

The policy comes from the realm's ``[retry]`` config: ``max_retries`` retries,
a delay of ``initial_delay_ms * multiplier ** (attempt - 1)`` with ±10 % jitter,
capped at ``max_delay_ms``. A server hint (``retry-after``) longer than that
delay wins, and rate limits wait at least ``rate_limit_floor_ms`` (upstream's
30 s floor, configurable so tests and proxies can lower it).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..events import RetryFailure, RetryPlan, RetrySchedule
from .base import ProviderCallError

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """See the module docstring."""

    max_retries: int = 3
    initial_delay_ms: int = 500
    max_delay_ms: int = 30_000
    multiplier: float = 2.0
    rate_limit_floor_ms: int = 30_000
    jitter: float = 0.1

    @classmethod
    def from_config(cls, retry: object) -> "RetryPolicy":
        """The policy of a ``[retry]`` config section (:class:`meerkat.config.RetryConfig`)."""
        return cls(max_retries=getattr(retry, "max_retries"), initial_delay_ms=getattr(retry, "initial_delay_ms"),
                   max_delay_ms=getattr(retry, "max_delay_ms"), multiplier=getattr(retry, "multiplier"),
                   rate_limit_floor_ms=getattr(retry, "rate_limit_floor_ms", 30_000))

    def schedule(self, attempt: int, error: ProviderCallError) -> RetrySchedule | None:
        """The plan for retry number ``attempt`` (1-based), or None when it must not be retried."""
        if error.retry_kind is None or attempt > self.max_retries:
            return None
        computed = self.initial_delay_ms * self.multiplier ** (attempt - 1)
        computed *= 1 + random.uniform(-self.jitter, self.jitter)
        computed_ms = int(min(computed, self.max_delay_ms))
        selected = computed_ms
        hint = error.retry_after_ms
        if hint is not None and hint > selected:
            selected = hint
        floor_applied = error.retry_kind == "rate_limited" and selected < self.rate_limit_floor_ms
        if floor_applied:
            selected = self.rate_limit_floor_ms
        failure = RetryFailure(provider=error.provider or "unknown", kind=error.retry_kind,  # type: ignore[arg-type]
                               message=error.message, retry_after_ms=hint)
        plan = RetryPlan(attempt=attempt, max_retries=self.max_retries, computed_delay_ms=computed_ms,
                         selected_delay_ms=selected, rate_limit_floor_applied=floor_applied, budget_capped=False,
                         retry_after_hint_ms=hint)
        return RetrySchedule(failure=failure, plan=plan)
