"""The OpenAPI schemas and paths of the history routes (:mod:`.history_routes`), merged into :mod:`.openapi`."""

from __future__ import annotations

from typing import Any, Callable

from meerkat.history_wire import MAX_BODY_CHARS

__all__ = ["history_schemas", "history_paths"]

_INT = {"type": "integer", "minimum": 0}
_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_ROW = {"$ref": "#/components/schemas/RowInput"}
_NAME = {"type": "string", "minLength": 1, "maxLength": 256}
#: Optional free text of a request (actor, note, expected revision): the server's limit is 4,096 characters.
_TEXT = {"type": ["string", "null"], "maxLength": 4096}
_BODY = {"type": "string", "minLength": 1, "maxLength": MAX_BODY_CHARS}
_REASON = {"description": "Why: {kind, note?} (a bare string is taken as the kind).",
           "oneOf": [_NAME, {"type": "object", "properties": {"kind": _NAME, "note": _TEXT},
                             "required": ["kind"]}]}
_BLOCK: dict[str, Any] = {"type": "object", "properties": {"type": {"enum": ["user_content_block", "assistant_block"]},
                                          "block": {"type": "object"}, "block_index": _INT},
          "required": ["type", "block", "block_index"]}
_REPLACEMENT = {
    "description": "{type: message, message} or a block-level replacement (user_content_block, assistant_block, "
                   "tool_result_content_block) with `block` and its indexes; the row at message_index must be "
                   "of the kind the block replaces.",
    "oneOf": [{"type": "null"},
              {"type": "object", "properties": {"type": {"const": "message"}, "message": _ROW},
               "required": ["type", "message"]},
              _BLOCK,
              {**_BLOCK, "properties": {**_BLOCK["properties"], "type": {"const": "tool_result_content_block"},
                                        "result_index": _INT},
               "required": [*_BLOCK["required"], "result_index"]}]}
_EXPECTATION = {"description": "{kind: absent} or {kind: effective, activation_id}", "oneOf": [
    {"type": "object", "properties": {"kind": {"const": "absent"}}, "required": ["kind"]},
    {"type": "object", "properties": {"kind": {"const": "effective"},
                                      "activation_id": {"type": "string", "minLength": 1, "maxLength": 4096}},
     "required": ["kind", "activation_id"]}]}
_SPAN = {"type": "object", "properties": {"start": _INT, "end": _INT}, "required": ["start", "end"]}
_SELECTION = {"description": "{type: message_range, start, end} (end exclusive, not before start), or "
                             "{type: edit_message_range|compaction_message_range, range: {start, end}}",
              "oneOf": [{"type": "object", "properties": {"type": {"const": "message_range"}, "start": _INT,
                                                          "end": _INT}, "required": ["type", "start", "end"]},
                        {"type": "object", "properties": {"type": {"enum": ["edit_message_range",
                                                                            "compaction_message_range"]},
                                                          "range": _SPAN}, "required": ["type", "range"]}]}


