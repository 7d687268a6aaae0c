"""The sqlite store's WAL is checkpointed off the commit path."""

from __future__ import annotations

import trio

from helpers import running_service
from meerkat.store.sqlite import AUTOCHECKPOINT_PAGES, SqliteStore
from meerkat.transcript import SystemMessage
from meerkat.store import SessionRecord


def test_checkpoint_moves_committed_pages_into_the_database_file(tmp_path):
    path = tmp_path / "s.sqlite3"
    store = SqliteStore(path)
    try:
        assert store._conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == AUTOCHECKPOINT_PAGES
        for i in range(200):
            store.create_session(SessionRecord(session_id=f"s{i:04d}", created_at_ms=i, updated_at_ms=i,
                                               model="mock", provider="mock"),
                                 [SystemMessage(content="x" * 2000, created_at="t")])
        before = path.stat().st_size  # everything since the schema is still in the WAL
        store.checkpoint()
        after = path.stat().st_size
        assert after > before + 200 * 2000
        assert len(store.list_sessions(limit=1000, offset=0)) == 200
    finally:
        store.close()


async def test_supervisor_checkpoints_periodically(tmp_path, monkeypatch):
    calls = []
    original = SqliteStore.checkpoint

    def counting(self):
        calls.append(1)
        return original(self)

    monkeypatch.setattr(SqliteStore, "checkpoint", counting)
    async with running_service(tmp_path, "sqlite", realm_id="wal", checkpoint_interval=0.02) as service:
        created = await service.create_session("x")
        await trio.sleep(0.2)
        assert len(calls) >= 3
        assert (await service.read_session(created.session_id)).message_count == 2
