"""HostOptions: the tunables of the actor runtime, shared by supervisors, actors and coordinators."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = ["HostOptions"]


def _env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, else ``default``."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True, slots=True)
class HostOptions:
    """Tunables of the actor runtime."""

    #: Seconds an idle actor with no subscribers stays in memory before hibernating.
    idle_timeout: float = 60.0
    mailbox_capacity: int = 64
    #: Events each session keeps for subscribers resuming from a cursor.
    ring_size: int = 1024
    #: Queue bound of a plain subscriber before it gets ``stream_truncated``.
    subscriber_capacity: int = 256
    #: Queue bound of the subscription that follows one streamed turn.
    turn_stream_capacity: int = 4096
    #: Seconds between checks for config changes made by other processes.
    config_poll_interval: float = 0.5
    #: Seconds between WAL checkpoints of a sqlite store (run off the commit path).
    checkpoint_interval: float = 0.25
    #: Seconds a running turn's lease lasts without renewal. A process that stops
    #: renewing (hung, or dead on another host) loses the session after this long;
    #: one that died on this host loses it at once. ``RKAT_LEASE_SECS`` overrides.
    lease_ttl: float = field(default_factory=lambda: _env_seconds("RKAT_LEASE_SECS", 10.0))
    #: Seconds between lease renewals (also how often an owner looks for interrupt
    #: requests that could not reach it over the live link).
    lease_renew_interval: float = 1.0
    #: Seconds between looks for turns of other processes on sessions someone here follows.
    foreign_poll_interval: float = 0.1
