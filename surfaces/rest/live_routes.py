"""REST routes of the live-session API: the durable event log, run-fenced stop,
injected context, external events, inputs, realms and runtime info.

Same calls and rules as ``rkat-rpc`` (:mod:`actors.live_api`, :mod:`surfaces.live_wire`)::

    GET  /events?session_id=S&after=N&limit=L       events after cursor N (410 STALE_CURSOR if pruned)
    GET  /events/latest_cursor?session_id=S         {cursor: {scope, sequence}}
    GET  /events/snapshot?session_id=S              {cursor, snapshot}
    POST /sessions/{id}/stop_run                    {run_id, reason} -> {session_id, receipt}
    POST /sessions/{id}/inject_context              {text | content, source?, idempotency_key?}
    POST /sessions/{id}/external_events             {event_type, payload, blocks?, idempotency_key?} -> 202
    GET  /sessions/{id}/inputs/{input_id}           {state: an input's state, or null}
    GET  /sessions/{id}/inputs?idempotency_key=K    the same, by key
    GET  /realms, GET /realms/{realm_id}
    GET  /runtime/host_info, /runtime/health, /runtime/capabilities
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from quart import Response, request

from meerkat.errors import InvalidParams
from meerkat.validation import json_kind, validate_cursor
from surfaces import live_wire

from .requests import int_query, json_object
from .responses import json_response

if TYPE_CHECKING:
    from quart_trio import QuartTrio

    from .state import RestState

__all__ = ["add_live_routes"]

_STOP_FIELDS = frozenset({"run_id", "reason"})
_INJECT_FIELDS = frozenset({"text", "content", "source", "idempotency_key"})
_EXTERNAL_FIELDS = frozenset({"event_type", "payload", "blocks", "idempotency_key", "kind"})


def _only(body: dict[str, Any], allowed: frozenset[str]) -> None:
    for name in body:
        if name not in allowed:
            raise InvalidParams(f"unknown field `{name}` in the request body; accepted: {', '.join(sorted(allowed))}",
                                details={"field": name})


def _session_query() -> str:
    value = request.args.get("session_id")
    if not value:
        raise InvalidParams("query parameter `session_id` is required")
    return value


def add_live_routes(app: "QuartTrio", state: "RestState", locate: Any) -> None:
    """Register the routes above on ``app``; ``locate`` turns a path id (``realm:uuid`` too) into a session id."""
    service = state.service

    @app.get("/events")
    async def list_events() -> Response:
        scope = request.args.get("scope", "session")
        if scope != "session":
            raise InvalidParams(f"scope {scope!r} is not supported: this host has session scopes only")
        session_id = locate(_session_query())
        after = validate_cursor(int_query(request, "after"), "query parameter `after`") or 0
        return json_response(await live_wire.list_since_wire(service, session_id, after, int_query(request, "limit")))

    @app.get("/events/latest_cursor")
    async def latest_cursor() -> Response:
        session_id = locate(_session_query())
        latest = await service.latest_event_seq(session_id)
        return json_response({"contract_version": live_wire.contract_version(),
                              "cursor": live_wire.cursor(session_id, latest)})

    @app.get("/events/snapshot")
    async def snapshot() -> Response:
        session_id = locate(_session_query())
        return json_response(await live_wire.snapshot_wire(service, session_id))

    @app.post("/sessions/<session_id>/stop_run")
    async def stop_run(session_id: str) -> Response:
        sid = locate(session_id)
        body = await json_object(request)
        _only(body, _STOP_FIELDS)
        run_id = body.get("run_id")
        if not isinstance(run_id, str) or not run_id:
            raise InvalidParams("run_id must be a non-empty string")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidParams(f"reason must be a string or null, got {json_kind(reason)}")
        reason = reason or ""
        receipt = await service.stop_run(sid, run_id, reason=reason)
        return json_response({"session_id": sid, "receipt": receipt})

    @app.post("/sessions/<session_id>/inject_context")
    async def inject_context(session_id: str) -> Response:
        sid = locate(session_id)
        body = await json_object(request)
        _only(body, _INJECT_FIELDS)
        text = body.get("text")
        if "text" in body and not isinstance(text, str):
            raise InvalidParams(f"text must be a string, got {json_kind(text)}")
        content = body.get("content")
        if "content" in body:  # null too: `content` is an object when sent (or leave it out and give `text`)
            if not isinstance(content, dict) or content.get("type") != "text" or "text" not in content:
                raise InvalidParams('content must be {"type": "text", "text": "..."}, got ' + json_kind(content))
            text = content["text"]
        if text is None:
            raise InvalidParams("give `text` (or `content`: {\"type\": \"text\", \"text\": ...})")
        outcome = await service.inject_context(sid, text, source=body.get("source"),
                                               idempotency_key=body.get("idempotency_key"))
        return json_response(live_wire.inject_result_wire(outcome))

    @app.post("/sessions/<session_id>/external_events")
    async def external_event(session_id: str) -> Response:
        sid = locate(session_id)
        body = await json_object(request)
        _only(body, _EXTERNAL_FIELDS)
        if body.get("kind", "generic_json") != "generic_json":
            raise InvalidParams('kind must be "generic_json"')
        if "payload" not in body:
            raise InvalidParams("missing field `payload`")
        outcome = await service.send_external_event(sid, body.get("event_type"), body["payload"],
                                                    blocks=body.get("blocks"),
                                                    idempotency_key=body.get("idempotency_key"))
        return json_response(live_wire.accept_result_wire(outcome), status=202 if outcome.accepted else 200)

    @app.get("/sessions/<session_id>/inputs/<input_id>")
    async def input_by_id(session_id: str, input_id: str) -> Response:
        sid = locate(session_id)
        record = await service.input_state(sid, input_id=input_id)
        return json_response({"state": None if record is None else live_wire.input_state_wire(record)})

    @app.get("/sessions/<session_id>/inputs")
    async def input_by_key(session_id: str) -> Response:
        sid = locate(session_id)
        key = request.args.get("idempotency_key")
        if not key:
            raise InvalidParams("query parameter `idempotency_key` is required")
        record = await service.input_state(sid, idempotency_key=key)
        return json_response({"state": None if record is None else live_wire.input_state_wire(record)})

    @app.get("/realms")
    async def realms() -> Response:
        return json_response({"realms": await live_wire.realm_summaries(service)})

    @app.get("/realms/<realm_id>")
    async def realm(realm_id: str) -> Response:
        return json_response(await live_wire.realm_connection_set(service, realm_id))

    @app.get("/runtime/host_info")
    async def host_info() -> Response:
        return json_response(await live_wire.host_info(service, "rkat-rest"))

    @app.get("/runtime/health")
    async def runtime_health() -> Response:
        return json_response(await live_wire.host_health(service))

    @app.get("/runtime/capabilities")
    async def runtime_capabilities() -> Response:
        return json_response(live_wire.host_capabilities())
