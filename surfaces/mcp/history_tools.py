"""``meerkat_fork`` and ``meerkat_export``: the history tools an agent uses to branch a conversation
and to hand a trajectory on (see :mod:`actors.history_api`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec

from .arguments import SessionId, _Arguments

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["ForkArguments", "ExportArguments", "HistoryTools", "FORK_DESCRIPTION", "EXPORT_DESCRIPTION"]

_D = msgspec.Meta

FORK_DESCRIPTION = (
    "Branch a conversation: create a new session whose transcript is the first `message_index` messages of "
    "`session_id` (all of them when omitted), to retry from an earlier point or explore an alternative without "
    "touching the original. The source must be idle (SESSION_BUSY otherwise) and is never changed. Returns the "
    "new session_id (continue it with meerkat_resume), message_count and fork_point. The fork keeps the "
    "source's model, settings and labels.")
EXPORT_DESCRIPTION = (
    "Export a session's transcript: format \"atif\" (default) gives an ATIF trajectory (schema_version, agent, "
    "steps with source user/agent/system, tool_calls with their observation results, final_metrics with token "
    "usage) for evaluation tools; \"json\" the raw messages; \"markdown\" a readable text. The document is under "
    "`document`.")


class ForkArguments(_Arguments):
    """Arguments of ``meerkat_fork``."""

    session_id: SessionId
    message_index: Annotated[int, _D(ge=0, description="How many messages of the source to keep, from the "
                                                       "start (see meerkat_read's message_count); default all.")
                             ] | None = None
    labels: Annotated[dict[str, str], _D(description="Labels of the new session; default the source's.")
                      ] | None = None


class ExportArguments(_Arguments):
    """Arguments of ``meerkat_export``."""

    session_id: SessionId
    format: Annotated[Literal["atif", "json", "markdown"], _D(
        description="atif (default): ATIF trajectory; json: the messages; markdown: for people.")] = "atif"


class HistoryTools:
    """The handlers, bound to one service."""

    def __init__(self, service: "SessionService") -> None:
        self._service = service

    async def fork(self, ctx: Any, args: ForkArguments) -> dict[str, Any]:
        """``meerkat_fork``."""
        result = await self._service.fork_session(args.session_id, message_index=args.message_index,
                                                  labels=args.labels)
        return result.to_wire()

    async def export(self, ctx: Any, args: ExportArguments) -> dict[str, Any]:
        """``meerkat_export``."""
        document = await self._service.export_session(args.session_id, format=args.format)
        return {"session_id": args.session_id, "format": args.format, "document": document}
