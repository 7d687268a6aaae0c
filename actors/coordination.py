"""Coordination: how the processes serving one realm reach each other's runs.

Several processes (on one machine, or on several hosts sharing a database) may
serve a realm. The store says who owns a running turn (its run record and lease);
a :class:`Coordinator` does everything else that crosses process boundaries:

* whether an owner is still alive (:meth:`Coordinator.owner_is_alive`);
* what a run records so others can reach it (:meth:`Coordinator.run_link`);
* the live events of another process's turn, with the owner's seq
  (:meth:`Coordinator.follow`), and a local turn's events for followers elsewhere
  (:meth:`Coordinator.broadcast_turn`);
* subscribers arriving here, so other processes' turns reach them
  (:meth:`Coordinator.reader_added`);
* asking the owner to interrupt a run (:meth:`Coordinator.interrupt`; a
  ``turn/stop_run`` is an interrupt of a named run);
* telling others of a config write they cannot see for themselves
  (:meth:`Coordinator.config_written`).

The realm supervisor and the session actors use this interface only. The
implementations: :class:`ProcessLocalCoordinator` (memory realms: nobody else),
:class:`actors.loopback.LoopbackCoordinator` (file realms: pid liveness and a
loopback TCP link), :class:`actors.postgres_coordination.PostgresCoordinator`
(postgres realms: leases, live rows in the database, LISTEN/NOTIFY pings).

Two protocols say what a coordinator may use of the actors above it:
:class:`CoordinationHost` (the realm supervisor) and :class:`LocalSession` (a
session actor of this process). They are defined here, below both, so that no
module imports upwards.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, AsyncGenerator, Callable, ContextManager, Protocol, TypeVar

import trio

from meerkat.events import EventEnvelope
from meerkat.store import RunRecord, SessionStore, owner_is_alive

from .bus import Subscription
from .messages import SessionMessage
from .options import HostOptions
from .storeio import StoreIO

__all__ = ["Backlog", "BACKLOG", "LIVE", "Coordinator", "CoordinationHost", "LocalSession", "ProcessLocalCoordinator"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Backlog:
    """A mark in :meth:`Coordinator.follow`'s stream: the events after it are a backlog (``True``:
    the owner had published them before the follow began) or live (``False``).

    A subscriber here that joined mid-turn was not owed a backlog (it asked for what comes from
    now on), so relaying one must not push it past its queue into a ``stream_truncated`` marker:
    it is delivered like a cursor's replay (see :meth:`actors.bus.EventBus.publish_envelope`).
    """

    open: bool


#: The events that follow were published before the follow began.
BACKLOG = Backlog(True)
#: The events that follow come as the owner publishes them.
LIVE = Backlog(False)


class LocalSession(Protocol):
    """What a coordinator uses of a session actor living in this process."""

    session_id: str

    @property
    def running_run_id(self) -> str | None:
        """The turn this process runs on the session now, if any."""

    @property
    def last_seq(self) -> int:
        """The seq of the last event published on the session here."""

    def follow(self, after_seq: int) -> Subscription | None:
        """The session's events after ``after_seq`` for another process, ending after a terminal event."""

    def relay(self, envelope: EventEnvelope, *, backlog: bool = False) -> bool:
        """Publish an event of another process's turn here (``backlog``: one it published before
        we followed it); False: drop the source."""

    def relaying(self) -> ContextManager[None]:
        """Held while another process's turn is being relayed into this session."""

    async def replay_committed(self, upto_seq: int) -> None:
        """Publish the committed events up to ``upto_seq`` this process never saw, read from the log."""

    def has_readers(self) -> bool:
        """Whether someone in this process follows the session."""

    def wants_foreign_events(self) -> bool:
        """Whether the session has readers here, no turn of ours and no relay running."""

    def mirror(self, run: RunRecord, last_committed_seq: int) -> None:
        """Start copying another process's running turn into this session's bus."""

    def notice_archived_elsewhere(self) -> None:
        """Another process archived the session."""


class CoordinationHost(Protocol):
    """What a coordinator uses of its realm supervisor."""

    owner: str
    options: HostOptions
    store: SessionStore
    io: StoreIO

    @property
    def nursery(self) -> trio.Nursery:
        """The supervisor's nursery (background work that must outlive a request)."""

    def live_actor(self, session_id: str) -> LocalSession | None:
        """The session's actor if it lives in this process (never starts one)."""

    async def deliver(self, session_id: str, message: SessionMessage) -> None:
        """Post a message to a session's actor (started if needed)."""

    async def store_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store method off the event loop when it blocks."""

    def notice_config_change(self) -> None:
        """Another process wrote the realm's config: re-read it soon."""


class Coordinator(ABC):
    """One realm's link to the other processes serving it. See the module docstring."""

    #: Whether other processes may serve the realm: then turns take leases, reads go to the
    #: store, and the supervisor keeps leases, sweeps stale runs and re-reads config.
    shared: bool = True

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work (listening, looking for other processes' turns) until cancelled."""
        task_status.started()

    def close(self) -> None:
        """The realm is shutting down: say so to other processes, bound what is still being sent."""

    def owner_is_alive(self, owner: str) -> bool:
        """Whether the owner of a run may still be running (False: close its run at once)."""
        return owner_is_alive(owner)

    async def run_link(self) -> tuple[str | None, str | None]:
        """(endpoint, token) a run begun here records, for others to reach it; (None, None) if none."""
        return None, None

    @abstractmethod
    def follow(self, run: RunRecord, after_seq: int) -> AsyncGenerator[EventEnvelope | Backlog, None]:
        """Another process's running ``run``: the session's events after ``after_seq`` as its owner
        numbers them, ending after the next terminal event or when the owner can't be reached.

        A :class:`Backlog` item says whether the events after it are a backlog (the owner had
        published them before the follow began) or live."""

    @abstractmethod
    async def interrupt(self, run: RunRecord, timeout: float) -> bool | None:
        """Ask ``run``'s owner (another process) to interrupt it and answer once it has ended:
        whether it was interrupted, or None if the owner could not be reached."""

    async def reader_added(self, session_id: str) -> None:
        """Someone here subscribed to ``session_id``: returns once a turn begun anywhere after
        it will reach this process, and looks for a turn already running elsewhere."""

    async def config_written(self) -> None:
        """This process wrote the realm's config: tell processes that would not notice by themselves."""

    async def broadcast_turn(self, session_id: str, run_id: str, subscribe: Callable[[], Subscription]) -> None:
        """A turn (``run_id``) of this process began numbering the session's events: send them to
        the processes that follow the session (each sender takes its own ``subscribe()``)."""


class ProcessLocalCoordinator(Coordinator):
    """A memory realm: no other process can see it, so there is nothing to coordinate."""

    shared = False

    async def follow(self, run: RunRecord, after_seq: int) -> AsyncGenerator[EventEnvelope | Backlog, None]:
        """Nothing: no other process runs turns here."""
        return
        yield  # pragma: no cover - an async generator

    async def interrupt(self, run: RunRecord, timeout: float) -> bool | None:
        """Nobody to ask."""
        return None
