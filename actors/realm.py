"""RealmSupervisor: one per realm in a process.

It owns the realm's store and config, starts session actors on demand and
supervises them one-for-one: an actor that crashes fails only what it had
pending, is dropped, and is rebuilt from the store by the next message for its
session. On start it reconciles runs left ``running`` by a process that died,
closing them as interrupted. Config writes go through its mailbox one at a time
(one writer per process; the file lock orders processes).
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from functools import partial
from typing import Any, Callable, TypeVar

import trio

from meerkat import observability
from meerkat.agent import ToolRegistry
from meerkat.config import Config, ConfigEnvelope, ConfigStore
from meerkat.errors import InternalError, InvalidParams, MeerkatError, SessionBusy, SessionNotFound, StoreError
from meerkat.ids import new_uuid7
from meerkat.providers import ProviderPool, resolve_model, validate_provider_params
from meerkat.providers.credentials import ensure_credentials
from meerkat.realm import RealmHandle
from meerkat.store import RunRecord, SessionRecord, SessionStore, current_owner, owner_is_alive
from meerkat.transcript import Message, SystemMessage, now_ms, rfc3339_from_ms
from meerkat.validation import known_session_id, validate_labels, validate_optional_positive_int
from meerkat.views import SessionSummary

from .mailbox import Mailbox, MailboxClosed
from .messages import (
    CreateSession,
    GetConfig,
    ListSessions,
    PatchConfig,
    RealmMessage,
    SessionMessage,
    SetConfig,
)
from .bus import Subscription
from .live import LiveServer, push_events
from .session import SessionActor
from .storeio import StoreIO
from .watchers import Watcher, WatchRegistry

__all__ = ["HostOptions", "RealmSupervisor", "RealmStatistics"]

log = logging.getLogger("rkat.realm")
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class HostOptions:
    """Tunables of the actor runtime."""

    #: Seconds an idle actor with no subscribers stays in memory before hibernating.
    idle_timeout: float = 60.0
    mailbox_capacity: int = 64
    #: Events each session keeps for subscribers resuming from a cursor.
    ring_size: int = 1024
    #: Queue bound of a plain subscriber before it gets ``stream_truncated``.
    subscriber_capacity: int = 256
    #: Queue bound of the subscription that follows one streamed turn.
    turn_stream_capacity: int = 4096
    #: Seconds between checks for config changes made by other processes.
    config_poll_interval: float = 0.5
    #: Seconds between WAL checkpoints of a sqlite store (run off the commit path).
    checkpoint_interval: float = 0.25
    #: Seconds a running turn's lease lasts without renewal. A process that stops
    #: renewing (hung, or dead on another host) loses the session after this long;
    #: one that died on this machine loses it at once. ``RKAT_LEASE_SECS`` overrides.
    lease_ttl: float = field(default_factory=lambda: _env_seconds("RKAT_LEASE_SECS", 10.0))
    #: Seconds between lease renewals (also how often an owner looks for interrupt
    #: requests that could not reach it over the live link).
    lease_renew_interval: float = 1.0
    #: Seconds between looks for turns of other processes on sessions someone here follows.
    foreign_poll_interval: float = 0.1


#: Seconds a process shutting down gives its pushes to other processes to deliver a turn's last events.
PUSH_GRACE = 2.0


def _env_seconds(name: str, default: float) -> float:
    """A positive number of seconds from the environment, else ``default``."""
    try:
        value = float(os.environ.get(name, ""))
    except ValueError:
        return default
    return value if value > 0 else default


@dataclass(frozen=True, slots=True)
class RealmStatistics:
    """The realm: live actors, mailbox, lifetime counters."""

    realm_id: str
    live_actors: int
    running_turns: int
    actors_started: int
    actors_retired: int
    actors_crashed: int
    mailbox_queued: int
    mailbox_handled: int


class RealmSupervisor:
    """See the module docstring."""

    def __init__(self, realm: RealmHandle, store: SessionStore, config_store: ConfigStore,
                 tools: ToolRegistry, options: HostOptions | None = None) -> None:
        self.realm = realm
        self.realm_id = realm.realm_id
        self.store = store
        self.config_store = config_store
        self.tools = tools
        self.options = options or HostOptions()
        self.owner = current_owner()
        self.mailbox: Mailbox[RealmMessage] = Mailbox(self.options.mailbox_capacity)
        self._actors: dict[str, SessionActor] = {}
        self._nursery: trio.Nursery | None = None
        self._config: ConfigEnvelope | None = None
        self._config_stamp: tuple[int, int, int] | None = None
        self.io = StoreIO()
        #: Other processes may share a disk-backed realm: leases, the live link and fresh reads apply.
        self.shared = realm.backend != "memory"
        self.live = LiveServer(self)
        self._live_started = False
        self._live_lock = trio.Lock()
        #: One publish of followed sessions at a time, each computed when its turn comes, so an
        #: older set can never land after a newer one (a subscriber is answered only once it is on file).
        self._publish_lock = trio.Lock()
        #: Sessions that gained a reader here since they were last seen without one: the
        #: watch loop looks at these only, not at every live actor (thousands may idle).
        self._read_sessions: set[str] = set()
        self._foreign_poke = trio.Event()
        self.watch = WatchRegistry(realm.paths.root, self.owner) if self.shared else None
        #: Cancel scopes of event pushes to other processes (shielded: they may finish after a shutdown starts).
        self._pushes: set[trio.CancelScope] = set()
        self._closing = False
        #: Provider clients shared by this realm's turns (kept connections), closed when it stops.
        self.providers = ProviderPool()
        self._started = self._retired = self._crashed = 0

    # -- running ------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reconcile, then serve the mailbox until cancelled."""
        try:
            await self._run(task_status)
        finally:
            with trio.CancelScope(shield=True):
                await self.providers.aclose()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        async with trio.open_nursery() as nursery:
            if self.store.blocking:
                await nursery.start(self.io.run)
            await self._refresh_config()
            await self._close_stale_runs()
            self._nursery = nursery
            if self.shared:
                nursery.start_soon(self._watch_config)
                nursery.start_soon(self._keep_leases)
                nursery.start_soon(self._sweep_stale_runs)
                nursery.start_soon(self._watch_foreign_runs)
            if hasattr(self.store, "checkpoint"):
                nursery.start_soon(self._checkpoint_periodically)
            task_status.started()
            try:
                while True:
                    message = await self.mailbox.receive()
                    if isinstance(message, (SetConfig, PatchConfig)):
                        await self._write_config(message)
                    else:
                        nursery.start_soon(self._handle, message)
            finally:
                self._wind_down_pushes()
                if self.watch is not None:
                    self.watch.close()

    async def store_call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a store method, in a worker thread when the backend blocks on I/O."""
        if observability.enabled():
            return await self._timed_store_call(fn, *args)
        if not self.store.blocking:
            return fn(*args)
        return await self.io.call(fn, *args)

    async def _timed_store_call(self, fn: Callable[..., T], *args: Any) -> T:
        started = time.perf_counter()
        ok = False
        try:
            result = fn(*args) if not self.store.blocking else await self.io.call(fn, *args)
            ok = True
            return result
        finally:
            observability.store_operation(getattr(fn, "__name__", "call"), time.perf_counter() - started, ok)

    # -- leases and other processes' runs --------------------------------------

    async def live_link(self) -> tuple[str | None, str | None]:
        """This process's live link (endpoint, token) for run records; started on first use."""
        if not self.shared:
            return None, None
        async with self._live_lock:
            if not self._live_started:
                assert self._nursery is not None
                try:
                    await self._nursery.start(self.live.run)
                except OSError as exc:  # no loopback socket: turns still run, others just can't follow them
                    log.warning("cannot serve the live link: %s", exc)
                    return None, None
                self._live_started = True
        return self.live.endpoint, self.live.token

    def live_actor(self, session_id: str) -> SessionActor | None:
        """The session's actor if it is alive in this process (never starts one)."""
        return self._actors.get(session_id)

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
        dead = not owner_is_alive(held.owner)
        reason = f"owner {held.owner} died" if dead else f"the lease of owner {held.owner} expired"
        closed = await self.store_call(partial(self.store.close_stale_run, session_id, run_id, now_ms=now_ms(),
                                               owner_dead=dead, reason=reason))
        if closed:
            log.warning("closed run %s of session %s as interrupted (%s)", run_id, session_id, reason)
            if (actor := self._actors.get(session_id)) is not None:
                actor.notice_store_change()
        return closed

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

    async def watchers_of(self, session_id: str) -> list[Watcher]:
        """Other processes following ``session_id``, to push a turn's events to."""
        if self.watch is None:
            return []
        cached = self.watch.cached_watchers_of(session_id)  # one stat on the loop: nothing changed
        if cached is not None:
            return cached
        return await self.io.call(self.watch.watchers_of, session_id)

    def start_push(self, watcher: Watcher, session_id: str, subscription: Subscription) -> None:
        """Send a turn's events to a following process, in the background."""
        assert self._nursery is not None
        self._nursery.start_soon(self._push, watcher, session_id, subscription)

    async def _push(self, watcher: Watcher, session_id: str, subscription: Subscription) -> None:
        # Shielded so a process shutting down right after its turn (``rkat run``) still
        # delivers the turn's last events; _wind_down_pushes bounds how long.
        with trio.CancelScope(shield=True) as scope:
            self._pushes.add(scope)
            if self._closing:
                scope.deadline = trio.current_time() + PUSH_GRACE
            try:
                await push_events(watcher, session_id, subscription)
            except Exception:  # a bug must cost this push only, never the realm's other work
                log.exception("push of session %s to %s failed", session_id, watcher.owner)
            finally:
                self._pushes.discard(scope)

    def _wind_down_pushes(self) -> None:
        self._closing = True
        deadline = trio.current_time() + PUSH_GRACE
        for scope in self._pushes:
            scope.deadline = min(scope.deadline, deadline)

    def note_reader(self, session_id: str) -> None:
        """A session got a reader here (see :meth:`_followed`)."""
        self._read_sessions.add(session_id)

    def _readers(self) -> list[SessionActor]:
        """The actors with readers here; sessions that lost theirs are forgotten."""
        actors = [self._actors.get(sid) for sid in tuple(self._read_sessions)]
        reading = [a for a in actors if a is not None and a.has_readers()]
        self._read_sessions = {a.session_id for a in reading}
        return reading

    def _followed(self) -> frozenset[str]:
        return frozenset(actor.session_id for actor in self._readers())

    async def publish_followed(self) -> None:
        """Tell other processes which sessions are followed here (so their turns push events)."""
        if self.watch is None:
            return
        async with self._publish_lock:
            if self._followed() == self.watch.published:
                return
            endpoint, token = await self.live_link()
            if endpoint is None or token is None:
                return
            await self.io.call(self.watch.publish, endpoint, token, self._followed())

    def poke_foreign_watch(self) -> None:
        """Look for other processes' turns now (someone just subscribed here)."""
        self._foreign_poke.set()

    async def _watch_foreign_runs(self) -> None:
        """Mirror other processes' turns into the buses of sessions followed here."""
        while True:
            with trio.move_on_after(self.options.foreign_poll_interval):
                await self._foreign_poke.wait()
            self._foreign_poke = trio.Event()
            try:
                await self.publish_followed()
            except MeerkatError as exc:
                log.warning("could not publish followed sessions: %s", exc)
            watched = [a for a in self._readers() if a.wants_foreign_events()]
            if watched:
                try:
                    await self._mirror_foreign_runs(watched)
                except MeerkatError as exc:
                    log.warning("could not look for turns of other processes: %s", exc)

    async def _mirror_foreign_runs(self, watched: list[SessionActor]) -> None:
        for actor in watched:
            record = await self.store_call(self.store.get_session, actor.session_id)
            if record is None:  # archived by another process: end the streams that follow it here
                actor.notice_archived_elsewhere()
                continue
            if record.active_run_id is None:
                continue
            run = await self.store_call(self.store.get_run, record.active_run_id)
            if run is not None and run.status == "running" and run.owner != self.owner:
                actor.mirror(run, record.last_seq)

    async def _checkpoint_periodically(self) -> None:
        """Keep the sqlite WAL short from a worker thread, so no turn's commit pays for it."""
        failing = False  # one warning per streak of failures (e.g. out of descriptors), not one a second
        while True:
            await trio.sleep(self.options.checkpoint_interval)
            try:
                await trio.to_thread.run_sync(self.store.checkpoint)  # type: ignore[attr-defined]
            except MeerkatError as exc:
                if not failing:
                    log.warning("WAL checkpoint failed (retrying quietly until it works again): %s", exc)
                failing = True
            else:
                if failing:
                    log.warning("WAL checkpoint works again")
                failing = False

    # -- sessions -------------------------------------------------------------

    def actor_for(self, session_id: str) -> SessionActor:
        """The live actor of a session, started (and loaded from the store) if needed."""
        actor = self._actors.get(session_id)
        if actor is None:
            actor = self._spawn(session_id, None)
        return actor

    def _spawn(self, session_id: str, record: SessionRecord | None,
               history: list[Message] | None = None) -> SessionActor:
        assert self._nursery is not None, "the supervisor is not running"
        actor = SessionActor(self, session_id, record, history)
        self._actors[session_id] = actor
        self._started += 1
        observability.actor_started(session_id)
        self._nursery.start_soon(self._supervise, actor)
        return actor

    async def _supervise(self, actor: SessionActor) -> None:
        try:
            await actor.run()
        except Exception as exc:  # one-for-one: only this actor's work fails
            self._crashed += 1
            log.error("session actor %s crashed; it will be rebuilt on next use",
                      actor.session_id, exc_info=exc)
            actor.crash(exc)
        except BaseException as exc:
            actor.crash(exc)
            raise

    def _forget(self, actor: SessionActor) -> None:
        if self._actors.get(actor.session_id) is actor:
            del self._actors[actor.session_id]
            self._retired += 1

    async def deliver(self, session_id: str, message: SessionMessage) -> None:
        """Post a message to a session's actor, restarting it if it just hibernated."""
        canonical = known_session_id(session_id)
        for _ in range(8):
            actor = self.actor_for(canonical)
            try:
                actor.mailbox.post_nowait(message)
                return
            except trio.WouldBlock:
                try:
                    await actor.mailbox.post(message)
                    return
                except MailboxClosed:
                    continue
            except MailboxClosed:
                continue
        raise StoreError(f"could not reach the actor of session {canonical}")

    async def ask(self, message: RealmMessage) -> Any:
        """Post a message to the supervisor and wait for its reply."""
        await self.mailbox.post(message)
        return await message.reply.wait()

    async def _handle(self, message: RealmMessage) -> None:
        try:
            if isinstance(message, CreateSession):
                message.reply.send(await self._create(message))
            elif isinstance(message, ListSessions):
                message.reply.send(await self._list(message))
            elif isinstance(message, GetConfig):
                message.reply.send(await self._refresh_config())
        except MeerkatError as exc:
            message.reply.fail(exc)
        except Exception as exc:  # a bug: the caller gets INTERNAL_ERROR, the supervisor goes on
            log.exception("realm request failed")
            message.reply.fail(InternalError(f"{type(exc).__name__}: {exc}"))

    async def _create(self, message: CreateSession) -> SessionRecord:
        params = message.params
        config = self.current_config()
        model, provider = resolve_model(params.model, params.provider, config)
        provider_params = validate_provider_params(provider, params.provider_params, model)
        if params.system_prompt is not None and not isinstance(params.system_prompt, str):
            raise InvalidParams("system_prompt must be a string")
        if params.first_turn:  # after the argument checks, which say more about what to fix
            ensure_credentials(provider)
        system_prompt = params.system_prompt if params.system_prompt is not None else config.agent.system_prompt
        now = now_ms()
        record = SessionRecord(
            session_id=new_uuid7(), created_at_ms=now, updated_at_ms=now, model=model, provider=provider,
            system_prompt=system_prompt,
            max_tokens=validate_optional_positive_int(params.max_tokens, "max_tokens"),
            provider_params=provider_params, labels=validate_labels(params.labels),
            instance_id=self.realm.instance_id,
            budget_max_tokens=validate_optional_positive_int(params.budget_max_tokens, "budget_max_tokens"),
        )
        initial: list[Message] = []
        if system_prompt:
            initial.append(SystemMessage(content=system_prompt, created_at=rfc3339_from_ms(now)))
        await self.store_call(self.store.create_session, record, initial)
        record.message_count = len(initial)
        self._spawn(record.session_id, record, history=[])  # a new session: nothing for the model yet
        return record

    async def _list(self, message: ListSessions) -> list[SessionSummary]:
        records = await self.store_call(partial(self.store.list_sessions, limit=message.limit,
                                                offset=message.offset, labels=message.labels))
        summaries = []
        for record in records:
            live = self._actors.get(record.session_id)
            running = (live is not None and live.running_run_id is not None) or record.active_run_id is not None
            summaries.append(SessionSummary.from_record(record, is_active=running, realm_id=self.realm_id))
        return summaries

    # -- config ---------------------------------------------------------------

    def current_config(self) -> Config:
        """The realm config, re-read first if another process changed it since (one ``stat`` tells).

        The re-read happens on the event loop: a small file, read only right
        after a change, so the next turn or session uses the new config at once.
        """
        assert self._config is not None
        if self.shared:
            stamp = self._stamp()
            if stamp != self._config_stamp:
                try:
                    self._config, self._config_stamp = self.config_store.get(), stamp
                except MeerkatError as exc:
                    log.warning("could not reload config: %s", exc)
        return self._config.config

    def _stamp(self) -> tuple[int, int, int] | None:
        if self.realm.backend == "memory":
            return None
        try:
            # Writes replace the file (a new inode), so equal stamps mean no write since.
            st = os.stat(self.realm.paths.root / "config_state.json")
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            return (0, 0, 0)

    async def _refresh_config(self) -> ConfigEnvelope:
        stamp = self._stamp()
        envelope = await self._config_io(self.config_store.get)
        self._config, self._config_stamp = envelope, stamp
        return envelope

    async def _watch_config(self) -> None:
        while True:
            await trio.sleep(self.options.config_poll_interval)
            if self._stamp() != self._config_stamp:
                try:
                    await self._refresh_config()
                except MeerkatError as exc:
                    log.warning("could not reload config: %s", exc)

    async def _config_io(self, fn: Callable[..., T], *args: Any) -> T:
        if self.realm.backend == "memory":
            return fn(*args)
        return await trio.to_thread.run_sync(partial(fn, *args))

    async def _write_config(self, message: SetConfig | PatchConfig) -> None:
        try:
            if isinstance(message, SetConfig):
                envelope = await self._config_io(self.config_store.set, message.config, message.expected_generation)
            else:
                envelope = await self._config_io(self.config_store.patch, message.patch, message.expected_generation)
            # No stamp: another process may write between our write and a stat, and a stamp of
            # its file would pass our envelope off as current. The next use re-reads once.
            self._config, self._config_stamp = envelope, None
            message.reply.send(envelope)
        except MeerkatError as exc:
            message.reply.fail(exc)
        except Exception as exc:
            log.exception("config write failed")
            message.reply.fail(StoreError(f"config write failed: {exc}"))

    # -- monitoring -------------------------------------------------------------

    def statistics(self) -> RealmStatistics:
        """A snapshot of the realm's actors and mailbox."""
        mailbox = self.mailbox.statistics()
        running = sum(1 for a in self._actors.values() if a.running_run_id is not None)
        return RealmStatistics(
            realm_id=self.realm_id, live_actors=len(self._actors), running_turns=running,
            actors_started=self._started, actors_retired=self._retired, actors_crashed=self._crashed,
            mailbox_queued=mailbox.queued, mailbox_handled=mailbox.handled)
