"""Token usage: per provider call (:class:`TurnUsage`) and per session (:class:`Usage`)."""

from __future__ import annotations

import msgspec

__all__ = ["UsageAccounting", "TurnUsage", "Usage"]


class UsageAccounting(msgspec.Struct, frozen=True, kw_only=True):
    """How a provider's input counters were normalised into ``presented_tokens``."""

    provider: str
    model: str
    presented_tokens: int
    convention: str
    aggregation: str


class TurnUsage(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """Raw counters of one provider call, as on ``turn_completed.usage``."""

    input_tokens: int
    output_tokens: int
    cache_creation_tokens: int | None = None
    cache_read_tokens: int | None = None
    reasoning_tokens: int | None = None
    accounting: UsageAccounting

    @property
    def charged_tokens(self) -> int:
        """Tokens this call costs against a budget: presented input plus output."""
        return self.accounting.presented_tokens + self.output_tokens


class Usage(msgspec.Struct, frozen=True, kw_only=True):
    """Session-cumulative usage (``run_completed.usage``); never carries accounting."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    reasoning_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        """Input plus output."""
        return self.input_tokens + self.output_tokens

    def add(self, call: TurnUsage) -> "Usage":
        """This total plus one provider call, counting presented (normalised) input."""
        return Usage(
            input_tokens=self.input_tokens + call.accounting.presented_tokens,
            output_tokens=self.output_tokens + call.output_tokens,
            cache_creation_tokens=self.cache_creation_tokens + (call.cache_creation_tokens or 0),
            cache_read_tokens=self.cache_read_tokens + (call.cache_read_tokens or 0),
            reasoning_tokens=self.reasoning_tokens + (call.reasoning_tokens or 0),
        )

    def minus(self, earlier: "Usage") -> "Usage":
        """The usage accrued since ``earlier`` (a run's own share of the session total)."""
        return Usage(
            input_tokens=self.input_tokens - earlier.input_tokens,
            output_tokens=self.output_tokens - earlier.output_tokens,
            cache_creation_tokens=self.cache_creation_tokens - earlier.cache_creation_tokens,
            cache_read_tokens=self.cache_read_tokens - earlier.cache_read_tokens,
            reasoning_tokens=self.reasoning_tokens - earlier.reasoning_tokens,
        )

    def to_wire(self) -> dict[str, int]:
        """The RPC form, with ``total_tokens`` added as upstream sends it."""
        body = msgspec.to_builtins(self)
        body["total_tokens"] = self.total_tokens
        return body
