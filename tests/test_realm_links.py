"""Edges of sharing a realm: runs nobody renews, follows of ended runs, the live/ registry under threads.

The cross-process behaviour itself is tested with real processes in
``test_multiprocess.py``; these tests pin down, in one process, the corner cases
that are too narrow to hit reliably there.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import trio

from actors.live import follow_run
from actors.watchers import WatchRegistry
from meerkat.config.store import FileConfigStore
from meerkat.errors import StoreError

from helpers import running_service

#: A lease short enough for a test to outlive it, renewed several times over.
LEASE = {"lease_ttl": 0.3, "lease_renew_interval": 0.1}


@pytest.mark.parametrize("backend", ["sqlite", "jsonl"])
async def test_a_run_left_running_by_a_failed_commit_frees_the_session(tmp_path, backend, monkeypatch):
    async with running_service(tmp_path, backend, **LEASE) as service:
        store = service.supervisor.store
        session_id = (await service.create_session("hello")).session_id

        def disk_full(commit):
            raise StoreError("disk full")

        async def orphan_a_run() -> None:
            with monkeypatch.context() as patch:
                patch.setattr(store, "commit_run", disk_full)
                # Nor can its owner close it afterwards (it normally does once the store answers again:
                # tests/test_service_turns.py): what is left is the lease, tested here.
                patch.setattr(service.supervisor, "close_after_failed_commit", lambda *args: None)
                with pytest.raises(StoreError, match="disk full"):
                    await service.start_turn(session_id, "lost")
            assert (await service.read_session(session_id)).is_active  # still marked running in the store

        # Nobody renews the orphan: an interrupt closes it once its lease has run out ...
        await orphan_a_run()
        stopped = await service.interrupt(session_id)
        assert stopped.interrupted and not (await service.read_session(session_id)).is_active
        await service.start_turn(session_id, "usable again")
        # ... and so does the next turn, taking the session over.
        await orphan_a_run()
        await trio.sleep(LEASE["lease_ttl"] * 1.5)
        result = await service.start_turn(session_id, "taken over")
        history = await service.read_history(session_id)
        assert history.messages[-1].run_id == result.run_id
        cancelled = [m for m in history.messages if getattr(m, "stop_reason", None) == "cancelled"]
        assert len(cancelled) == 2  # each orphan closed as interrupted, the user's prompt kept


async def test_following_a_run_that_already_ended_replays_it_and_stops(tmp_path):
    async with running_service(tmp_path, "sqlite") as service:
        store = service.supervisor.store
        session_id = (await service.create_session("hello")).session_id
        ended = await service.start_turn(session_id, "again")
        run = store.get_run(ended.run_id)
        last_seq = store.get_session(session_id).last_seq
        assert run is not None and run.live_endpoint is not None
        with trio.fail_after(5):  # a follower that already saw the run's end must not be held open
            assert [e async for e in follow_run(run, last_seq)] == []
            replayed = [e async for e in follow_run(run, 0)]
        assert replayed[-1].seq == last_seq and replayed[-1].type == "run_completed"


async def test_a_config_write_of_another_process_right_after_ours_is_not_mistaken_for_ours(tmp_path, monkeypatch):
    async with running_service(tmp_path, "sqlite") as service:
        supervisor = service.supervisor
        other_process = FileConfigStore(supervisor.realm.paths.root)
        write = supervisor.config_store.patch

        def ours_then_theirs(patch, expected_generation=None):
            ours = write(patch, expected_generation)
            other_process.patch({"agent": {"system_prompt": "theirs"}})  # lands before we look at the file
            return ours

        monkeypatch.setattr(supervisor.config_store, "patch", ours_then_theirs)
        assert (await service.patch_config({"agent": {"system_prompt": "ours"}})).generation == 1
        created = await service.create_session()
        assert (await service.read_session(created.session_id)).system_prompt == "theirs"


def _on_file(registry: WatchRegistry) -> frozenset[str]:
    path = registry.directory / "h-1.json"
    return frozenset(json.loads(path.read_bytes())["sessions"]) if path.exists() else frozenset()


def test_concurrent_publishes_keep_the_live_file_whole_and_true(tmp_path: Path) -> None:
    # Supervisors publish from worker threads; two at once used to share one temporary file.
    for trial in range(100):
        registry = WatchRegistry(tmp_path / f"realm{trial}", "h:1")
        start = threading.Barrier(2)

        def publish(sessions: frozenset[str]) -> None:
            start.wait()
            registry.publish("127.0.0.1:1", "token", sessions)

        threads = [threading.Thread(target=publish, args=(frozenset(s),)) for s in ({"a"}, {"a", "b"})]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert _on_file(registry) == registry.published != frozenset()


def test_a_publish_that_lands_after_close_leaves_no_file(tmp_path: Path) -> None:
    registry = WatchRegistry(tmp_path, "h:1")
    registry.publish("127.0.0.1:1", "token", frozenset({"a"}))
    registry.close()
    registry.publish("127.0.0.1:1", "token", frozenset({"a", "b"}))  # was queued in a worker thread
    assert list(registry.directory.iterdir()) == []
