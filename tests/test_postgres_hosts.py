"""Two hosts on one PostgreSQL realm: live events, interrupts and leases cross through the database.

Each "host" is a service with its own ``RKAT_HOST_ID`` and its own state root,
so neither can use the other's pid or files; a real process is SIGKILLed for
the lease test. The server is the real PostgreSQL of the ``postgres_url`` fixture.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from contextlib import asynccontextmanager
from pathlib import Path
from typing import AsyncIterator

import psycopg
import pytest
import trio

from actors import HostOptions, SessionService, open_service, postgres_live_writer
from meerkat.errors import RequestCancelled, SessionBusy, StoreError
from meerkat.events import TERMINAL_EVENT_TYPES
from meerkat.ids import new_uuid7

REALM = "shared-realm"
#: Slow enough that a turn is still running while another host reacts to it.
SLOW = {"reply_words": 40, "token_delay_ms": 25}
REPO = Path(__file__).resolve().parent.parent


@asynccontextmanager
async def host(tmp_path: Path, url: str, host_id: str, monkeypatch, **options) -> AsyncIterator[SessionService]:
    """A service for ``REALM`` as host ``host_id`` would run it (its own state root)."""
    monkeypatch.setenv("RKAT_HOST_ID", host_id)
    async with open_service(REALM, state_root=tmp_path / host_id, backend="postgres", database_url=url,
                            options=HostOptions(**options) if options else None) as service:
        await service.supervisor.coordinator.listening.wait()
        yield service


async def _until_terminal(events) -> list:
    seen = []
    async for envelope in events:
        seen.append(envelope)
        if envelope.type in TERMINAL_EVENT_TYPES:
            break
    return seen


async def test_a_turn_on_host_a_reaches_a_subscriber_on_host_b_live_with_the_owners_seq(tmp_path, postgres_url,
                                                                                       monkeypatch):
    async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 3})).session_id
        on_b = await b.subscribe(session_id)
        a_done = trio.Event()
        live_on_b: list[bool] = []
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                async def follow_b() -> None:
                    async for envelope in on_b:
                        if envelope.type == "text_delta" and not live_on_b:
                            live_on_b.append(not a_done.is_set())
                        received_b.append(envelope)
                        if envelope.type in TERMINAL_EVENT_TYPES:
                            return

                received_b: list = []
                nursery.start_soon(follow_b)
                stream = await a.start_turn_streaming(session_id, "second", provider_params=SLOW)
                received_a = await _until_terminal(stream)
                a_done.set()
        assert received_a[-1].type == "run_completed"
        assert [(e.seq, e.type) for e in received_b] == [(e.seq, e.type) for e in received_a]
        assert [e.event_id for e in received_b] == [e.event_id for e in received_a]
        assert live_on_b == [True]  # B saw the answer while A was still streaming it, not after the commit


async def test_interrupt_and_stop_run_from_host_b_stop_the_turn_on_host_a(tmp_path, postgres_url, monkeypatch):
    # Renewals far apart: only the NOTIFY to the owner can stop the turn within the time allowed.
    slow_leases = {"lease_ttl": 60.0, "lease_renew_interval": 30.0}
    async with host(tmp_path, postgres_url, "host-a", monkeypatch, **slow_leases) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch, **slow_leases) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 3})).session_id

        stream = await a.start_turn_streaming(session_id, "long", provider_params=SLOW)
        await stream.__anext__()  # run_started: the run is recorded
        with trio.fail_after(5):
            result = await b.interrupt(session_id)
            with pytest.raises(RequestCancelled):
                await stream.result()
        assert result.interrupted and result.run_id == stream.run_id

        stream = await a.start_turn_streaming(session_id, "long again", provider_params=SLOW)
        await stream.__anext__()
        with trio.fail_after(5):
            receipt = await b.stop_run(session_id, stream.run_id)
            with pytest.raises(RequestCancelled):
                await stream.result()
        assert receipt["outcome"] == "stopped" and receipt["run_id"] == stream.run_id

        history = await b.read_history(session_id)
        assert [getattr(m, "stop_reason", None) for m in history.messages[-4:]] == [
            None, "cancelled", None, "cancelled"]
        assert not (await b.read_session(session_id)).is_active


async def test_a_subscriber_on_host_b_resumes_by_cursor_after_the_turn(tmp_path, postgres_url, monkeypatch):
    monkeypatch.setattr(postgres_live_writer, "DELETE_GRACE", 1.0)
    async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 3})).session_id
        stream = await a.start_turn_streaming(session_id, "second", provider_params={"reply_words": 5})
        on_a = await _until_terminal(stream)
        cursor = on_a[2].seq
        with trio.fail_after(10):
            resumed = await _until_terminal(await b.subscribe(session_id, after_seq=cursor))
        assert [(e.seq, e.type, e.event_id) for e in resumed] == [(e.seq, e.type, e.event_id) for e in on_a[3:]]
        # The run's live rows were written for other hosts, and go once its commit made them redundant.
        with trio.fail_after(10):
            while not await trio.to_thread.run_sync(_live_rows, postgres_url, session_id):
                await trio.sleep(0.02)
            while await trio.to_thread.run_sync(_live_rows, postgres_url, session_id):
                await trio.sleep(0.05)


def _live_rows(url: str, session_id: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM rkat.live_events WHERE session_id = %s",
                            (session_id,)).fetchone()[0]


OWNER = textwrap.dedent("""
    import sys, trio
    from actors import open_service

    async def main(url, root):
        async with open_service("shared-realm", state_root=root, backend="postgres", database_url=url) as service:
            session_id = (await service.create_session("first", provider_params={"reply_words": 2})).session_id
            stream = await service.start_turn_streaming(session_id, "never finished",
                                                        provider_params={"reply_words": 10000, "token_delay_ms": 50})
            await stream.__anext__()
            print(session_id, flush=True)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1], sys.argv[2])
