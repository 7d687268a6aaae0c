"""``GET /openapi.json``: the OpenAPI 3.1 description of every route.

Written by hand next to the handlers and checked against the live server by a
schemathesis run in the test suite (every response must match it). The JSON
schemas follow what the handlers really send: optional keys are left out of
``required``, nullable ones say so.
"""

from __future__ import annotations

import copy
from typing import Any

import msgspec

from meerkat.errors import ErrorCode
from meerkat.events import EventEnvelope
from meerkat.ids import UUID_SPELLINGS
from meerkat.providers import KNOWN_PROVIDERS
from meerkat.store.base import MAX_LIST_LIMIT
from meerkat.transcript import Message
from meerkat.validation import MAX_OFFSET, MAX_OUTPUT_TOKENS, MAX_STORED_INT

from .openapi_config import config_schemas
from .openapi_console import console_paths, console_schemas
from .openapi_links import add_links
from .openapi_live import NOT_BLANK, live_paths, live_schemas

__all__ = ["openapi_document"]

_REF = "#/components/schemas/"
#: Prefix of the event schemas (their names, e.g. ``Usage``, would clash with this module's).
_EVENTS = "events."


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _generated(kind: Any, prefix: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """The JSON schema of a msgspec type and its components, from the very types the server encodes."""
    (schema,), components = msgspec.json.schema_components([kind], ref_template=_REF + prefix + "{name}")
    return schema, {prefix + name: component for name, component in components.items()}


_MESSAGE, _MESSAGE_COMPONENTS = _generated(Message)
_ENVELOPE, _EVENT_COMPONENTS = _generated(EventEnvelope, _EVENTS)


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


_INT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}
_LABELS = {"type": "object", "additionalProperties": {"type": "string"},
           "description": "String labels, e.g. {\"env\": \"prod\"}."}

_PROMPT = {
    "description": "A non-empty string, or content blocks such as [{\"type\": \"text\", \"text\": \"...\"}].",
    "oneOf": [
        {"type": "string", "pattern": NOT_BLANK},
        {"type": "array", "minItems": 1,
         "items": {"type": "object", "properties": {"type": _STR}, "required": ["type"]}},
    ],
}

#: Rows a client sends (rewrite, fork): the same, but ``created_at`` (and an assistant's ``stop_reason``) may be
#: left out, the server fills them in.
_SERVER_FILLED = ("created_at", "stop_reason")


def _row_input(variant: dict[str, Any]) -> dict[str, Any]:
    properties = variant["properties"]
    if properties["role"] == {"enum": ["user"]}:
        properties = {**properties, "content": _PROMPT}  # checked as a prompt is: not empty
    required = [name for name in variant["required"] if name not in _SERVER_FILLED]
    # The server reads a null as a key left out, so an optional key may be null.
    properties = {name: schema if name in required else {"anyOf": [schema, {"type": "null"}]}
                  for name, schema in properties.items()}
    return {**variant, "properties": properties, "required": required}


_ROW_INPUT = {"description": "A transcript row as a client sends it: a Message whose created_at (and stop_reason) "
                             "the server fills in when left out.",
              "oneOf": [_row_input(_MESSAGE_COMPONENTS[ref["$ref"].rsplit("/", 1)[1]]) for ref in _MESSAGE["anyOf"]]}

_TURN_OPTIONS = {
    "model": {"type": ["string", "null"], "minLength": 1,
              "description": "Model id; the provider is inferred when omitted."},
    "provider": {"type": ["string", "null"], "enum": [*KNOWN_PROVIDERS, None]},
    "system_prompt": {"type": ["string", "null"]},
    "max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_OUTPUT_TOKENS,
                   "description": "Most output tokens per model call (u32)."},
    "provider_params": {"type": ["object", "null"],
                        "description": "Passed through to the provider, e.g. {\"reasoning_effort\": \"high\"}."},
    "additional_instructions": {"type": ["array", "null"], "items": {"type": "string"},
                                "description": "System instructions for this turn only (after the system prompt)."},
}

_USAGE = _obj({name: _INT for name in ("input_tokens", "output_tokens", "cache_creation_tokens",
                                       "cache_read_tokens", "reasoning_tokens", "total_tokens")},
              ("input_tokens", "output_tokens", "total_tokens"))

