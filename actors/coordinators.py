"""Which coordinator serves a realm: chosen by its storage backend."""

from __future__ import annotations

from meerkat.errors import InvalidParams
from meerkat.realm import RealmHandle

from .coordination import CoordinationHost, Coordinator, ProcessLocalCoordinator
from .loopback import LoopbackCoordinator

__all__ = ["open_coordinator"]


def open_coordinator(realm: RealmHandle, host: CoordinationHost) -> Coordinator:
    """The coordinator of ``realm`` for its supervisor ``host``.

    * ``memory``: nobody else can see the realm (:class:`ProcessLocalCoordinator`);
    * file backends (``sqlite``, ``jsonl``): processes of one machine, pid
      liveness and a loopback link (:class:`LoopbackCoordinator`);
    * ``postgres``: hosts anywhere, leases and the database
      (:class:`actors.postgres_coordination.PostgresCoordinator`).
    """
    if realm.backend == "memory":
        return ProcessLocalCoordinator()
    if realm.backend == "postgres":
        # Imported only here: psycopg is needed by postgres realms alone.
        from .postgres_coordination import PostgresCoordinator

        if not realm.database_url:
            raise InvalidParams(f"postgres realm {realm.realm_id!r} has no database URL")
        return PostgresCoordinator(host, realm.realm_id, realm.database_url)
    return LoopbackCoordinator(host, realm.paths.root)
