"""The in-process API: one typed facade over the actors.

:class:`SessionService` is what every surface (CLI, JSON-RPC, REST, MCP) calls,
and what a Python program embedding the host uses directly. Each method turns
into a typed message to the realm supervisor or a session actor and waits for
the one-shot reply. Open one with :func:`actors.open_service`::

    async with open_service(realm_id="team-alpha") as service:
        result = await service.create_session("What is the capital of France?")
        print(result.text)
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Any


from meerkat.agent import Tool
from meerkat.config import ConfigEnvelope, config_to_dict
from meerkat.errors import SessionNotFound
from meerkat.events import EventEnvelope
from meerkat.realm import RealmHandle
from meerkat.usage import Usage
from meerkat.validation import (
    known_session_id,
    validate_cursor,
    validate_labels,
    validate_page,
    validate_prompt,
)
from meerkat.views import HistoryPage, InterruptResult, RunResult, SessionSummary, SessionView, session_ref

from .bus import Subscription
from .history_api import HistoryAPI
from .live_api import LiveSessionAPI
from .messages import (
    Archive,
    CreateParams,
    CreateSession,
    GetConfig,
    Interrupt,
    ListSessions,
    PatchConfig,
    Read,
    SetConfig,
    StartTurn,
    Subscribe,
    TurnRequest,
)
from .realm import RealmStatistics, RealmSupervisor

__all__ = ["SessionService", "TurnStream", "ConfigView"]


@dataclass(frozen=True, slots=True)
class ConfigView:
    """The realm config with its generation and where it lives."""

    config: dict[str, Any]
    generation: int
    realm_id: str
    instance_id: str | None
    backend: str
    resolved_paths: dict[str, str] | None

    def to_wire(self) -> dict[str, Any]:
        """The upstream ``ConfigEnvelope`` shape."""
        body: dict[str, Any] = {
            "config": self.config, "generation": self.generation, "realm_id": self.realm_id,
            "instance_id": self.instance_id, "backend": self.backend,
        }
        if self.resolved_paths is not None:
            body["resolved_paths"] = self.resolved_paths
        return body


class TurnStream:
    """A running turn's events, live, ending after its terminal event; then :meth:`result`.

    ::

        stream = await service.start_turn_streaming(session_id, "Tell me a story")
        async for envelope in stream:
            if envelope.type == "text_delta":
                print(envelope.payload.delta, end="")
        result = await stream.result()   # raises RequestCancelled if interrupted
    """

    def __init__(self, session_id: str, run_id: str, subscription: Subscription, done: Any) -> None:
        self.session_id = session_id
        self.run_id = run_id
        self._subscription = subscription
        self._done = done

    def __aiter__(self) -> "TurnStream":
        return self

    async def __anext__(self) -> EventEnvelope:
        return await self._subscription.__anext__()

    async def result(self) -> RunResult:
        """The run's result once it has ended (raises the run's error)."""
        return await self._done.wait()

    async def aclose(self) -> None:
        """Stop following events; the turn itself goes on."""
        self._subscription.close()

    async def __aenter__(self) -> "TurnStream":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._subscription.close()


class SessionService(LiveSessionAPI, HistoryAPI):
    """Create, continue, stream, list, read, interrupt and archive sessions of one realm
    (and, from :class:`~actors.live_api.LiveSessionAPI`, its event log, inputs and run-fenced stop; from
    :class:`~actors.history_api.HistoryAPI`, forks, transcript revisions, system-prompt updates,
    instruction activations and exports)."""

    def __init__(self, supervisor: RealmSupervisor) -> None:
        self._sup = supervisor

    @property
    def realm(self) -> RealmHandle:
        """The realm this service serves."""
        return self._sup.realm

    @property
    def supervisor(self) -> RealmSupervisor:
        """The realm supervisor (for monitoring and tests)."""
        return self._sup

    # -- sessions -------------------------------------------------------------

    async def create_session(self, prompt: Any = None, *, model: str | None = None, provider: str | None = None,
                             system_prompt: str | None = None, max_tokens: int | None = None,
                             provider_params: dict[str, Any] | None = None, labels: dict[str, str] | None = None,
                             budget_max_tokens: int | None = None, run_immediately: bool = True,
                             additional_instructions: list[str] | None = None) -> RunResult:
        """Create a session and (unless ``run_immediately=False`` or no prompt) run its first turn
        (``additional_instructions`` reach the model for that first turn only)."""
        if run_immediately and prompt is not None:
            _, message = await self._create_and_start(prompt, stream=False, model=model, provider=provider,
                                                      system_prompt=system_prompt, max_tokens=max_tokens,
                                                      provider_params=provider_params, labels=labels,
                                                      budget_max_tokens=budget_max_tokens,
                                                      additional_instructions=additional_instructions)
            return await message.done.wait()
        record = await self._create(CreateParams(model, provider, system_prompt, max_tokens, provider_params,
                                                 labels, budget_max_tokens))
        return RunResult(session_id=record.session_id, run_id=None, text="", turns=0, tool_calls=0,
                         usage=Usage(), run_usage=Usage(), session_ref=session_ref(self._sup.realm_id,
                                                                                   record.session_id))

    async def create_session_streaming(self, prompt: Any, **options: Any) -> TurnStream:
        """Create a session and start its first turn; returns the live event stream."""
        session_id, message = await self._create_and_start(prompt, stream=True, **options)
        run_id, subscription = await message.accepted.wait()
        assert subscription is not None
        return TurnStream(session_id, run_id, subscription, message.done)

    async def _create(self, params: CreateParams) -> Any:
        return await self._sup.ask(CreateSession(params))

    async def _create_and_start(self, prompt: Any, *, stream: bool, additional_instructions: list[str] | None = None,
                                **options: Any) -> tuple[str, StartTurn]:
        validate_prompt(prompt)  # before creating, so a bad prompt leaves no empty session behind
        record = await self._create(CreateParams(**options, first_turn=True))
        message = StartTurn(TurnRequest(prompt=prompt, additional_instructions=tuple(additional_instructions or ())),
                            stream=stream)
        await self._sup.deliver(record.session_id, message)
        return record.session_id, message

    async def start_turn(self, session_id: str, prompt: Any, *, model: str | None = None,
                         provider: str | None = None, system_prompt: str | None = None,
                         max_tokens: int | None = None, provider_params: dict[str, Any] | None = None,
                         additional_instructions: list[str] | None = None) -> RunResult:
        """Run one turn on an existing session and return its result.

        ``additional_instructions`` reach the model (after the system prompt) for this turn only."""
        message = StartTurn(TurnRequest(prompt, model, provider, system_prompt, max_tokens, provider_params,
                                        tuple(additional_instructions or ())), stream=False)
        await self._sup.deliver(session_id, message)
        return await message.done.wait()

    async def start_turn_streaming(self, session_id: str, prompt: Any, *, model: str | None = None,
                                   provider: str | None = None, system_prompt: str | None = None,
                                   max_tokens: int | None = None,
                                   provider_params: dict[str, Any] | None = None,
                                   additional_instructions: list[str] | None = None) -> TurnStream:
        """Start a turn and return its live events; raises SESSION_BUSY etc. at once."""
        message = StartTurn(TurnRequest(prompt, model, provider, system_prompt, max_tokens, provider_params,
                                        tuple(additional_instructions or ())), stream=True)
        await self._sup.deliver(session_id, message)
        run_id, subscription = await message.accepted.wait()
        assert subscription is not None
        return TurnStream(known_session_id(session_id), run_id, subscription, message.done)

    async def list_sessions(self, *, limit: int | None = None, offset: int | None = None,
                            labels: dict[str, str] | None = None) -> list[SessionSummary]:
        """Live sessions, most recently updated first; ``labels`` keeps those having every pair."""
        limit, offset = validate_page(limit, offset)
        return await self._sup.ask(ListSessions(limit, offset, validate_labels(labels) or None))

    async def read_session(self, session_id: str) -> SessionView:
        """The session's state (SESSION_NOT_FOUND once archived)."""
        message = Read()
        await self._sup.deliver(session_id, message)
        return await message.reply.wait()

    async def read_history(self, session_id: str, *, offset: int = 0, limit: int | None = None,
                           include_archived: bool = True) -> HistoryPage:
        """A page of the transcript, oldest first; archived sessions stay readable unless
        ``include_archived=False`` (``rkat-rpc`` follows upstream there: archived is not found)."""
        page_limit, offset = validate_page(limit, offset)
        sid = known_session_id(session_id)
        store = self._sup.store
        record = await self._sup.store_call(partial(store.get_session, sid, include_archived=include_archived))
        if record is None:
            raise SessionNotFound(session_id)
        rows = await self._sup.store_call(partial(store.read_messages, sid, offset=offset, limit=page_limit))
        total = record.message_count
        return HistoryPage(session_id=sid, message_count=total, offset=offset, limit=page_limit,
                           has_more=offset + len(rows) < total, messages=rows,
                           session_ref=session_ref(self._sup.realm_id, sid))

    async def archive(self, session_id: str) -> None:
        """Hide the session from list and read; a running turn finishes first."""
        message = Archive()
        await self._sup.deliver(session_id, message)
        await message.reply.wait()

    async def interrupt(self, session_id: str) -> InterruptResult:
        """Cancel the running turn and wait until it has ended; a no-op when idle."""
        message = Interrupt()
        await self._sup.deliver(session_id, message)
        return await message.reply.wait()

    async def subscribe(self, session_id: str, *, after_seq: int | None = None) -> Subscription:
        """Follow the session's events, live, or from just after ``after_seq``.

        Resuming replays the in-memory ring and, beyond it, the durable event log
        (so it works after restarts); STALE_CURSOR if retention pruned events after the cursor.
        """
        message = Subscribe(validate_cursor(after_seq))
        await self._sup.deliver(session_id, message)
        subscription = await message.reply.wait()
        if after_seq is not None:
            await self._resume_from_log(session_id, subscription, after_seq)
        return subscription

    # -- config -----------------------------------------------------------------

    def _config_view(self, envelope: ConfigEnvelope) -> ConfigView:
        realm = self._sup.realm
        return ConfigView(config=config_to_dict(envelope.config), generation=envelope.generation,
                          realm_id=realm.realm_id, instance_id=realm.instance_id, backend=realm.backend,
                          resolved_paths=realm.resolved_paths())

    async def get_config(self) -> ConfigView:
        """The realm config and its generation."""
        return self._config_view(await self._sup.ask(GetConfig()))

    async def set_config(self, config: dict[str, Any], *, expected_generation: int | None = None) -> ConfigView:
        """Replace the config; missing keys take their defaults."""
        return self._config_view(await self._sup.ask(SetConfig(config, expected_generation)))

    async def patch_config(self, patch: dict[str, Any], *, expected_generation: int | None = None) -> ConfigView:
        """Apply an RFC 7396 merge patch (``null`` removes a key, restoring its default)."""
        return self._config_view(await self._sup.ask(PatchConfig(patch, expected_generation)))

    async def models_catalog(self) -> dict[str, Any]:
        """The ``models/catalog`` result for this realm (built-in models plus its self-hosted aliases)."""
        from meerkat.providers.catalog import catalog_wire

        envelope = await self._sup.ask(GetConfig())
        return catalog_wire(envelope.config.self_hosted)

    # -- tools and monitoring ------------------------------------------------------

    def register_tool(self, tool: Tool) -> None:
        """Make a tool available to the model from the next model call on."""
        self._sup.tools.register(tool)

    def statistics(self) -> RealmStatistics:
        """Actors, mailboxes and counters of this realm."""
        return self._sup.statistics()