_SCHEMAS: dict[str, Any] = {
    "Error": _obj({
        "error": {"type": "string", "description": "What went wrong, naming the bad field or id."},
        "code": {"type": "string", "enum": [code.value for code in ErrorCode]},
        "details": {"type": "object"},
    }, ("error", "code")),
    "Usage": _USAGE,
    "CreateSessionRequest": _obj({
        "prompt": _PROMPT, **_TURN_OPTIONS,
        "system_prompt": {"oneOf": [
            {"type": ["string", "null"]},
            {"type": "object", "properties": {"action": {"const": "disable"}}, "required": ["action"],
             "additionalProperties": False,
             "description": "No system prompt at all, not even the realm config's agent.system_prompt."},
        ]},
        "labels": {**_LABELS, "type": ["object", "null"]},
        "budget_max_tokens": {"type": ["integer", "null"], "minimum": 1, "maximum": MAX_STORED_INT,
                              "description": "Token budget for the whole session."},
    }, ("prompt",), additionalProperties=False),
    "TurnRequest": _obj({
        "session_id": {"type": "string", "description": "Optional; must name the session in the path."},
        "prompt": _PROMPT, **_TURN_OPTIONS,
    }, ("prompt",), additionalProperties=False),
    "RunResult": _obj({
        "session_id": _STR, "session_ref": {"type": "string", "description": "<realm_id>:<session_id>"},
        "text": _STR, "turns": _INT, "tool_calls": _INT, "usage": _ref("Usage"),
        "run_usage": {**_ref("Usage"), "description": "This run's own usage."},
        "terminal_cause_kind": _STR,
    }, ("session_id", "text", "turns", "tool_calls", "usage")),
    "SessionSummary": _obj({
        "session_id": _STR, "session_ref": _STR,
        "created_at": {**_INT, "description": "Unix seconds."}, "updated_at": {**_INT, "description": "Unix seconds."},
        "message_count": _INT, "total_tokens": _INT, "is_active": {"type": "boolean"}, "labels": _LABELS,
    }, ("session_id", "created_at", "updated_at", "message_count", "total_tokens", "is_active")),
    "SessionList": _obj({"sessions": {"type": "array", "items": _ref("SessionSummary")}}, ("sessions",)),
    "Session": _obj({
        "session_id": _STR, "session_ref": _STR,
        "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
        "message_count": _INT, "total_tokens": _INT, "is_active": {"type": "boolean"}, "labels": _LABELS,
        "model": _STR, "provider": _STR, "last_assistant_text": {"type": ["string", "null"]}, "usage": _ref("Usage"),
    }, ("session_id", "created_at", "updated_at", "message_count", "total_tokens", "is_active", "model",
        "provider", "usage")),
    "Message": {**_MESSAGE, "description": "A transcript row; its fields depend on `role`."},
    **_MESSAGE_COMPONENTS,
    "RowInput": _ROW_INPUT,
    "HistoryPage": _obj({
        "session_id": _STR, "session_ref": _STR, "message_count": _INT, "offset": _INT,
        "limit": {"type": ["integer", "null"], "minimum": 0}, "has_more": {"type": "boolean"},
        "messages": {"type": "array", "items": _ref("Message")},
    }, ("session_id", "message_count", "offset", "limit", "has_more", "messages")),
    "ArchiveResult": _obj({"session_id": _STR, "archived": {"const": True}}, ("session_id", "archived")),
    "InterruptResult": _obj({"session_id": _STR, "interrupted": {"type": "boolean"}, "result": _STR},
                            ("session_id", "interrupted", "result")),
    "ConfigEnvelope": _obj({
        "config": {"type": "object", "description": "The whole realm config, defaults filled in."},
        "generation": _INT, "realm_id": {"type": ["string", "null"]}, "instance_id": {"type": ["string", "null"]},
        "backend": {"type": ["string", "null"]},
        "resolved_paths": {"type": "object", "additionalProperties": {"type": "string"}},
    }, ("config", "generation", "realm_id", "instance_id", "backend")),
    "ModelsCatalog": _obj({
        "contract_version": _obj({"major": _INT, "minor": _INT, "patch": _INT}, ("major", "minor", "patch")),
        "providers": {"type": "array", "items": _obj({
            "provider": _STR, "default_model_id": _STR,
            "models": {"type": "array", "items": _obj({
                "id": _STR, "display_name": _STR, "tier": _STR, "context_window": _INT,
                "max_output_tokens": _INT, "server_id": _STR, "profile": {"type": "object"},
            }, ("id", "display_name", "tier"))},
        }, ("provider", "default_model_id", "models"))},
    }, ("contract_version", "providers")),
    "SessionLoaded": _obj({"session_id": _STR, "message_count": _INT}, ("session_id", "message_count"),
                          description="`data:` of the `session_loaded` frame that opens an event stream."),
    "StreamDone": _obj({"reason": {"type": "string", "enum": ["archived", "shutdown", "run_ended", "closed"]}},
                       ("reason",), description="`data:` of the `done` frame that ends an event stream."),
    **_EVENT_COMPONENTS,
}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


