"""Closing a realm's store at shutdown stays off the event loop's thread: a PostgreSQL pool's
close waits on the network while the loop still serves the host's other realms."""

from __future__ import annotations

import threading

from actors import open_service
from meerkat.store.sqlite import SqliteStore


async def test_a_realm_store_is_closed_in_a_worker_thread(tmp_path, monkeypatch):
    closed_on = []
    original = SqliteStore.close

    def recording_close(self):
        closed_on.append(threading.current_thread() is threading.main_thread())
        original(self)

    monkeypatch.setattr(SqliteStore, "close", recording_close)
    async with open_service("closing", state_root=tmp_path, backend="sqlite") as service:
        await service.create_session("hi", model="mock")
    assert closed_on == [False]
