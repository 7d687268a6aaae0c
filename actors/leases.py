"""Leases of a realm supervisor: its turns' leases renewed, other processes' stale runs closed.

A mixin of :class:`actors.realm.RealmSupervisor`. A running turn's run record is
its lease (owner, expiry). The supervisor renews its turns' leases every
``lease_renew_interval``; a lease that is lost, or carries an interrupt request
from another process, stops the turn. A run whose owner is dead (as the realm's
coordinator judges) or whose lease expired is closed as interrupted: when a turn
finds the session busy with it, at start, and in a periodic sweep. A run of this
process whose commit failed (a store outage) is closed the same way as soon as
the store answers again, not only once its lease has run out.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Callable, TypeVar

import trio

from meerkat import observability
from meerkat.errors import MeerkatError, SessionBusy, SessionNotFound
from meerkat.store import RunRecord, SessionRecord, SessionStore
from meerkat.transcript import now_ms

from .coordination import Coordinator
from .options import HostOptions

__all__ = ["LeaseKeeping"]

log = logging.getLogger("rkat.realm")
T = TypeVar("T")

#: Seconds between the first tries to close a run of ours whose commit failed, doubling up to the most.
CLOSE_RETRY_FIRST = 0.2
CLOSE_RETRY_MOST = 5.0


class LeaseKeeping:
    """Mixin: leases of this process's turns, and other processes' stale runs."""

    # State the supervisor provides (see RealmSupervisor.__init__).
    owner: str
    options: HostOptions
    store: SessionStore
    coordinator: Coordinator
    _actors: dict[str, Any]
    _nursery: trio.Nursery | None

    async def store_call(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError  # provided by RealmSupervisor

    async def begin_run(self, run: RunRecord) -> SessionRecord:
        """Record ``run`` as running; a session held by a dead or expired owner is taken over first."""
        try:
            try:
                return await self.store_call(self.store.begin_run, run)
            except SessionBusy as busy:
                if not await self.close_if_stale(run.session_id, busy.running_run_id):
                    raise
            return await self.store_call(self.store.begin_run, run)
        except KeyError:  # gone, or archived by another process
            raise SessionNotFound(run.session_id) from None

    def holds(self, session_id: str, run_id: str) -> bool:
        """Whether a turn of this supervisor holds ``run_id``'s lease (and renews it)."""
        actor = self._actors.get(session_id)
        return actor is not None and actor.leased_run_id == run_id

    async def close_if_stale(self, session_id: str, run_id: str) -> bool:
        """Close a run as interrupted if its owner died or its lease ran out.

        Runs of this process count too once no turn here holds them: a run whose
        commit failed is left ``running`` with nobody renewing it.
        """
        held = await self.store_call(self.store.get_run, run_id)
        if held is None or self.holds(session_id, run_id):
            return False
        dead = not self.coordinator.owner_is_alive(held.owner)
        reason = f"owner {held.owner} died" if dead else f"the lease of owner {held.owner} expired"
        closed = await self.store_call(partial(self.store.close_stale_run, session_id, run_id, now_ms=now_ms(),
                                               owner_dead=dead, reason=reason))
        if closed:
            log.warning("closed run %s of session %s as interrupted (%s)", run_id, session_id, reason)
            if (actor := self._actors.get(session_id)) is not None:
                actor.notice_store_change()
        return closed

    def close_after_failed_commit(self, session_id: str, run_id: str, error: str) -> None:
        """A turn of ours could not commit ``run_id`` (the store failed): close it as soon as the store
        answers again, so the session is not busy until its lease runs out (nobody renews it now)."""
        if self._nursery is not None:
            self._nursery.start_soon(self._close_own_run, session_id, run_id, error)

    async def _close_own_run(self, session_id: str, run_id: str, error: str) -> None:
        reason = f"its owner {self.owner} could not commit it: {error}"
        delay = CLOSE_RETRY_FIRST
        while True:
            try:
                # owner_dead: nothing here runs it any more (its turn has ended), whatever its lease says.
                closed = await self.store_call(partial(self.store.close_stale_run, session_id, run_id,
                                                       now_ms=now_ms(), owner_dead=True, reason=reason))
            except SessionNotFound:
                return
            except MeerkatError as exc:
                log.debug("closing run %s after its failed commit: %s; trying again in %s s", run_id, exc, delay)
                await trio.sleep(delay)
                delay = min(2 * delay, CLOSE_RETRY_MOST)
                continue
            except Exception:  # not the store's answer: leave the run to the lease, keep the realm serving
                log.exception("could not close run %s after its failed commit", run_id)
                return
            if closed:  # False: its commit went through after all, or another host closed it
                log.warning("closed run %s of session %s as interrupted (%s)", run_id, session_id, reason)
                if (actor := self._actors.get(session_id)) is not None:
                    actor.notice_store_change()
            return

    async def _close_stale_runs(self) -> None:
        """Close every run whose owner died or whose lease ran out (user input kept)."""
        for run in await self.store_call(self.store.open_runs):
            await self.close_if_stale(run.session_id, run.run_id)

    async def _sweep_stale_runs(self) -> None:
        """Now and then, free sessions whose owners are gone, even if nobody here uses them."""
        while True:
            await trio.sleep(max(self.options.lease_ttl / 2, self.options.lease_renew_interval))
            try:
                await self._close_stale_runs()
            except MeerkatError as exc:
                log.warning("sweep of stale runs failed: %s", exc)

    async def _keep_leases(self) -> None:
        """Renew the leases of this process's running turns; stop those lost or asked to stop."""
        # Renew at least three times per lease, however short a lease is configured.
        interval = min(self.options.lease_renew_interval, self.options.lease_ttl / 3)
        while True:
            await trio.sleep(interval)
            held = {actor.leased_run_id: actor for actor in tuple(self._actors.values())
                    if actor.leased_run_id is not None}
            if not held:
                continue
            expires = now_ms() + int(self.options.lease_ttl * 1000)
            try:
                report = await self.store_call(self.store.renew_leases, self.owner,
                                               [(a.session_id, run_id) for run_id, a in held.items()], expires)
            except MeerkatError as exc:
                log.warning("lease renewal failed: %s", exc)
                observability.lease_renewals(0, 0, ok=False)
                continue
            observability.lease_renewals(len(held) - len(report.lost), len(report.lost), ok=True)
            if report.interrupt_requested - report.lost:
                observability.cross_process_interrupt("received")
            for run_id in report.lost:
                held[run_id].stop_run(run_id, lease_lost=True)
            for run_id in report.interrupt_requested - report.lost:
                held[run_id].stop_run(run_id, lease_lost=False)