""")


async def test_a_killed_owners_session_frees_after_its_lease_not_by_its_pid(tmp_path, postgres_url, monkeypatch):
    lease = 2.0
    env = {**os.environ, "RKAT_HOST_ID": "host-a", "RKAT_LEASE_SECS": str(lease)}
    owner = subprocess.Popen([sys.executable, "-c", OWNER, postgres_url, str(tmp_path / "host-a")], env=env,
                             stdout=subprocess.PIPE, cwd=REPO)
    try:
        with trio.fail_after(30):
            line = await trio.to_thread.run_sync(owner.stdout.readline)
        session_id = line.decode().strip()
        assert session_id, "the owner process did not start its turn"
    finally:
        owner.send_signal(signal.SIGKILL)
        owner.wait()
        owner.stdout.close()
    killed_at = trio.current_time()
    async with host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        # The owner's pid is gone, but it belongs to another host id: only the lease can free the session.
        with pytest.raises(SessionBusy):
            await b.start_turn(session_id, "too early")
        while True:
            try:
                result = await b.start_turn(session_id, "after the lease")
                break
            except SessionBusy:
                assert trio.current_time() - killed_at < lease + 5, "the session stayed busy past its lease"
                await trio.sleep(0.1)
        assert trio.current_time() - killed_at >= lease * 0.5
        history = await b.read_history(session_id)
        stops = [getattr(m, "stop_reason", None) for m in history.messages]
        assert stops[-4:-2] == [None, "cancelled"]  # the killed run: the prompt kept, an empty cancelled answer
        assert history.messages[-1].run_id == result.run_id


async def test_a_config_write_on_host_a_is_used_by_host_bs_next_session_at_once(tmp_path, postgres_url,
                                                                                monkeypatch):
    # Background re-reads far apart: only the ping of the write can bring the new config in time.
    async with host(tmp_path, postgres_url, "host-a", monkeypatch, config_poll_interval=60.0) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch, config_poll_interval=60.0) as b:
        assert (await b.create_session()).session_id  # B has read the config (generation 0)
        written = await a.patch_config({"agent": {"system_prompt": "from host a"}})
        with trio.fail_after(5):
            while True:
                created = await b.create_session()
                if (await b.read_session(created.session_id)).system_prompt == "from host a":
                    break
                await trio.sleep(0.02)
        assert (await b.get_config()).generation == written.generation


async def test_the_turn_of_a_host_that_lives_only_for_it_reaches_a_follower_elsewhere(tmp_path, postgres_url,
                                                                                      monkeypatch):
    """As ``rkat run`` on another machine: the owner starts, runs a quick turn and exits at once."""
    async with host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a:
            session_id = (await a.create_session("first", provider_params={"reply_words": 2})).session_id
        on_b = await b.subscribe(session_id)
        async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a:
            result = await a.start_turn(session_id, "quick", provider_params={"reply_words": 3})
        with trio.fail_after(10):
            seen = await _until_terminal(on_b)
        assert seen[0].type == "run_started" and seen[-1].type == "run_completed"
        assert [e.seq for e in seen] == list(range(seen[0].seq, seen[-1].seq + 1))
        assert "".join(e.payload.delta for e in seen if e.type == "text_delta") == result.text


def _cut_listeners(url: str) -> int:
    """Terminate every notification connection to the test's database, as a failover would."""
    with psycopg.connect(url, autocommit=True) as conn:
        return len(conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname ="
                                " current_database() AND application_name = 'rkat-listen'").fetchall())


