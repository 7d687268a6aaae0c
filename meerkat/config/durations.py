"""Durations in config (``limits.max_turn_duration = "5m"``): parsed once, with errors naming the key."""

from __future__ import annotations

import re

from meerkat.errors import InvalidParams

__all__ = ["parse_duration", "MAX_DURATION_S"]

#: The longest duration a config key may name: a year.
MAX_DURATION_S = 365 * 86400.0

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")


def parse_duration(text: str, key: str) -> float:
    """Seconds in ``text`` (``"90s"``, ``"5m"``, ``"1h30m"``, ``"500ms"``; a bare number is seconds)."""
    value = text.strip().lower()
    try:
        seconds = float(value)
    except ValueError:
        parts = _PART.findall(value)
        if not parts or "".join(n + u for n, u in parts) != value.replace(" ", ""):
            raise InvalidParams(f"Invalid config: {key} must be a duration such as \"90s\", \"5m\" or \"1h30m\" "
                                f"(got {text!r})", details={"key": key}) from None
        seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if not seconds > 0:
        raise InvalidParams(f"Invalid config: {key} must be > 0 (got {text!r})", details={"key": key})
    if not seconds <= MAX_DURATION_S:  # inf too ("inf", "1e400"): a limit must be a number a timer can use
        raise InvalidParams(f"Invalid config: {key} must be at most 365d (got {text!r})", details={"key": key})
    return seconds
