"""The host: the process root, one trio nursery that owns every realm supervisor.

A process may serve several realms (say, a daemon with a realm per team); each
gets its own :class:`RealmSupervisor`, store and config, all children of one
:class:`Host`. When the host's block exits, every supervisor is cancelled: running
turns are interrupted and committed as interrupted, then each store is closed.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, AsyncIterator

import logging

import trio

from meerkat.agent import builtin_tools
from meerkat.config import FileConfigStore, MemoryConfigStore
from meerkat.errors import InvalidParams
from meerkat.realm import RealmHandle, open_realm
from meerkat.realm_database import open_database_stores
from meerkat.realm_admin import hold_in_use, realm_in_use, release_in_use, remove_realm_dir
from meerkat.store import SessionStore, open_store

from .realm import HostOptions, RealmStatistics, RealmSupervisor
from .service import SessionService

__all__ = ["Host", "HostStatistics", "open_host", "open_service"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class HostStatistics:
    """Every realm this process serves."""

    realms: tuple[RealmStatistics, ...]


class Host:
    """Serves realms; get one with :func:`open_host`."""

    def __init__(self, nursery: trio.Nursery, options: HostOptions | None) -> None:
        self._nursery = nursery
        self._options = options
        self._services: dict[tuple[str, str], SessionService] = {}

    async def open_realm(self, realm_id: str | None = None, *, state_root: str | Path | None = None,
                         backend: str | None = None, isolated: bool = False,
                         instance_id: str | None = None, database_url: str | None = None) -> SessionService:
        """Serve a realm (created if new) and return its service; the same realm twice is one service.

        ``database_url`` (else ``$RKAT_DATABASE_URL``) is the database of a ``postgres`` realm.
        """
        realm = await trio.to_thread.run_sync(partial(open_realm, realm_id, state_root=state_root, backend=backend,
                                                      isolated=isolated, instance_id=instance_id,
                                                      database_url=database_url))
        key = (str(realm.paths.root), realm.realm_id)
        existing = self._services.get(key)
        if existing is not None:
            if backend is not None and existing.realm.backend != backend:
                raise InvalidParams(f"realm {realm.realm_id!r} is already served with backend "
                                    f"{existing.realm.backend!r}, not {backend!r}")
            return existing
        # A realm this open generated is throw-away: removed when this host stops serving it.
        throwaway = (realm_id is None or isolated) and realm.origin == "generated" and realm.backend != "memory"
        in_use = None if realm.backend == "memory" else await trio.to_thread.run_sync(hold_in_use, realm.paths.root)
        try:
            store, config_store = await _open_stores(realm)
        except BaseException:
            if in_use is not None:
                release_in_use(in_use)
            raise
        supervisor = RealmSupervisor(realm, store, config_store, builtin_tools(), self._options)
        await self._nursery.start(self._serve_realm, supervisor, key, in_use, throwaway)
        service = SessionService(supervisor)
        self._services[key] = service
        return service

    async def _serve_realm(self, supervisor: RealmSupervisor, key: tuple[str, str], in_use: int | None,
                           throwaway: bool, *,
                           task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            await supervisor.run(task_status=task_status)
        finally:
            self._services.pop(key, None)
            await _close_store(supervisor.store)
            if in_use is not None:
                release_in_use(in_use)
            if throwaway:
                await _remove_throwaway(supervisor.realm)

    def statistics(self) -> HostStatistics:
        """One entry per realm served."""
        return HostStatistics(realms=tuple(s.statistics() for s in self._services.values()))


#: Longest a realm's shutdown waits for its store to close (a PostgreSQL pool returning its
#: connections to a database in trouble); the host's other realms go on meanwhile.
STORE_CLOSE_SECS = 10.0


async def _close_store(store: SessionStore) -> None:
    """Close ``store`` off the event loop's thread: a PostgreSQL pool's close waits on the
    network, and the loop serves the host's other realms. Shielded, since this runs while the
    realm is being cancelled, and bounded so a dead database cannot hold shutdown."""
    if not store.blocking:
        store.close()
        return
    with trio.CancelScope(shield=True):
        with trio.move_on_after(STORE_CLOSE_SECS):
            await trio.to_thread.run_sync(store.close, abandon_on_cancel=True)


async def _remove_throwaway(realm: RealmHandle) -> None:
    """Delete a generated realm's directory at exit, unless another process serves it now."""
    root = realm.paths.root
    with trio.CancelScope(shield=True):  # we are usually here because of a cancellation
        try:
            if not await trio.to_thread.run_sync(realm_in_use, root):
                await trio.to_thread.run_sync(remove_realm_dir, root)
        except OSError as exc:
            log.warning("could not remove throw-away realm %s at %s: %s", realm.realm_id, root, exc)


async def _open_stores(realm: RealmHandle) -> tuple[SessionStore, Any]:
    if realm.backend == "memory":
        return open_store("memory"), MemoryConfigStore()
    if realm.backend == "postgres":
        assert realm.database_url is not None  # open_realm refuses a postgres realm without one
        return await trio.to_thread.run_sync(open_database_stores, realm.realm_id, realm.database_url)
    store = await trio.to_thread.run_sync(partial(open_store, realm.backend,
                                                  sqlite_path=realm.paths.sessions_sqlite_path,
                                                  jsonl_dir=realm.paths.sessions_jsonl_dir))
    return store, FileConfigStore(realm.paths.root)


@asynccontextmanager
async def open_host(options: HostOptions | None = None) -> AsyncIterator[Host]:
    """Run a host until the block exits.

    An error raised in the block (or by the host) comes out as itself, not
    wrapped in a one-member exception group, so callers can simply ``except`` it.
    """
    try:
        async with trio.open_nursery() as nursery:
            try:
                yield Host(nursery, options)
            finally:
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise


@asynccontextmanager
async def open_service(realm_id: str | None = None, *, state_root: str | Path | None = None,
                       backend: str | None = None, isolated: bool = False, instance_id: str | None = None,
                       database_url: str | None = None,
                       options: HostOptions | None = None) -> AsyncIterator[SessionService]:
    """Serve one realm (created if new) until the block exits; the usual way in.

    Without ``realm_id`` (or with ``isolated``) a fresh throw-away realm ``realm-<uuidv7>``
    is made, and removed again on exit. On exit, running turns are interrupted and
    committed as interrupted, and the store is closed. ``backend="postgres"`` needs a
    named realm and ``database_url`` (or ``$RKAT_DATABASE_URL``); see docs/deployment.md.
    """
    async with open_host(options) as host:
        yield await host.open_realm(realm_id, state_root=state_root, backend=backend, isolated=isolated,
                                    instance_id=instance_id, database_url=database_url)
