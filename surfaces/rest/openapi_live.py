"""OpenAPI paths and schemas of the live-session routes (:mod:`.live_routes`), merged into the document."""

from __future__ import annotations

from typing import Any

from meerkat.validation import MAX_STORED_INT

__all__ = ["live_paths", "live_schemas", "NOT_BLANK"]

#: "Holds a character that is not whitespace", whitespace as Python's ``str.strip`` (the server's check) sees it,
#: spelt out: ``\S`` means other sets in JSON Schema's ECMA 262 and in Rust's regex (\x1c-\x1f, \ufeff).
NOT_BLANK = "[^\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]"

_STR = {"type": "string"}
_INT = {"type": "integer", "minimum": 0}
_REF = "#/components/schemas/"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _obj(properties: dict[str, Any], required: tuple[str, ...] = (), **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(required), **extra}


_VERSION = _obj({"major": _INT, "minor": _INT, "patch": _INT}, ("major", "minor", "patch"))
_SCOPE = _obj({"type": {"const": "session"}, "session_id": _STR}, ("type", "session_id"))
_CURSOR = _obj({"scope": _ref("EventScope"), "sequence": _INT}, ("scope", "sequence"),
               description="Events after `sequence` (0: from the start).")
_INPUT_STATE = _obj({
    "input_id": _STR, "created_at": _STR, "updated_at": _STR,
    "current_state": {"type": "string", "enum": ["applied", "queued", "consumed", "abandoned"]},
    "durability": {"const": "durable"}, "policy": {"type": "string", "enum": ["immediate", "queue"]},
    "idempotency_key": _STR, "last_run_id": _STR, "last_boundary_sequence": _INT,
    "terminal_outcome": {"type": "string", "enum": ["completed", "abandoned"]},
}, ("input_id", "created_at", "updated_at", "current_state"))
_NULLABLE_STATE = _obj({"state": {"oneOf": [_ref("InputState"), {"type": "null"}]}}, ("state",))


