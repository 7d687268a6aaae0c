"""The REST routes of the history API: forks, transcript revisions, the system prompt, instructions, export.

=======================================================  ==========================================
``POST /sessions/{id}/fork``                             fork (``message_index`` or all rows)
``GET  /sessions/{id}/revisions``                        list revisions (head first field)
``POST /sessions/{id}/revisions``                        rewrite rows as a new revision
``GET  /sessions/{id}/revisions/{revision}``             read a revision's rows
``POST /sessions/{id}/revisions/{revision}/restore``     restore a revision as a new one
``PUT  /sessions/{id}/system_prompt``                    set the next version of a prompt key
``POST /sessions/{id}/instructions``                     activate an instruction revision
``GET  /sessions/{id}/instructions``                     list activations
``GET  /sessions/{id}/export?format=atif|json|markdown`` export
=======================================================  ==========================================

Each handler is one call of :class:`actors.history_api.HistoryAPI`; bodies and
results are the ``rkat-rpc`` ones (the published SDK's shapes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from quart import Response, request
from quart_trio import QuartTrio

from .body_fields import reject_unknown_fields
from .requests import int_query, json_object
from .responses import json_response

if TYPE_CHECKING:
    from .state import RestState

__all__ = ["add_history_routes"]


def add_history_routes(app: QuartTrio, state: "RestState", locate: Callable[[str], str]) -> None:
    """Register the history routes on ``app``."""
    service = state.service

    @app.post("/sessions/<session_id>/fork")
    async def fork_session(session_id: str) -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, "ForkRequest")
        result = await service.fork_session(
            locate(session_id), message_index=body.get("message_index"), replacement=body.get("replacement"),
            labels=body.get("labels"), inherited_instructions=body.get("inherited_instructions"))
        return json_response(result.to_wire(), status=201)

    @app.get("/sessions/<session_id>/revisions")
    async def list_revisions(session_id: str) -> Response:
        result = await service.transcript_revisions(locate(session_id), offset=int_query(request, "offset"),
                                                    limit=int_query(request, "limit"))
        return json_response(result.to_wire())

    @app.post("/sessions/<session_id>/revisions")
    async def rewrite_transcript(session_id: str) -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, "RewriteRequest")
        result = await service.rewrite_transcript(
            locate(session_id), selection=body.get("selection"), replacement=body.get("replacement", []),
            reason=body.get("reason") or {"kind": "edit"}, actor=body.get("actor"),
            expected_parent_revision=body.get("expected_parent_revision"))
        return json_response(result.to_wire())

    @app.get("/sessions/<session_id>/revisions/<revision>")
    async def read_revision(session_id: str, revision: str) -> Response:
        result = await service.transcript_revision(locate(session_id), revision,
                                                   offset=int_query(request, "offset") or 0,
                                                   limit=int_query(request, "limit"))
        return json_response(result.to_wire())

    @app.post("/sessions/<session_id>/revisions/<revision>/restore")
    async def restore_revision(session_id: str, revision: str) -> Response:
        raw = await request.get_data(as_text=False)
        body = await json_object(request) if raw.strip() else {}
        reject_unknown_fields(body, "RestoreRequest")
        result = await service.restore_transcript_revision(
            locate(session_id), revision, reason=body.get("reason") or {"kind": "restore"}, actor=body.get("actor"),
            expected_parent_revision=body.get("expected_parent_revision"))
        return json_response(result.to_wire())

    @app.put("/sessions/<session_id>/system_prompt")
    async def update_system_prompt(session_id: str) -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, "SystemPromptRequest")
        result = await service.update_system_prompt(
            locate(session_id), body.get("key", "main"), body.get("content"),
            expected_version=body.get("expected_version"), target_message_index=body.get("target_message_index"),
            actor=body.get("actor"), expected_parent_revision=body.get("expected_parent_revision"),
            adopt_existing=True)
        return json_response(result.to_wire())

    @app.post("/sessions/<session_id>/instructions")
    async def activate_instruction(session_id: str) -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, "InstructionActivationRequest")
        result = await service.activate_instruction(locate(session_id), body)
        return json_response(result.to_wire())

    @app.get("/sessions/<session_id>/instructions")
    async def instruction_activations(session_id: str) -> Response:
        result = await service.instruction_activations(
            locate(session_id), namespace=request.args.get("namespace"), key=request.args.get("key"),
            offset=int_query(request, "offset"), limit=int_query(request, "limit") or 100)
        return json_response(result.to_wire())

    @app.get("/sessions/<session_id>/export")
    async def export_session(session_id: str) -> Response:
        # Absent means ATIF; present but empty (``?format=``) is a wrong value, refused as any other.
        fmt = request.args.get("format", "atif")
        document = await service.export_session(
            locate(session_id), format=fmt, agent_name=request.args.get("agent_name"),
            agent_version=request.args.get("agent_version"), model_name=request.args.get("model_name"))
        if fmt == "markdown":
            return Response(document, content_type="text/markdown; charset=utf-8")
        return json_response(document)
