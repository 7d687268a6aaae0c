"""SessionHost: what a session actor needs of the realm supervisor that runs it.

Defined below the actor (the supervisor satisfies it), so the session modules
never import the supervisor's: imports only point down.
"""

from __future__ import annotations

from typing import Any, Callable, Protocol, TypeVar

from meerkat.agent import ToolRegistry
from meerkat.config import Config
from meerkat.providers import ProviderPool
from meerkat.store import RunRecord, SessionRecord, SessionStore

from .coordination import Coordinator
from .options import HostOptions

__all__ = ["SessionHost"]

T = TypeVar("T")


class SessionHost(Protocol):
    """The realm as a session actor sees it."""

    realm_id: str
    #: This process as a run owner (``host_id:pid``).
    owner: str
    options: HostOptions
    store: SessionStore
    #: Whether other processes may serve the realm (leases, fresh reads, coordination apply).
    shared: bool
    #: How this process reaches other processes' runs, and they reach ours.
    coordinator: Coordinator
    tools: ToolRegistry
    providers: ProviderPool

    async def store_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store method off the event loop when it blocks."""

    def current_config(self) -> Config:
        """The realm config as of now."""

    async def begin_run(self, run: RunRecord) -> SessionRecord:
        """Record ``run`` as running (taking over a stale one); SESSION_BUSY if another holds it."""

    def holds(self, session_id: str, run_id: str) -> bool:
        """Whether a turn of this process holds ``run_id``'s lease."""

    async def close_if_stale(self, session_id: str, run_id: str) -> bool:
        """Close a run whose owner died or whose lease ran out; whether it was closed."""

    def close_after_failed_commit(self, session_id: str, run_id: str, error: str) -> None:
        """Close a run of ours whose commit failed, once the store answers again."""

    def forget(self, actor: Any) -> None:
        """Drop a retiring actor from the table of live sessions."""