def live_schemas() -> dict[str, Any]:
    """Component schemas of the live routes."""
    return {
        "ContractVersion": _VERSION,
        "EventScope": _SCOPE,
        "EventCursor": _CURSOR,
        "EventsPage": _obj({
            "contract_version": _ref("ContractVersion"), "scope": _ref("EventScope"),
            "from_cursor": _ref("EventCursor"), "latest_cursor": _ref("EventCursor"),
            "has_more": {"type": "boolean"},
            "events": {"type": "array", "items": _ref("events.EventEnvelope")},
        }, ("contract_version", "scope", "from_cursor", "latest_cursor", "has_more", "events")),
        "LatestCursor": _obj({"contract_version": _ref("ContractVersion"), "cursor": _ref("EventCursor")},
                             ("contract_version", "cursor")),
        "EventsSnapshot": _obj({
            "contract_version": _ref("ContractVersion"), "scope": _ref("EventScope"), "cursor": _ref("EventCursor"),
            "snapshot": _obj({"session_id": _STR, "message_count": _INT, "last_event_seq": _INT},
                             ("session_id", "message_count", "last_event_seq")),
        }, ("contract_version", "scope", "cursor", "snapshot")),
        "StopRunRequest": _obj({"run_id": {"type": "string", "minLength": 1}, "reason": {"type": ["string", "null"]}},
                               ("run_id",), additionalProperties=False),
        "StopRunResult": _obj({"session_id": _STR, "receipt": {"oneOf": [
            _obj({"outcome": {"const": "stopped"}, "run_id": _STR,
                  "contributors": {"type": "array", "items": _obj({"input_id": _STR, "completion": _STR},
                                                                  ("input_id", "completion"))}},
                 ("outcome", "run_id", "contributors")),
            _obj({"outcome": {"const": "not_current"}, "run_id": _STR, "current_run_id": {"type": ["string", "null"]}},
                 ("outcome", "run_id")),
            _obj({"outcome": {"const": "not_stoppable"}, "run_id": _STR, "state": _STR}, ("outcome", "run_id", "state")),
        ]}}, ("session_id", "receipt")),
        "InjectContextRequest": _obj({
            "text": {"type": "string", "description": "The context (or give `content`)."},
            "content": _obj({"type": {"const": "text"}, "text": _STR}, ("type", "text")),
            "source": {"type": ["string", "null"], "pattern": NOT_BLANK,
                       "description": "Who injected it (kept on the system row)."},
            "idempotency_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 256},
        }, (), additionalProperties=False, anyOf=[{"required": ["text"]}, {"required": ["content"]}]),
        "InjectContextResult": _obj({"status": {"type": "string", "enum": ["applied", "duplicate"]},
                                     "input_id": _STR}, ("status", "input_id")),
        "ExternalEventRequest": _obj({
            "event_type": {"type": "string", "pattern": NOT_BLANK}, "payload": {"description": "Any JSON value."},
            "blocks": {"type": ["array", "null"], "items": {"type": "object"}},
            "idempotency_key": {"type": ["string", "null"], "minLength": 1, "maxLength": 256},
            "kind": {"const": "generic_json"},
        }, ("event_type", "payload"), additionalProperties=False),
        "ExternalEventResult": _obj({
            "outcome_type": {"type": "string", "enum": ["accepted", "deduplicated"]}, "input_id": _STR,
            "existing_id": _STR, "policy": {"const": "queue"}, "state": _ref("InputState"),
        }, ("outcome_type", "input_id", "policy", "state")),
        "InputState": _INPUT_STATE,
        "InputStateResult": _NULLABLE_STATE,
        "RealmSummary": _obj({"realm_id": _STR, "backend_count": _INT, "auth_profile_count": _INT,
                              "binding_count": _INT, "backend": _STR, "current": {"type": "boolean"}},
                             ("realm_id", "backend_count", "auth_profile_count", "binding_count")),
        "RealmList": _obj({"realms": {"type": "array", "items": _ref("RealmSummary")}}, ("realms",)),
        "RealmConnectionSet": _obj({"realm_id": _STR, "auth_profiles": {"type": "object"},
                                    "backends": {"type": "object"}, "bindings": {"type": "object"},
                                    "backend": _STR, "current": {"type": "boolean"}},
                                   ("realm_id", "auth_profiles", "backends", "bindings")),
        "RuntimeHealth": _obj({"contract_version": _ref("ContractVersion"),
                               "status": {"type": "string", "enum": ["ok", "degraded", "unhealthy"]},
                               "checks": {"type": "object", "additionalProperties": _STR},
                               # a postgres realm's database: reachable, latency_ms, versions, url (no password)
                               "database": {"type": "object", "required": ["reachable"]}},
                              ("contract_version", "status")),
        "RuntimeCapabilities": _obj({"contract_version": _ref("ContractVersion"),
                                     "features": {"type": "object", "additionalProperties": {"type": "boolean"}}},
                                    ("contract_version", "features")),
        "RuntimeHostInfo": _obj({
            "contract_version": _ref("ContractVersion"), "host_id": _STR,
            "host_id_scope": {"type": "string", "enum": ["process", "realm_instance"]},
            "process_name": _STR, "process_version": _STR, "endpoints": {"type": "object"},
            "realm": {"type": "object"}, "capabilities": _ref("RuntimeCapabilities"),
            "health": _ref("RuntimeHealth"),
        }, ("contract_version", "host_id", "host_id_scope", "process_name", "process_version", "endpoints",
            "realm", "capabilities", "health")),
        "CancelRequestResult": _obj({"request_id": _STR, "cancelled": {"const": True}}, ("request_id", "cancelled")),
    }