def _listeners(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                            " AND application_name = 'rkat-listen'").fetchone()[0]


async def test_hosts_listen_again_after_losing_their_notification_connections(tmp_path, postgres_url, monkeypatch):
    slow_leases = {"lease_ttl": 60.0, "lease_renew_interval": 30.0}
    async with host(tmp_path, postgres_url, "host-a", monkeypatch, **slow_leases) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch, **slow_leases) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 3})).session_id
        assert await trio.to_thread.run_sync(_cut_listeners, postgres_url) == 2
        with trio.fail_after(10):
            while await trio.to_thread.run_sync(_listeners, postgres_url) < 2:
                await trio.sleep(0.1)
        # The owner hears the interrupt only on its new connection (renewals are 30 s apart).
        stream = await a.start_turn_streaming(session_id, "long", provider_params=SLOW)
        await stream.__anext__()
        with trio.fail_after(5):
            result = await b.interrupt(session_id)
            with pytest.raises(RequestCancelled):
                await stream.result()
        assert result.interrupted and result.run_id == stream.run_id


async def test_quick_turns_in_a_row_on_one_host_all_reach_a_follower_elsewhere_whole(tmp_path, postgres_url,
                                                                                   monkeypatch):
    """Turns that end before the follower has looked (a script of ``rkat run --resume`` calls)."""
    async with host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a:
            session_id = (await a.create_session("first", provider_params={"reply_words": 2})).session_id
            on_b = await b.subscribe(session_id)
            results = [await a.start_turn(session_id, f"quick {i}", provider_params={"reply_words": 3})
                       for i in range(4)]
        seen = await _whole_runs(on_b, len(results))
        assert _texts_per_run(seen) == [r.text for r in results]


async def _whole_runs(events, runs: int) -> list:
    """Events until the ``runs``-th ``run_completed`` (15 s at most), checked for gaps: every seq
    from the first to the last, no ``stream_truncated`` marker (seq 0) among them."""
    seen: list = []
    with trio.fail_after(15):
        while sum(e.type == "run_completed" for e in seen) < runs:
            seen.append(await events.receive())
    assert [e.seq for e in seen] == list(range(seen[0].seq, seen[-1].seq + 1)), [(e.seq, e.type) for e in seen]
    return seen


def _texts_per_run(events: list) -> list[str]:
    """The text each run streamed, in order, from a list of events holding whole runs."""
    texts, text = [], ""
    for envelope in events:
        if envelope.type == "text_delta":
            text += envelope.payload.delta
        elif envelope.type == "run_completed":
            texts.append(text)
            text = ""
    return texts


async def test_turns_whose_pings_never_came_reach_a_follower_elsewhere_whole_from_the_log(
        tmp_path, postgres_url, monkeypatch):
    """Notifications lost on the way (or taken after their run committed): the follower gets
    those runs' events from the committed log when it next hears of the session, before the next
    run's, never a ``stream_truncated`` marker for events the database holds."""
    async with host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a:
            coordinator = b.supervisor.coordinator
            real_relay_soon, heard = coordinator._relay_soon, set()
            boundary: list[str] = []  # run ids are UUIDv7: those older than the boundary lose their pings

            def loses_the_pings_of_older_runs(session: str, run_id: str) -> None:
                if boundary and run_id > boundary[0]:
                    heard.add(run_id)
                    real_relay_soon(session, run_id)

            monkeypatch.setattr(coordinator, "_relay_soon", loses_the_pings_of_older_runs)
            session_id = (await a.create_session("first", provider_params={"reply_words": 2})).session_id
            on_b = await b.subscribe(session_id)
            first = await a.start_turn(session_id, "quick 0", provider_params={"reply_words": 3})
            boundary.append(new_uuid7())
            second = await a.start_turn(session_id, "quick 1", provider_params={"reply_words": 3})
        seen = await _whole_runs(on_b, 2)
        assert heard == {second.run_id}  # only the second run's pings came
        assert seen[0].type == "run_started" and _texts_per_run(seen) == [first.text, second.text]