_REASONS = {
    400: "Bad input: malformed JSON, a wrong field, an invalid session id or query parameter",
    401: "Missing or wrong bearer token (servers with a token), or a Host header that is not a loopback "
         "name (servers without one)",
    404: "No such session (or it was archived)",
    409: "The session is busy with another turn (SESSION_BUSY), or a config generation conflict",
    410: "The event cursor is older than the event log retains (STALE_CURSOR)",
    413: "Request body too large", 415: "Content-Type is not application/json",
    429: "The session's token budget is exhausted", 499: "The turn was interrupted",
    500: "A storage failure (STORE_ERROR) or a bug (INTERNAL_ERROR), logged by the server",
    502: "The model provider failed, or has no API key",
}
#: What a turn's 500 also covers.
_AGENT_ERROR = ("The agent could not finish the run: turn limit reached or a tool failed (AGENT_ERROR); "
                "or a storage failure (STORE_ERROR) or a bug (INTERNAL_ERROR)")


def _errors(statuses: tuple[int, ...], overrides: dict[int, str]) -> dict[str, Any]:
    """Error responses: ``statuses`` plus 401 and 500, which every guarded route can answer."""
    codes = sorted({*statuses, 401, 500})
    responses = {str(s): _json("Error", overrides.get(s, _REASONS[s])) for s in codes}
    responses["default"] = _json("Error", "Any other error, as {error, code, details?}")
    return responses


_SESSION_ID = {"name": "session_id", "in": "path", "required": True,
               "description": "A session id (UUID), or <realm_id>:<uuid> for this server's realm.",
               "schema": {"type": "string"}}


def session_id_pattern(realm_id: str | None) -> str:
    """What a session id parameter matches: a UUID, or ``<realm_id>:`` and one (the server's realm only)."""
    prefix = f"(?:{realm_id}:)?" if realm_id else ""  # realm ids are [A-Za-z0-9_-]: nothing to escape
    return f"^{prefix}{UUID_SPELLINGS}$"


def _with_session_pattern(paths: dict[str, Any], realm_id: str | None) -> dict[str, Any]:
    """A copy of ``paths`` whose ``session_id`` parameters (path and query) carry :func:`session_id_pattern`."""
    paths = copy.deepcopy(paths)
    pattern = session_id_pattern(realm_id)
    for item in paths.values():
        for parameters in [item.get("parameters", [])] + [op.get("parameters", []) for op in item.values()
                                                          if isinstance(op, dict)]:
            for parameter in parameters:
                if parameter["name"] == "session_id":
                    parameter["schema"] = {**parameter["schema"], "pattern": pattern}
    return paths
_LIMIT = {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_LIST_LIMIT}}
_OFFSET = {"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0, "maximum": MAX_OFFSET}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _op(summary: str, ok: dict[str, Any], errors: tuple[int, ...], *, reasons: dict[int, str] | None = None,
        **extra: Any) -> dict[str, Any]:
    return {"summary": summary, "responses": {"200": ok, **_errors(errors, reasons or {})}, **extra}


_TURN_ERRORS = (400, 404, 409, 413, 415, 429, 499, 502)
_MODEL_RULE = ("Bad input: malformed JSON, a wrong field, an invalid session id, or a `model` its provider "
               "does not know: not catalogued and given without `provider`, another provider's, or a "
               "self-hosted model the config does not declare; or `provider_params` the model does not take "
               "(the error lists those it does)")