def history_schemas(obj: Callable[..., dict[str, Any]], ref: Callable[[str], dict[str, str]]) -> dict[str, Any]:
    """Request and result schemas (``obj`` and ``ref`` are :mod:`.openapi`'s helpers)."""
    commit = obj({"parent_revision": _STR, "revision": _STR, "original_span_digest": _STR,
                  "replacement_digest": _STR, "actor": _NSTR, "messages_before": _INT, "messages_after": _INT,
                  "reason": {"type": "object"}, "selection": {"type": "object"},
                  "committed_at": {"type": "object"}},
                 ("parent_revision", "revision", "messages_before", "messages_after"))
    activation_record = obj({"session_id": _STR, "identity": {"type": "object"}, "activation_ordinal": _INT,
                             "projection_witness": {"type": "object"}},
                            ("session_id", "identity", "activation_ordinal", "projection_witness"))
    return {
        "ForkRequest": obj({
            "message_index": {"type": ["integer", "null"], "minimum": 0,
                              "description": "Rows to keep (all when omitted); with `replacement`, the row "
                                             "replaced and kept."},
            "replacement": _REPLACEMENT,
            "labels": {"type": ["object", "null"], "additionalProperties": {"type": "string"}},
            "inherited_instructions": {"type": ["string", "null"], "enum": [
                "require_explicit_activation", "reactivate_inherited", "refuse", None]},
        }, additionalProperties=False),
        "ForkResult": obj({"source_session_id": _STR, "session_id": _STR, "session_ref": _STR,
                           "message_count": _INT, "fork_point": _INT, "source_revision": _STR,
                           "cache_inheritance": {"type": "object"}, "reactivated_instruction_count": _INT},
                          ("source_session_id", "session_id", "message_count", "cache_inheritance")),
        "RewriteRequest": obj({"selection": _SELECTION, "replacement": {"type": "array", "items": _ROW},
                               "reason": _REASON, "actor": _TEXT, "expected_parent_revision": _TEXT},
                              ("selection",), additionalProperties=False),
        "RestoreRequest": obj({"reason": _REASON, "actor": _TEXT, "expected_parent_revision": _TEXT},
                              additionalProperties=False),
        "RevisionCommit": commit,
        "RewriteResult": obj({"session_id": _STR, "parent_revision": _STR, "revision": _STR,
                              "message_count": _INT, "commit": ref("RevisionCommit")},
                             ("session_id", "parent_revision", "revision", "message_count", "commit")),
        "RevisionList": obj({"head_revision": _STR, "total": _INT, "entries": {"type": "array", "items": obj({
            "revision": _STR, "parent_revision": _STR, "actor": _NSTR, "reason": _STR, "note": _NSTR,
            "committed_at": {**_INT, "description": "Unix milliseconds."}, "messages_before": _INT,
            "messages_after": _INT, "restored_from": _STR}, ("revision", "parent_revision", "reason",
                                                              "committed_at"))}},
                            ("head_revision", "entries")),
        "RevisionPage": obj({"session_id": _STR, "session_ref": _STR, "revision": _STR, "head_revision": _STR,
                             "message_count": _INT, "offset": _INT, "limit": {"type": ["integer", "null"]},
                             "has_more": {"type": "boolean"}, "messages": {"type": "array",
                                                                           "items": ref("Message")}},
                            ("session_id", "revision", "head_revision", "message_count", "offset", "has_more",
                             "messages")),
        "SystemPromptRequest": obj({
            "key": {**_NAME, "description": "The prompt slot (default `main`)."},
            "content": {"type": "string", "maxLength": MAX_BODY_CHARS}, "expected_version": {"type": ["integer", "null"], "minimum": 1},
            "target_message_index": {"type": ["integer", "null"], "minimum": 0},
            "actor": _TEXT, "expected_parent_revision": _TEXT}, ("content",), additionalProperties=False),
        "SystemPromptUpdate": obj({"session_id": _STR, "key": _STR, "version": {"type": "integer", "minimum": 1},
                                   "message_index": _INT, "status": {"type": "string",
                                                                     "enum": ["applied", "duplicate"]},
                                   "transcript_revision": _STR,
                                   "commit": {"oneOf": [ref("RevisionCommit"), {"type": "null"}]}},
                                  ("session_id", "key", "version", "message_index", "status",
                                   "transcript_revision")),
        "InstructionActivationRequest": obj({
            "revision": obj({"namespace": _NAME, "key": _NAME, "revision_id": _NAME, "content_sha256": _NAME},
                            ("namespace", "key", "revision_id", "content_sha256")),
            "activation_id": _NAME, "body": _BODY, "supersedes": {**_NAME, "type": ["string", "null"]},
            "expectation": _EXPECTATION,
        }, ("revision", "activation_id", "body", "expectation"), additionalProperties=False),
        "InstructionActivationRecord": activation_record,
        "InstructionActivationReceipt": obj({"record": ref("InstructionActivationRecord"),
                                             "disposition": {"type": "string", "enum": ["applied", "duplicate"]}},
                                            ("record", "disposition")),
        "InstructionActivationPage": obj({"session_id": _STR, "records": {
            "type": "array", "items": ref("InstructionActivationRecord")}, "key_state": {"type": ["object", "null"]},
            "next_offset": {"type": ["integer", "null"]}}, ("session_id", "records")),
    }