async def test_a_turn_on_host_b_after_one_of_host_a_it_never_heard_of_gives_readers_on_b_both_whole(
        tmp_path, postgres_url, monkeypatch):
    """Host B starts a turn right after host A committed one whose events never reached B (no ping
    taken, no mirror): B's readers get A's turn from the log, then B's; B's own turn stream starts
    with B's turn, not A's events."""
    async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 2})).session_id
        coordinator = b.supervisor.coordinator

        async def never_mirrors(watched: list) -> None:
            return None

        monkeypatch.setattr(coordinator, "_relay_soon", lambda session, run_id: None)
        monkeypatch.setattr(coordinator.foreign, "_mirror_foreign_runs", never_mirrors)
        on_b = await b.subscribe(session_id)
        on_a = await a.start_turn(session_id, "from a", provider_params={"reply_words": 3})
        stream = await b.start_turn_streaming(session_id, "from b", provider_params={"reply_words": 3})
        own = await _until_terminal(stream)
        on_b_turn = await stream.result()
        seen = await _whole_runs(on_b, 2)
        assert seen[0].type == "run_started" and _texts_per_run(seen) == [on_a.text, on_b_turn.text]
        assert own[0].type == "run_started" and _texts_per_run(own) == [on_b_turn.text]
        assert [e.event_id for e in own] == [e.event_id for e in seen[-len(own):]]


async def test_a_live_write_that_fails_once_is_retried_so_a_follower_sees_no_gap(tmp_path, postgres_url,
                                                                                  monkeypatch):
    """One failed live write on the owner (a pool timeout on a busy host) costs followers nothing:
    the batch goes out with the next one, so they get every event, not a stream_truncated gap."""
    async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 3})).session_id
        writer = a.supervisor.coordinator.writer
        real_db, failed = writer._db, []

        async def fails_once(fn, *args):
            rows = args[1]
            if not failed and any(b'"run_started"' in row.body for row in rows):  # the second turn's first batch
                failed.append([row.seq for row in rows])
                raise StoreError("postgres realm shared-realm: live events: PoolTimeout")
            return await real_db(fn, *args)

        monkeypatch.setattr(writer, "_db", fails_once)
        on_b = await b.subscribe(session_id)
        with trio.fail_after(30):
            async with trio.open_nursery() as nursery:
                received_b: list = []

                async def follow_b() -> None:
                    received_b.extend(await _until_terminal(on_b))

                nursery.start_soon(follow_b)
                stream = await a.start_turn_streaming(session_id, "second", provider_params=SLOW)
                received_a = await _until_terminal(stream)
        # The turn's first batch was the one that failed (it may also carry the previous turn's last event,
        # written in the same batch when the turns follow each other closely).
        assert failed and received_a[0].seq in failed[0]
        assert [(e.seq, e.type) for e in received_b] == [(e.seq, e.type) for e in received_a]


def _live_seqs(url: str, run_id: str) -> int:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT count(*) FROM rkat.live_events WHERE run_id = %s", (run_id,)).fetchone()[0]


async def test_a_subscriber_joining_a_long_turn_elsewhere_gets_it_whole_without_a_false_gap(tmp_path, postgres_url,
                                                                                         monkeypatch):
    """A subscriber with no cursor wants the events from now on. Joining a turn another host has run for a
    while (more events so far than a subscriber's queue holds), it gets that turn from its start, as a
    replay, and never a ``stream_truncated`` marker: none of the events it was owed was lost."""
    capacity = 16
    async with host(tmp_path, postgres_url, "host-a", monkeypatch) as a, \
            host(tmp_path, postgres_url, "host-b", monkeypatch, subscriber_capacity=capacity) as b:
        session_id = (await a.create_session("first", provider_params={"reply_words": 3})).session_id
        stream = await a.start_turn_streaming(session_id, "long", provider_params={"reply_words": 2000,
                                                                                   "token_delay_ms": 20})
        on_a = [await stream.__anext__()]
        with trio.fail_after(30):  # the turn is well past the queue's size, and its events are on the table
            while len(on_a) < 3 * capacity:
                on_a.append(await stream.__anext__())
            while await trio.to_thread.run_sync(_live_seqs, postgres_url, stream.run_id) < 3 * capacity:
                await trio.sleep(0.02)
            on_b = await b.subscribe(session_id)
            # The reader is slow: more live events than its queue holds arrive after the backlog,
            # before it reads. Only those could be lost (behind a marker); the backlog is queued whole.
            follower = b.supervisor.live_actor(session_id)
            while follower is None or follower.last_seq < on_a[-1].seq + 6 * capacity:
                await trio.sleep(0.02)
                follower = b.supervisor.live_actor(session_id)
            received = []
            while (envelope := on_b.receive_nowait()).seq:
                received.append(envelope)
            dropped = on_b.statistics().dropped
        await a.interrupt(session_id)
        assert received[0].type == "run_started"
        assert [(e.seq, e.type) for e in received[:len(on_a)]] == [(e.seq, e.type) for e in on_a]
        assert [e.seq for e in received] == list(range(received[0].seq, received[-1].seq + 1))
        # After the turn so far: the live events the reader lagged on past its queue, behind an honest marker.
        assert envelope.type == "stream_truncated" and envelope.payload.reason.dropped == dropped