_TURN_REASONS = {500: _AGENT_ERROR, 400: _MODEL_RULE}
_CONFIG_REASONS = {400: "Bad input: malformed JSON, an unknown key (named with its path) or a value that breaks "
                        "its key's rule (docs/config.md), e.g. a model that is not catalogued"}

#: ``GET /health``'s JSON body; ``database`` only for a postgres realm (url and id only to authorized callers).
_HEALTH: dict[str, Any] = {
    "type": "object", "required": ["status", "problems"],
    "properties": {"status": {"enum": ["ok", "unhealthy"]}, "problems": {"type": "array", "items": {"type": "string"}},
                   "database": {"type": "object", "required": ["reachable"], "properties": {
                       "reachable": {"type": "boolean"}, "latency_ms": {"type": "number"},
                       "server_version": {"type": "string"}, "schema_version": {"type": "integer"},
                       "database_id": {"type": "string"}, "url": {"type": "string"},
                       "problem": {"type": "string"}}}}}

_PATHS: dict[str, Any] = {
    "/sessions": {
        "post": _op("Create a session and run its first turn (blocks until the turn ends; with "
                    "`Accept: text/event-stream` the turn is streamed: `session_created` first, then the "
                    "turn's events, then `result` or `error`, then `done`)",
                    {**_json("RunResult", "The first turn's result"),
                     "content": {"application/json": {"schema": _ref("RunResult")},
                                 "text/event-stream": {"schema": {"type": "string"}}}},
                    (400, 413, 415, 429, 499, 502),
                    reasons=_TURN_REASONS, operationId="createSession", requestBody=_body("CreateSessionRequest")),
        "get": _op("List live sessions, most recently updated first", _json("SessionList", "The sessions"), (400,),
                   operationId="listSessions", parameters=[
                       _LIMIT, _OFFSET,
                       {"name": "label", "in": "query", "style": "form", "explode": True,
                        "description": "Repeatable key=value filter; a session must carry every pair "
                                       "(`labels=` is accepted too).",
                        "schema": {"type": "array", "items": {"type": "string", "pattern": "^[^=]+="}}}]),
    },
    "/sessions/{session_id}": {
        "parameters": [_SESSION_ID],
        "get": _op("Read a session", _json("Session", "The session"), (400, 404), operationId="readSession"),
        "delete": _op("Archive a session (hidden from list and read; history stays readable)",
                      _json("ArchiveResult", "Archived"), (400, 404, 413), operationId="archiveSession"),
    },
    "/sessions/{session_id}/messages": {
        "parameters": [_SESSION_ID],
        "post": _op("Run a turn on a session (blocks until the turn ends)", _json("RunResult", "The turn's result"),
                    _TURN_ERRORS, reasons={**_TURN_REASONS, 400: f"{_MODEL_RULE}; or a body `session_id` that "
                                                                      "names another session than the path"},
                    operationId="startTurn", requestBody=_body("TurnRequest")),
    },
    "/sessions/{session_id}/history": {
        "parameters": [_SESSION_ID],
        "get": _op("A page of the transcript, oldest first", _json("HistoryPage", "The page"), (400, 404),
                   operationId="readHistory", parameters=[_OFFSET, _LIMIT]),
    },
    "/sessions/{session_id}/interrupt": {
        "parameters": [_SESSION_ID],
        "post": _op("Interrupt the running turn (a no-op when idle); answers once the turn has ended",
                    _json("InterruptResult", "Done"), (400, 404, 413), operationId="interruptTurn"),
    },
    "/sessions/{session_id}/events": {
        "parameters": [_SESSION_ID],
        "get": _op(
            "Follow the session's events as Server-Sent Events",
            {"description": "An SSE stream: `session_loaded` first (data: SessionLoaded), then one frame per "
                            "event (`id:` = seq, `event:` = payload type, `data:` = events.EventEnvelope; a "
                            "`stream_truncated` marker has no `id:`), `: keep-alive` comments when idle, and "
                            "`done` (data: StreamDone) at the end.",
             "content": {"text/event-stream": {"schema": {"type": "string"},
                                               "x-sse-frames": {"session_loaded": _ref("SessionLoaded"),
                                                                "event": _ENVELOPE, "done": _ref("StreamDone")}}}},
            (400, 404, 410), operationId="sessionEvents",
            parameters=[
                {"name": "after", "in": "query", "description": "Resume after this seq (Last-Event-ID wins), from the ring or the durable "
                                "event log; 410 STALE_CURSOR if the log no longer holds what follows it.",
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_STORED_INT}},
                {"name": "Last-Event-ID", "in": "header", "description": "Resume after this seq.",
                 "schema": {"type": "integer", "minimum": 0, "maximum": MAX_STORED_INT}},
                {"name": "stop_after_run", "in": "query",
                 "description": "End the stream (with `done`) after the next run's terminal event.",
                 "schema": {"type": "boolean"}},
            ]),
    },
    "/config": {
        "get": _op("The realm config and its generation", _json("ConfigEnvelope", "The config"), (),
                   operationId="getConfig"),
        "put": _op("Replace the config (compare-and-swap with expected_generation)",
                   _json("ConfigEnvelope", "The new config"), (400, 409, 413, 415), reasons=_CONFIG_REASONS,
                   operationId="setConfig",
                   requestBody=_body("ConfigPut")),
        "patch": _op("Merge-patch the config (compare-and-swap with expected_generation)",
                     _json("ConfigEnvelope", "The new config"), (400, 409, 413, 415), reasons=_CONFIG_REASONS,
                     operationId="patchConfig",
                     requestBody=_body("ConfigPatch")),
    },
    "/models/catalog": {
        "get": _op("Known models by provider", _json("ModelsCatalog", "The catalog"), (), operationId="modelsCatalog"),
    },
    "/health": {
        "get": {"summary": "Liveness and a store check (never needs a token)", "operationId": "health",
                "security": [],
                "responses": {"200": {"description": "The server is up and its store (a postgres realm: its "
                                                     "database) answers; JSON when the client accepts only that",
                                      "content": {"text/plain": {"schema": {"const": "ok"}},
                                                  "application/json": {"schema": _HEALTH}}},
                              "503": {"description": "The store is damaged or missing, or the database is "
                                                     "unreachable: each problem, naming its file or database",
                                      "content": {"application/json": {"schema": _HEALTH}}}}},
    },
    "/openapi.json": {
        "get": _op("This document", {"description": "OpenAPI 3.1",
                                     "content": {"application/json": {"schema": {"type": "object"}}}}, (),
                   operationId="openapi"),
    },
}

