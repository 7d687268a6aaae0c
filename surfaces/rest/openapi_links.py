"""OpenAPI ``links``: which answer's ids the next calls take, added to :mod:`.openapi`'s paths.

A link says "the ``session_id`` in this 200 names the session of these
operations". Clients and code generators read them; schemathesis's stateful
phase follows them to chain real calls (create a session, then fork it, rewrite
it, read the revision the rewrite made, archive it...), so a fuzz run reaches
states that random ids never reach.
"""

from __future__ import annotations

from typing import Any

__all__ = ["add_links"]

#: Operations that act on one session, and where each takes its id.
_ON_SESSION: dict[str, str] = {
    **{operation: "path.session_id" for operation in (
        "readSession", "archiveSession", "startTurn", "readHistory", "interruptTurn", "forkSession",
        "listRevisions", "rewriteTranscript", "updateSystemPrompt", "activateInstruction",
        "listInstructionActivations", "exportSession", "stopRun", "injectContext", "sendExternalEvent",
        "inputStateByKey")},
    **{operation: "query.session_id" for operation in ("listEventsSince", "latestEventCursor", "eventSnapshot")},
}

#: Answers that name a session: (operationId, status) -> where the id is.
_SESSION_SOURCES: dict[tuple[str, str], str] = {
    ("createSession", "200"): "$response.body#/session_id",
    ("startTurn", "200"): "$response.body#/session_id",
    ("forkSession", "201"): "$response.body#/session_id",
    ("readSession", "200"): "$response.body#/session_id",
}

_SAME_SESSION = "$request.path.session_id"

#: Answers that name a revision of the session in the path: (operationId, status) -> where the revision is.
_REVISION_SOURCES: dict[tuple[str, str], str] = {
    ("rewriteTranscript", "200"): "$response.body#/revision",
    ("restoreRevision", "200"): "$response.body#/revision",
    ("listRevisions", "200"): "$response.body#/head_revision",
    ("updateSystemPrompt", "200"): "$response.body#/transcript_revision",
}

#: Answers that name an input of the session in the path.
_INPUT_SOURCES: dict[tuple[str, str], str] = {
    ("injectContext", "200"): "$response.body#/input_id",
    ("sendExternalEvent", "202"): "$response.body#/input_id",
    ("sendExternalEvent", "200"): "$response.body#/input_id",
}


def _link_name(operation: str) -> str:
    return operation[0].upper() + operation[1:]


def _session_links(source: str) -> dict[str, Any]:
    return {_link_name(target): {"operationId": target, "parameters": {where: source}}
            for target, where in _ON_SESSION.items()}


def _links_of(operation: str, status: str) -> dict[str, Any]:
    key = (operation, status)
    links: dict[str, Any] = {}
    if key in _SESSION_SOURCES:
        links.update(_session_links(_SESSION_SOURCES[key]))
    if key in _REVISION_SOURCES:
        revision = _REVISION_SOURCES[key]
        for target in ("readRevision", "restoreRevision"):
            links[_link_name(target)] = {"operationId": target, "parameters": {
                "path.session_id": _SAME_SESSION, "path.revision": revision}}
    if key in _INPUT_SOURCES:
        links["InputStateById"] = {"operationId": "inputStateById", "parameters": {
            "path.session_id": _SAME_SESSION, "path.input_id": _INPUT_SOURCES[key]}}
    return links


def add_links(paths: dict[str, Any]) -> None:
    """Attach the links to the responses of ``paths`` (in place)."""
    for item in paths.values():
        for operation in item.values():
            if not isinstance(operation, dict) or "operationId" not in operation:
                continue
            for status, response in operation["responses"].items():
                links = _links_of(operation["operationId"], status)
                if links:
                    response["links"] = links
