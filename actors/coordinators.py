"""Which coordinator serves a realm: chosen by its storage backend."""

from __future__ import annotations

from meerkat.realm import RealmHandle

from .coordination import CoordinationHost, Coordinator, ProcessLocalCoordinator
from .loopback import LoopbackCoordinator

__all__ = ["open_coordinator"]


def open_coordinator(realm: RealmHandle, host: CoordinationHost) -> Coordinator:
    """The coordinator of ``realm`` for its supervisor ``host``.

    * ``memory``: nobody else can see the realm (:class:`ProcessLocalCoordinator`);
    * file backends (``sqlite``, ``jsonl``): processes of one machine, pid
      liveness and a loopback link (:class:`LoopbackCoordinator`).
    """
    if realm.backend == "memory":
        return ProcessLocalCoordinator()
    return LoopbackCoordinator(host, realm.paths.root)