from .openapi_history import history_paths, history_schemas  # noqa: E402  (built with the helpers above)

_SCHEMAS.update(history_schemas(_obj, _ref))
_PATHS.update(history_paths(_op, _json, _body, _SESSION_ID, _OFFSET, _LIMIT))


_SCHEMAS.update(live_schemas())
_PATHS.update(live_paths(_op, _json, _body, _SESSION_ID))
_SCHEMAS.update(console_schemas(_obj))
_SCHEMAS.update(config_schemas())
_PATHS.update(console_paths(_op, _json))
add_links(_PATHS)


def openapi_document(*, auth: bool, realm_id: str | None = None) -> dict[str, Any]:
    """The document; with ``auth`` every operation but ``/health`` declares the bearer scheme.

    ``realm_id`` is the server's realm: session ids may carry it as a prefix (no other realm's).
    """
    document: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "rkat-rest", "version": "0.1.0",
                 "description": "Sessions, turns, events (SSE) and config of one realm. Errors are "
                                "{error, code, details?} with the status from the shared error table; a path "
                                "no route matches is 404 NOT_FOUND, a route asked with a method it does "
                                "not take is 405 METHOD_NOT_ALLOWED (with Allow)."},
        "paths": _with_session_pattern(_PATHS, realm_id),
        "components": {"schemas": _SCHEMAS},
    }
    if auth:
        document["components"] = {**document["components"],
                                  "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}}
        document["security"] = [{"bearer": []}]
    return document


def request_fields(schema: str) -> frozenset[str]:
    """The fields a request body of ``schema`` (``CreateSessionRequest``...) may carry."""
    return frozenset(_SCHEMAS[schema]["properties"])