def live_paths(op: Any, json_body: Any, body: Any, session_param: dict[str, Any]) -> dict[str, Any]:
    """The live paths, built with the document's own helpers (``op``, ``json_body``, ``body``)."""
    session_query = {"name": "session_id", "in": "query", "required": True, "schema": _STR,
                     "description": "The session (UUID, or <realm_id>:<uuid>)."}
    stale = {410: "The cursor is older than the event log retains (STALE_CURSOR; details.watermark is the "
                  "oldest resumable cursor)"}
    external = op("Queue an external event; it runs as a turn once the session is free",
                  json_body("ExternalEventResult", "Deduplicated (a retry of the key's first use)"),
                  (400, 404, 409, 413, 415, 429), operationId="sendExternalEvent",
                  requestBody=body("ExternalEventRequest"),
                  reasons={409: "The idempotency key was used for other content (INPUT_IDEMPOTENCY_CONFLICT)",
                           429: "The session's inbox is full (INBOX_FULL)"})
    external["responses"]["202"] = json_body("ExternalEventResult", "Accepted: queued as the session's input")
    return {
        "/events": {"get": op(
            "Logged events of a session after a cursor, oldest first (from the durable log: survives restarts)",
            json_body("EventsPage", "The page"), (400, 404, 410), reasons=stale, operationId="listEventsSince",
            parameters=[session_query,
                        {"name": "after", "in": "query", "schema": {**_INT, "maximum": MAX_STORED_INT},
                         "description": "Cursor (seq); default 0."},
                        {"name": "limit", "in": "query", "schema": {"type": "integer", "minimum": 1,
                                                                     "maximum": 1000}},
                        {"name": "scope", "in": "query", "schema": {"const": "session"}}])},
        "/events/latest_cursor": {"get": op("The cursor of a session's newest logged event",
                                            json_body("LatestCursor", "The cursor"), (400, 404),
                                            operationId="latestEventCursor", parameters=[session_query])},
        "/events/snapshot": {"get": op("The latest cursor and the session at it",
                                       json_body("EventsSnapshot", "The snapshot"), (400, 404),
                                       operationId="eventSnapshot", parameters=[session_query])},
        "/sessions/{session_id}/stop_run": {
            "parameters": [session_param],
            "post": op("Stop a run only if it is the session's current one (any process); answers once it ended",
                       json_body("StopRunResult", "The receipt"), (400, 404, 413, 415),
                       operationId="stopRun", requestBody=body("StopRunRequest"))},
        "/sessions/{session_id}/inject_context": {
            "parameters": [session_param],
            "post": op("Append a durable system row the model sees from its next call on (idempotent by key)",
                       json_body("InjectContextResult", "Applied, or a duplicate of the key's first use"),
                       (400, 404, 409, 413, 415), operationId="injectContext", requestBody=body("InjectContextRequest"),
                       reasons={409: "The idempotency key was used for other content "
                                     "(INPUT_IDEMPOTENCY_CONFLICT)"})},
        "/sessions/{session_id}/external_events": {
            "parameters": [session_param],
            "post": external},
        "/sessions/{session_id}/inputs": {
            "parameters": [session_param],
            "get": op("An input's state by idempotency key", json_body("InputStateResult", "The state or null"),
                      (400, 404), operationId="inputStateByKey",
                      parameters=[{"name": "idempotency_key", "in": "query", "required": True,
                                   "schema": {"type": "string", "minLength": 1}}])},
        "/sessions/{session_id}/inputs/{input_id}": {
            "parameters": [session_param, {"name": "input_id", "in": "path", "required": True, "schema": _STR}],
            "get": op("An input's state by id", json_body("InputStateResult", "The state or null"), (400, 404),
                      operationId="inputStateById")},
        "/requests/{request_id}/cancel": {
            "parameters": [{"name": "request_id", "in": "path", "required": True, "schema": _STR}],
            "post": op("Cancel a request sent with X-Meerkat-Request-Id (its turn is interrupted; it answers 499)",
                       json_body("CancelRequestResult", "Cancelled"), (404, 413),
                       reasons={404: "No such request in flight"}, operationId="cancelRequest")},
        "/realms": {"get": op("Realms under this server's state root", json_body("RealmList", "The realms"), (),
                              operationId="listRealms")},
        "/realms/{realm_id}": {
            "parameters": [{"name": "realm_id", "in": "path", "required": True, "schema": _STR}],
            "get": op("One realm", json_body("RealmConnectionSet", "The realm"), (400,), operationId="getRealm",
                      reasons={400: "No realm of that id under this server's state root (INVALID_PARAMS)"})},
        "/runtime/host_info": {"get": op("This host", json_body("RuntimeHostInfo", "The host"), (),
                                         operationId="runtimeHostInfo")},
        "/runtime/health": {"get": op("Health (the store answers)", json_body("RuntimeHealth", "Health"), (),
                                      operationId="runtimeHealth")},
        "/runtime/capabilities": {"get": op("Feature flags", json_body("RuntimeCapabilities", "Features"), (),
                                            operationId="runtimeCapabilities")},
    }
