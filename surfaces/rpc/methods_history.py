"""The history methods of ``rkat-rpc`` (published meerkat-sdk 0.9.6 contract).

``session/fork_at``, ``session/fork_replace``, ``session/rewrite_transcript``,
``session/transcript_revisions``, ``session/transcript_revision``,
``session/restore_transcript_revision``, ``session/update_system_prompt``,
``session/activate_instruction``, ``session/instruction_activations`` and
``session/export_atif``: each one call of :class:`actors.history_api.HistoryAPI`,
whose results already have the SDK's shapes. Params the SDK may send that this
host does not act on (``tool_access_policy``) are logged and ignored.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from meerkat.errors import InvalidParams

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["HistoryMethods", "HISTORY_METHOD_NAMES"]

log = logging.getLogger("rkat.rpc")

Handler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


def _required(params: dict[str, Any], name: str) -> Any:
    if params.get(name) is None:
        raise InvalidParams(f"missing field `{name}`")
    return params[name]


def _session_id(params: dict[str, Any]) -> str:
    value = _required(params, "session_id")
    if not isinstance(value, str):
        raise InvalidParams(f"session_id must be a string, got {type(value).__name__}")
    return value


class HistoryMethods:
    """The history method handlers of one connection."""

    def __init__(self, service: "SessionService") -> None:
        self._service = service
        self.table: dict[str, Handler] = {
            "session/fork_at": self.fork_at,
            "session/fork_replace": self.fork_replace,
            "session/rewrite_transcript": self.rewrite_transcript,
            "session/transcript_revisions": self.transcript_revisions,
            "session/transcript_revision": self.transcript_revision,
            "session/restore_transcript_revision": self.restore_transcript_revision,
            "session/update_system_prompt": self.update_system_prompt,
            "session/activate_instruction": self.activate_instruction,
            "session/instruction_activations": self.instruction_activations,
            "session/export_atif": self.export_atif,
        }

    async def _fork(self, params: dict[str, Any], replacement: Any) -> dict[str, Any]:
        if params.get("tool_access_policy") is not None:
            log.info("session/fork: ignoring tool_access_policy (this host has no tool access policies)")
        result = await self._service.fork_session(
            _session_id(params), message_index=_required(params, "message_index"), replacement=replacement,
            labels=params.get("labels"), inherited_instructions=params.get("inherited_instructions"),
            running_behavior=params.get("running_behavior"))
        return result.to_wire()

    async def fork_at(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._fork(params, None)

    async def fork_replace(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._fork(params, _required(params, "replacement"))

    async def rewrite_transcript(self, params: dict[str, Any]) -> dict[str, Any]:
        result = await self._service.rewrite_transcript(
            _session_id(params), selection=_required(params, "selection"),
            replacement=_required(params, "replacement"), reason=_required(params, "reason"),
            actor=params.get("actor"), expected_parent_revision=params.get("expected_parent_revision"),
            running_behavior=params.get("running_behavior"))
        return result.to_wire()

    async def restore_transcript_revision(self, params: dict[str, Any]) -> dict[str, Any]:
        result = await self._service.restore_transcript_revision(
            _session_id(params), _required(params, "revision"), reason=_required(params, "reason"),
            actor=params.get("actor"), expected_parent_revision=params.get("expected_parent_revision"),
            running_behavior=params.get("running_behavior"))
        return result.to_wire()

    async def transcript_revisions(self, params: dict[str, Any]) -> dict[str, Any]:
        return (await self._service.transcript_revisions(_session_id(params), offset=params.get("offset"),
                                                         limit=params.get("limit"))).to_wire()

    async def transcript_revision(self, params: dict[str, Any]) -> dict[str, Any]:
        offset = params.get("offset")
        return (await self._service.transcript_revision(
            _session_id(params), _required(params, "revision"), offset=0 if offset is None else offset,
            limit=params.get("limit"))).to_wire()

    async def update_system_prompt(self, params: dict[str, Any]) -> dict[str, Any]:
        return (await self._service.update_system_prompt(
            _session_id(params), _required(params, "key"), _required(params, "content"),
            expected_version=params.get("expected_version"), target_message_index=params.get("target_message_index"),
            actor=params.get("actor"), expected_parent_revision=params.get("expected_parent_revision"))).to_wire()

    async def activate_instruction(self, params: dict[str, Any]) -> dict[str, Any]:
        return (await self._service.activate_instruction(_session_id(params),
                                                         _required(params, "activation"))).to_wire()

    async def instruction_activations(self, params: dict[str, Any]) -> dict[str, Any]:
        limit = params.get("limit")
        return (await self._service.instruction_activations(
            _session_id(params), namespace=params.get("namespace"), key=params.get("key"),
            offset=params.get("offset"), limit=100 if limit is None else limit)).to_wire()

    async def export_atif(self, params: dict[str, Any]) -> dict[str, Any]:
        return await self._service.export_session(
            _session_id(params), format="atif", agent_name=params.get("agent_name"),
            agent_version=params.get("agent_version"), model_name=params.get("model_name"))


#: The methods this module adds, in the order ``initialize`` lists them.
HISTORY_METHOD_NAMES = ("session/fork_at", "session/fork_replace", "session/rewrite_transcript",
                        "session/transcript_revisions", "session/transcript_revision",
                        "session/restore_transcript_revision", "session/update_system_prompt",
                        "session/activate_instruction", "session/instruction_activations", "session/export_atif")
