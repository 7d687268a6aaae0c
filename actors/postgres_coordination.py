"""PostgresCoordinator: hosts on different machines sharing a ``postgres`` realm.

No shared pids, no loopback link: everything goes through the database
(:mod:`meerkat.store.postgres_live` has the tables and channels).

* Liveness: leases. A pid is checked only for an owner with this host's id
  (``RKAT_HOST_ID``); any other owner is alive until its lease runs out.
* A local turn's events: the owner subscribes to its own bus and appends the
  events to ``rkat.live_events`` in small batches, pinging the realm's live
  channel (:class:`actors.postgres_live_writer.LiveEventWriter`).
* Another host's turn: a session with readers here is mirrored
  (:class:`actors.foreign_runs.ForeignRunWatch`, woken by the pings): its
  events are read from ``live_events`` after the local cursor, waking on each
  ping; once the run is no longer running, the rest comes from the committed log.
* Interrupt / ``turn/stop_run``: the run's interrupt flag is set in the store
  (the owner sees it when it renews its lease, at the latest) and the owner's
  channel is pinged; the owner interrupts the run at once. The asking host
  waits for the run to end (woken by the live pings), or for its lease to run out.

One connection per realm and host LISTENs; this task waits for its socket to be
readable and then drains the notifications without blocking. Every other
database call runs in a worker thread, from a small pool of its own.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from contextlib import aclosing
from functools import partial
from typing import Any, AsyncGenerator, Callable, TypeVar

import psycopg
import trio
from psycopg_pool import ConnectionPool

from meerkat import observability
from meerkat.dburl import redact_url, scrub_secrets
from meerkat.errors import StoreError
from meerkat.events import TERMINAL_EVENT_TYPES, EventEnvelope, decode_envelope
from meerkat.store import RunRecord
from meerkat.store.postgres_live import (
    OwnerRequest,
    decode_owner_request,
    live_channel,
    notify,
    owner_channel,
    parse_live_ping,
    read_live,
    send_owner_request,
)
from meerkat.transcript import now_ms

from .bus import Subscription
from .coordination import BACKLOG, LIVE, Backlog, CoordinationHost, Coordinator, LocalSession
from .foreign_runs import ForeignRunWatch
from .messages import Interrupt
from .postgres_live_writer import LiveEventWriter

__all__ = ["PostgresCoordinator"]

log = logging.getLogger("rkat.realm")
T = TypeVar("T")

#: Live rows read per query by a follower.
FOLLOW_BATCH = 512
#: Longest a follower waits without a ping before it looks again (seconds).
FOLLOW_POLL = 0.5
#: Seconds between looks for sessions followed here whose turn started elsewhere (pings do it sooner).
FOREIGN_POLL = 1.0
#: Seconds before reconnecting a lost notification connection.
RECONNECT_DELAY = 1.0
#: Longest a live-events call waits for a connection (a database in trouble fails it instead).
POOL_TIMEOUT = 5.0
#: Fail a connection attempt after 10 s; notice a peer gone silent (a network cut) within about a minute,
#: so the listening connection is replaced rather than waited on forever.
_CONNECT_OPTIONS: dict[str, Any] = {"connect_timeout": 10, "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
                    "keepalives_count": 3}
#: Longest a realm shutting down waits to write the events still queued for other hosts.
FLUSH_GRACE = 2.0
#: Longest a pinged run waits for the relay of an earlier one (which ends at its terminal event).
RELAY_WAIT = 2.0
#: Run ids of this host's own turns remembered, to ignore their pings (far more than run at once).
OWN_RUNS_KEPT = 4096
#: The live channel's payload that means "the config changed" (never a session id).
CONFIG_PING = "@config"


class PostgresCoordinator(Coordinator):
    """See the module docstring."""

    def __init__(self, host: CoordinationHost, realm_id: str, database_url: str) -> None:
        self._host = host
        self._realm_id = realm_id
        self._url = database_url
        self._live_channel = live_channel(realm_id)
        self._owner_channel = owner_channel(realm_id, host.owner)
        self.foreign = ForeignRunWatch(host, interval=FOREIGN_POLL)
        #: This host's turns' events, written for the other hosts.
        self.writer = LiveEventWriter(realm_id, self._db)
        self._pool: ConnectionPool[psycopg.Connection[Any]] | None = None
        self._nursery: trio.Nursery | None = None
        #: Waiters for a session's next ping (followers, interrupters), set and dropped by the ping.
        self._pings: dict[str, trio.Event] = {}
        #: Pinged runs of other hosts waiting to be relayed, per session, and the last one taken.
        self._queued: dict[str, list[str]] = {}
        self._relayed: dict[str, str] = {}
        #: Runs this host broadcast lately: their pings come back here too, and mean nothing.
        self._own_runs: OrderedDict[str, None] = OrderedDict()
        #: Set once the notification connection listens (tests and benches wait for it).
        self.listening = trio.Event()

    # -- running ---------------------------------------------------------------

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Open the pool, then listen, write live rows, sweep and mirror until cancelled."""
        self._pool = await trio.to_thread.run_sync(self._open_pool)
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._listen)
                nursery.start_soon(self.writer.run)
                nursery.start_soon(self.foreign.run)
                task_status.started()
        finally:
            self._nursery = None
            with trio.CancelScope(shield=True):
                # A process that ends right after its turn (``rkat run``) still hands its last
                # events to other hosts; FLUSH_GRACE bounds the wait for a database in trouble.
                with trio.move_on_after(FLUSH_GRACE):
                    await self.writer.flush()
                await trio.to_thread.run_sync(self._pool.close)

    def _open_pool(self) -> ConnectionPool[psycopg.Connection[Any]]:
        pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            self._url, min_size=1, max_size=3, open=False, name=f"rkat live {self._realm_id}",
            kwargs={"application_name": "rkat-live", **_CONNECT_OPTIONS}, check=ConnectionPool.check_connection,
            timeout=POOL_TIMEOUT)
        try:
            pool.open(wait=True, timeout=10)
        except Exception as exc:
            pool.close()
            raise self._error("cannot open the live-event connections", exc) from None
        return pool

    def _error(self, what: str, exc: BaseException) -> StoreError:
        """A StoreError naming the database (never its password), what failed and why."""
        detail = scrub_secrets(str(exc).strip() or type(exc).__name__, self._url)
        return StoreError(f"postgres realm {self._realm_id} at {redact_url(self._url)}: {what}: {detail}")

    async def _db(self, fn: Callable[..., T], *args: Any) -> T:
        """Run ``fn(connection, *args)`` in a worker thread, in one transaction of a pooled connection."""
        pool = self._pool
        if pool is None:
            raise StoreError(f"postgres realm {self._realm_id}: the live-event connections are not open")

        def call() -> T:
            with pool.connection() as conn:
                return fn(conn, *args)

        try:
            return await trio.to_thread.run_sync(call)
        except psycopg.Error as exc:
            raise self._error("live events", exc) from None

    # -- notifications -------------------------------------------------------------

    def _connect_listener(self) -> psycopg.Connection[Any]:
        conn = psycopg.connect(self._url, autocommit=True, application_name="rkat-listen", **_CONNECT_OPTIONS)
        conn.execute(f'LISTEN "{self._live_channel}"')
        conn.execute(f'LISTEN "{self._owner_channel}"')
        return conn

    async def _listen(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep one connection listening on the realm's live channel and this owner's, reconnecting."""
        started = lost = False
        while True:
            try:
                conn = await trio.to_thread.run_sync(self._connect_listener)
            except psycopg.Error as exc:
                if not started:
                    raise self._error("cannot listen for notifications", exc) from None
                # One line per outage, not one a second: the polls cover followers meanwhile.
                log.log(logging.DEBUG if lost else logging.WARNING,
                        "postgres realm %s: cannot listen for notifications (%s); retrying every %s s",
                        self._realm_id, type(exc).__name__, RECONNECT_DELAY)
                lost = True
                await trio.sleep(RECONNECT_DELAY)
                continue
            if not started:
                started = True
                task_status.started()
            elif lost:
                log.warning("postgres realm %s: listening for notifications again", self._realm_id)
            lost = False
            self.listening.set()
            self._wake_everyone()  # pings may have been missed while nobody listened
            fd = conn.pgconn.socket
            try:
                await self._drain(conn, fd)
            except psycopg.Error as exc:
                lost = True
                log.warning("postgres realm %s: lost the notification connection (%s); reconnecting",
                            self._realm_id, type(exc).__name__)
            finally:
                self.listening = trio.Event()
                trio.lowlevel.notify_closing(fd)
                with trio.CancelScope(shield=True):
                    await trio.to_thread.run_sync(conn.close)
            await trio.sleep(RECONNECT_DELAY)

    async def _drain(self, conn: psycopg.Connection[Any], fd: int) -> None:
        while True:
            await trio.lowlevel.wait_readable(fd)
            # Reads only what already arrived on the socket (libpq never blocks here): no DB round trip.
            conn.pgconn.consume_input()
            while (notify := conn.pgconn.notifies()) is not None:
                self._dispatch(notify.relname.decode(), notify.extra.decode())

    def _dispatch(self, channel: str, payload: str) -> None:
        if channel == self._live_channel and payload == CONFIG_PING:
            self._host.notice_config_change()
        elif channel == self._live_channel:
            self._ping(payload)
        elif channel == self._owner_channel:
            request = decode_owner_request(payload)
            if request is not None and request.op == "interrupt":
                self._host.nursery.start_soon(self._interrupt_here, request)

    def _ping(self, payload: str) -> None:
        session_id, run_id = parse_live_ping(payload)
        event = self._pings.pop(session_id, None)
        if event is not None:
            event.set()
        if run_id and run_id not in self._own_runs:
            self._relay_soon(session_id, run_id)

    def _relay_soon(self, session_id: str, run_id: str) -> None:
        """Relay ``run_id`` (another host's run, maybe ended already) into the session if it has
        readers here, after the runs named before it: a turn of a few milliseconds, or several
        in a row, reaches the readers whole and in order."""
        actor = self._host.live_actor(session_id)
        if actor is None or not self.foreign.follows(session_id) or self._relayed.get(session_id) == run_id:
            return
        queue = self._queued.get(session_id)
        if queue is None:
            self._queued[session_id] = [run_id]
            self._host.nursery.start_soon(self._relay_queued, actor)
        elif run_id not in queue:
            queue.append(run_id)

    async def _relay_queued(self, actor: LocalSession) -> None:
        session_id, host = actor.session_id, self._host
        try:
            if not await _free(actor):
                return
            # One relay for the whole queue: meanwhile nothing else moves the session's seq here
            # (no pull of the running turn, no catching up from the store past runs still queued).
            with actor.relaying():
                while (queue := self._queued.get(session_id)) and actor.has_readers():
                    run_id = self._relayed[session_id] = queue.pop(0)
                    run = await host.store_call(host.store.get_run, run_id)
                    if run is None or run.owner == host.owner or run.session_id != session_id:
                        continue
                    # Runs before this one whose pings never came here (a lost notification):
                    # their events from the log, so this run's live rows follow on without a gap.
                    await actor.replay_committed(run.seq_start)
                    async with aclosing(self.follow(run, actor.last_seq)) as events:
                        backlog = False
                        async for item in events:
                            if isinstance(item, Backlog):
                                backlog = item.open
                            elif not actor.relay(item, backlog=backlog):
                                break
        except StoreError as exc:
            log.warning("stopped relaying turns of session %s: %s", session_id, exc)
        finally:
            self._queued.pop(session_id, None)

    def _next_ping(self, session_id: str) -> trio.Event:
        event = self._pings.get(session_id)
        if event is None:
            event = self._pings[session_id] = trio.Event()
        return event

    def _wake_everyone(self) -> None:
        for event in self._pings.values():
            event.set()
        self._pings.clear()
        self.foreign.poke()

    async def _interrupt_here(self, request: OwnerRequest) -> None:
        actor = self._host.live_actor(request.session_id)
        if actor is None or actor.running_run_id != request.run_id:
            return  # ended meanwhile, or never ours: the asker sees it in the store
        observability.cross_process_interrupt("received")
        await self._host.deliver(request.session_id, Interrupt())

    async def config_written(self) -> None:
        """Ping the realm's channel: other hosts re-read the config now, not at their next poll."""
        try:
            await self._db(notify, self._live_channel, CONFIG_PING)
        except StoreError as exc:  # they still see it at their next poll
            log.warning("could not tell other hosts of a config write: %s", exc)

    # -- a local turn's events, for other hosts --------------------------------------

    async def broadcast_turn(self, session_id: str, run_id: str, subscribe: Callable[[], Subscription]) -> None:
        """Append the turn's events to ``live_events`` as it publishes them."""
        # In serve()'s own nursery when it runs, so its last flush comes after every publisher has
        # handed over what it holds.
        self._own_runs[run_id] = None
        while len(self._own_runs) > OWN_RUNS_KEPT:
            self._own_runs.popitem(last=False)
        nursery = self._nursery or self._host.nursery
        nursery.start_soon(self.writer.publish, session_id, run_id, subscribe())

    # -- another host's turn ---------------------------------------------------------

    async def reader_added(self, session_id: str) -> None:
        """Note the reader and look for a turn running elsewhere (every turn is on the table already)."""
        self.foreign.note_reader(session_id)
        self.foreign.poke()

    async def follow(self, run: RunRecord, after_seq: int) -> AsyncGenerator[EventEnvelope | Backlog, None]:
        """The run's events from ``live_events`` as they arrive, then from the log once it has ended.

        What is already written when the follow begins (read without waiting for a ping, the
        log's tail included) comes after :data:`BACKLOG`; what comes after the first wait, after
        :data:`LIVE`."""
        session_id, last = run.session_id, after_seq
        yield BACKLOG
        backlog = True
        while True:
            ping = self._next_ping(session_id)
            try:
                bodies = await self._db(read_live, self._realm_id, session_id, last, FOLLOW_BATCH)
            except StoreError as exc:
                log.warning("stopped following run %s: %s", run.run_id, exc)
                return
            for body in bodies:
                envelope = decode_envelope(body)
                if envelope.seq <= last:
                    continue
                last = envelope.seq
                yield envelope
                if envelope.type in TERMINAL_EVENT_TYPES:
                    return
            if len(bodies) == FOLLOW_BATCH:
                continue
            if not bodies and not await self._still_running(run.run_id):
                async with aclosing(self._logged_after(session_id, last)) as logged:
                    async for envelope in logged:
                        yield envelope
                return
            if backlog:
                backlog = False
                yield LIVE
            with trio.move_on_after(FOLLOW_POLL):
                await ping.wait()

    async def _still_running(self, run_id: str) -> bool:
        host = self._host
        current = await host.store_call(host.store.get_run, run_id)
        return current is not None and current.status == "running"

    async def _logged_after(self, session_id: str, after_seq: int) -> AsyncGenerator[EventEnvelope, None]:
        """The committed log's events after ``after_seq`` up to the next terminal one."""
        host = self._host
        while True:
            page = await host.store_call(partial(host.store.read_events, session_id, after_seq=after_seq,
                                                 limit=FOLLOW_BATCH))
            if page is None:
                return
            for envelope in page.events:
                after_seq = envelope.seq
                yield envelope
                if envelope.type in TERMINAL_EVENT_TYPES:
                    return
            if not page.has_more or not page.events:
                return

    # -- interrupts ---------------------------------------------------------------

    async def interrupt(self, run: RunRecord, timeout: float) -> bool | None:
        """Ping the run's owner, flag the run, and wait for it to end (None: its lease ran out first)."""
        host = self._host
        request = OwnerRequest(op="interrupt", session_id=run.session_id, run_id=run.run_id)
        try:  # the ping first: it is what stops the run at once
            await self._db(send_owner_request, self._realm_id, run.owner, request)
        except StoreError as exc:
            log.warning("could not ping the owner of run %s: %s", run.run_id, exc)
        # The flag reaches the owner with its next lease renewal if the ping did not (a lost
        # connection). False: not running any more; the run's status below says how it ended.
        await host.store_call(host.store.request_interrupt, run.session_id, run.run_id)
        deadline = trio.current_time() + timeout
        while True:
            ping = self._next_ping(run.session_id)
            current = await host.store_call(host.store.get_run, run.run_id)
            if current is None or current.status != "running":
                return current is not None and current.status == "interrupted"
            if trio.current_time() >= deadline or 0 < current.lease_expires_at_ms <= now_ms():
                return None  # the owner is gone: the caller closes the run once it is stale
            with trio.move_on_after(0.25):
                await ping.wait()


async def _free(actor: LocalSession) -> bool:
    """Wait (briefly) until the actor relays nothing and runs no turn; False if it never does."""
    with trio.move_on_after(RELAY_WAIT):
        while not actor.wants_foreign_events():
            if not actor.has_readers():
                return False
            await trio.sleep(0.005)
        return True
    return False
