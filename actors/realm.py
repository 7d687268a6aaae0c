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
import time
from dataclasses import dataclass
from functools import partial
from typing import Any, Callable, TypeVar

import trio

from meerkat import observability
from meerkat.agent import ToolRegistry
from meerkat.config import ConfigStore
from meerkat.errors import InternalError, InvalidParams, MeerkatError, StoreError
from meerkat.ids import new_uuid7
from meerkat.providers import ProviderPool, resolve_model, validate_provider_params
from meerkat.providers.credentials import ensure_credentials
from meerkat.realm import RealmHandle
from meerkat.store import SessionRecord, SessionStore, current_owner
from meerkat.transcript import Message, SystemMessage, now_ms, rfc3339_from_ms
from meerkat.validation import MAX_OUTPUT_TOKENS, known_session_id, validate_labels, validate_optional_positive_int
from meerkat.views import SessionSummary

from .coordination import Coordinator
from .coordinators import open_coordinator
from .leases import LeaseKeeping
from .mailbox import Mailbox, MailboxClosed
from .messages import CreateSession, GetConfig, ListSessions, PatchConfig, RealmMessage, SessionMessage, SetConfig
from .options import HostOptions as HostOptions
from .realm_config import ConfigGenerations
from .session import SessionActor
from .storeio import StoreIO

__all__ = ["HostOptions", "RealmSupervisor", "RealmStatistics"]

log = logging.getLogger("rkat.realm")
T = TypeVar("T")


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


class RealmSupervisor(LeaseKeeping, ConfigGenerations):
    """See the module docstring. Session actors see it as a :class:`actors.session_host.SessionHost`,
    its coordinator as a :class:`actors.coordination.CoordinationHost`."""

    def __init__(self, realm: RealmHandle, store: SessionStore, config_store: ConfigStore,
                 tools: ToolRegistry, options: HostOptions | None = None,
                 coordinator: Coordinator | None = None) -> None:
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
        self._config = None
        self._config_stamp = None
        # A database server runs calls side by side, one per pooled connection: batched into
        # two threads, every session's commit would wait behind the others' round trips.
        pool = getattr(getattr(store, "database", None), "pool", None)
        self.io = StoreIO(workers=pool.max_size, max_batch=1) if pool is not None else StoreIO()
        #: How this process reaches other processes' runs on the realm (and they ours).
        self.coordinator = coordinator or open_coordinator(realm, self)
        #: Other processes may share the realm: leases, coordination and fresh reads apply.
        self.shared = self.coordinator.shared
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
                await nursery.start(self.coordinator.serve)
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
                self.coordinator.close()

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

    @property
    def nursery(self) -> trio.Nursery:
        """The supervisor's nursery: actors, and background work of its coordinator."""
        assert self._nursery is not None, "the supervisor is not running"
        return self._nursery

    def live_actor(self, session_id: str) -> SessionActor | None:
        """The session's actor if it is alive in this process (never starts one)."""
        return self._actors.get(session_id)

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

    def forget(self, actor: SessionActor) -> None:
        """Drop a retiring actor from the table (the next message for its session starts a new one)."""
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
        config = await self.config_for_new_session()
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
            max_tokens=validate_optional_positive_int(params.max_tokens, "max_tokens", MAX_OUTPUT_TOKENS),
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

    # -- monitoring -------------------------------------------------------------

    def statistics(self) -> RealmStatistics:
        """A snapshot of the realm's actors and mailbox."""
        mailbox = self.mailbox.statistics()
        running = sum(1 for a in self._actors.values() if a.running_run_id is not None)
        return RealmStatistics(
            realm_id=self.realm_id, live_actors=len(self._actors), running_turns=running,
            actors_started=self._started, actors_retired=self._retired, actors_crashed=self._crashed,
            mailbox_queued=mailbox.queued, mailbox_handled=mailbox.handled)
