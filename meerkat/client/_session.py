"""A session handle: continue it, stream it, read it, interrupt or archive it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meerkat.usage import Usage
from meerkat.views import HistoryPage, RunResult

from ._history import RevisionList, RewriteInfo, SystemPromptInfo
from ._live import EventSubscription, InjectResult, StopReceipt
from ._stream import EventStream
from ._types import SessionDetails

if TYPE_CHECKING:
    from ._client import MeerkatClient

__all__ = ["Session"]


class Session:
    """One session of the connected realm; ``text``, ``usage``... are its last run's."""

    def __init__(self, client: "MeerkatClient", session_id: str, last_result: RunResult | None = None) -> None:
        self._client = client
        self.id = session_id
        self.last_result = last_result

    def __repr__(self) -> str:
        return f"Session(id={self.id!r})"

    @property
    def ref(self) -> str | None:
        """``<realm_id>:<session_id>``, the handle other surfaces accept."""
        return self.last_result.session_ref if self.last_result else None

    @property
    def text(self) -> str:
        """The last run's final text ("" before any run)."""
        return self.last_result.text if self.last_result else ""

    @property
    def usage(self) -> Usage:
        """The session's cumulative token usage after the last run."""
        return self.last_result.usage if self.last_result else Usage()

    @property
    def turns(self) -> int:
        """Model calls the last run made."""
        return self.last_result.turns if self.last_result else 0

    @property
    def tool_calls(self) -> int:
        """Tool calls the last run made."""
        return self.last_result.tool_calls if self.last_result else 0

    async def turn(self, prompt: Any, **options: Any) -> RunResult:
        """Run one turn and return its result (also kept as :attr:`last_result`).

        Options: ``model``, ``provider``, ``system_prompt``, ``max_tokens``, ``provider_params``,
        ``additional_instructions`` (this turn only).
        """
        result = await self._client._turn(self.id, prompt, options)
        self.last_result = result
        return result

    def stream(self, prompt: Any, **options: Any) -> EventStream:
        """Run one turn, yielding its events live (see :class:`EventStream`)."""
        params = self._client._turn_params(self.id, prompt, options, streaming=True)

        async def start(stream: EventStream) -> str:
            stream._follow_and_start(self.id, params)
            return self.id

        def keep(result: RunResult) -> None:
            self.last_result = result

        return EventStream(self._client, start, on_result=keep)

    async def history(self, *, offset: int = 0, limit: int | None = None) -> HistoryPage:
        """A page of the transcript, oldest first."""
        return await self._client.read_session_history(self.id, offset=offset, limit=limit)

    async def read(self) -> SessionDetails:
        """The session's state now."""
        return await self._client.read_session(self.id)

    async def interrupt(self) -> None:
        """Cancel the running turn (a no-op when idle); returns once the turn has ended."""
        await self._client._interrupt(self.id)

    async def fork(self, at: int | None = None, *, replacement: dict[str, Any] | None = None) -> "Session":
        """A new session with this one's first ``at`` rows (all when None); this session is unchanged."""
        info = await self._client.fork_session(self.id, at, replacement=replacement)
        return Session(self._client, info.session_id)

    async def revisions(self) -> RevisionList:
        """This transcript's rewrite commits and its head revision."""
        return await self._client.transcript_revisions(self.id)

    async def restore(self, revision: str) -> RewriteInfo:
        """Make an older revision's rows the transcript again (as a new revision)."""
        return await self._client.restore_transcript_revision(self.id, revision)

    async def update_system_prompt(self, content: str, **options: Any) -> SystemPromptInfo:
        """Set the system prompt from the next model call (see ``MeerkatClient.update_system_prompt``)."""
        return await self._client.update_system_prompt(self.id, content, **options)

    async def export_atif(self, **options: Any) -> dict[str, Any]:
        """This session as an ATIF trajectory document."""
        return await self._client.export_atif(self.id, **options)

    async def archive(self) -> None:
        """Hide the session: reads and turns then fail with SessionNotFound."""
        await self._client._call("session/archive", {"session_id": self.id})

    # -- live session ---------------------------------------------------------

    async def subscribe_events(self) -> EventSubscription:
        """Follow this session's events without starting a turn (see MeerkatClient.subscribe_events)."""
        return await self._client.subscribe_events(self.id)

    async def stop_run(self, run_id: str, *, reason: str = "") -> StopReceipt:
        """Stop ``run_id`` only if it is still this session's current run."""
        return await self._client.stop_run(self.id, run_id, reason=reason)

    async def inject_context(self, text: str, *, source: str | None = None,
                             idempotency_key: str | None = None) -> InjectResult:
        """Add a durable system message the model sees from its next call on."""
        return await self._client.inject_context(self.id, text, source=source, idempotency_key=idempotency_key)