def history_paths(op: Callable[..., dict[str, Any]], json: Callable[[str, str], dict[str, Any]],
                  body: Callable[[str], dict[str, Any]], session_id: dict[str, Any], offset: dict[str, Any],
                  limit: dict[str, Any]) -> dict[str, Any]:
    """The paths (the helpers are :mod:`.openapi`'s)."""
    revision = {"name": "revision", "in": "path", "required": True,
                "schema": {"type": "string", "minLength": 1, "maxLength": 64},
                "description": "A revision name (`r0` is the transcript before any rewrite)."}
    busy = {409: "The session is busy with a turn (SESSION_BUSY)"}
    bad = "Bad input: malformed JSON, a wrong field or session id"
    # Compare-and-set and existence rules a schema cannot state; each is 400 INVALID_PARAMS naming the value.
    cas = {**busy, 400: f"{bad}, or expected_parent_revision / expected_version is not the current one "
                        "(details name both)"}
    no_revision = f"{bad}, or the session has no revision of that name"
    fork = op("Fork an idle session: a new session whose transcript is a prefix of this one's (the source is "
              "not changed)", json("ForkResult", "The new session"), (400, 404, 409, 413, 415),
              reasons={**busy, 400: "Bad input: malformed JSON, a wrong field or session id; a message_index "
                                    "past the transcript's end or missing beside a replacement, inherited instructions at the "
                                    "fork point with inherited_instructions `refuse`, or a block replacement aimed at a row or block "
                                    "that is not of its kind"},
              operationId="forkSession", requestBody=body("ForkRequest"))
    fork["responses"] = {"201": fork["responses"].pop("200"), **fork["responses"]}
    return {
        "/sessions/{session_id}/fork": {"parameters": [session_id], "post": fork},
        "/sessions/{session_id}/revisions": {
            "parameters": [session_id],
            "get": op("The transcript's revisions (oldest first) and its head", json("RevisionList", "Revisions"),
                      (400, 404), operationId="listRevisions", parameters=[offset, limit]),
            "post": op("Rewrite rows of an idle session as a new revision (the old one stays readable)",
                       json("RewriteResult", "The commit"), (400, 404, 409, 413, 415),
                       reasons={**cas, 400: f"{cas[400]}; or a selection outside the transcript or ending "
                                            "before it starts"}, operationId="rewriteTranscript", requestBody=body("RewriteRequest")),
        },
        "/sessions/{session_id}/revisions/{revision}": {
            "parameters": [session_id, revision],
            "get": op("A page of one revision's rows", json("RevisionPage", "The page"), (400, 404),
                      reasons={400: no_revision}, operationId="readRevision", parameters=[offset, limit]),
        },
        "/sessions/{session_id}/revisions/{revision}/restore": {
            "parameters": [session_id, revision],
            "post": op("Make a retained revision's rows the transcript again, as a new revision",
                       json("RewriteResult", "The commit"), (400, 404, 409, 413, 415),
                       reasons={**cas, 400: f"{cas[400]}; or the session has no revision of that name"},
                       operationId="restoreRevision",
                       requestBody={**body("RestoreRequest"), "required": False}),
        },
        "/sessions/{session_id}/system_prompt": {
            "parameters": [session_id],
            "put": op("Set the next version of a keyed system prompt (the model sees it from its next call)",
                      json("SystemPromptUpdate", "Applied, or a duplicate"), (400, 404, 409, 413, 415),
                      reasons={**cas, 400: f"{cas[400]}; or a target_message_index that is not an unversioned "
                                           "system prompt row"}, operationId="updateSystemPrompt", requestBody=body("SystemPromptRequest")),
        },
        "/sessions/{session_id}/instructions": {
            "parameters": [session_id],
            "post": op("Activate an instruction revision (idempotent on activation_id)",
                       json("InstructionActivationReceipt", "The receipt"), (400, 404, 409, 413, 415),
                       reasons={**busy, 400: f"{bad}, or the expectation does not hold (the key's effective "
                                                 "activation is another), supersedes is not the effective one, "
                                                 "the activation_id was used for another revision or body, or a "
                                                 "64-hex-digit content_sha256 is not the body's"},
                       operationId="activateInstruction",
                       requestBody=body("InstructionActivationRequest")),
            "get": op("Instruction activations in transcript order", json("InstructionActivationPage", "The page"),
                      (400, 404), operationId="listInstructionActivations", parameters=[
                          {"name": "namespace", "in": "query", "schema": {"type": "string", "maxLength": 256}},
                          {"name": "key", "in": "query", "schema": {"type": "string", "maxLength": 256}},
                          offset, limit]),
        },
        "/sessions/{session_id}/export": {
            "parameters": [session_id],
            "get": op("Export the session: an ATIF trajectory (default), JSON, or Markdown",
                      {"description": "The document", "content": {
                          "application/json": {"schema": {"type": "object"}},
                          "text/markdown": {"schema": {"type": "string"}}}},
                      (400, 404), operationId="exportSession", parameters=[
                          {"name": "format", "in": "query",
                           "schema": {"type": "string", "enum": ["atif", "json", "markdown"]}},
                          *({"name": name, "in": "query", "schema": {"type": "string", "maxLength": 256}}
                            for name in ("agent_name", "agent_version", "model_name"))]),
        },
    }
