"""Wire shapes of the live-session API, shared by rkat-rpc, rkat-rest and rkat-mcp.

The shapes are upstream's (meerkat-sdk 0.9.6 generated types): event cursors
``{scope, sequence}`` with a session scope ``{"type": "session", "session_id"}``,
the input state snapshot (``WireInputState``), the external-event acceptance
(``RuntimeAcceptResult``), realm summaries and the runtime host projections.
"""

from __future__ import annotations

import os
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from meerkat import __version__
from meerkat.errors import InvalidParams
from meerkat.providers.catalog import CONTRACT_VERSION
from meerkat.realm import MANIFEST_FILE, read_manifest
from meerkat.store.eventlog import InputRecord
from meerkat.transcript import rfc3339_from_ms
from meerkat.validation import validate_cursor

if TYPE_CHECKING:
    from actors import SessionService
    from actors.live_api import InputOutcome

__all__ = ["contract_version", "snapshot_wire", "session_scope", "scope_session_id", "cursor", "cursor_sequence", "input_state_wire",
           "accept_result_wire", "inject_result_wire", "list_since_wire", "FEATURES", "host_capabilities",
           "host_health", "host_info", "realm_summaries", "realm_connection_set"]

#: ``runtime/capabilities`` feature flags: what this host implements, nothing more.
FEATURES: dict[str, bool] = {
    "approvals": False, "artifacts": False, "blobs": False, "comms": False, "event_replay": True,
    "external_members": False, "mcp_live": False, "mobs": False, "runtime_backed_sessions": True,
    "schedules": False, "secure_remote_rpc": False, "session_events": True, "session_streams": True,
    "skills": False, "durable_jobs": False, "multi_host_mobs": False,
}

_TERMINAL = {"consumed": "completed", "abandoned": "abandoned"}


def contract_version() -> dict[str, int]:
    """The wire contract version object ``{major, minor, patch}``."""
    return dict(CONTRACT_VERSION)


async def snapshot_wire(service: "SessionService", session_id: str) -> dict[str, Any]:
    """The ``events/snapshot`` result: the latest cursor and what the session looks like at it."""
    latest = await service.latest_event_seq(session_id)
    page = await service.read_history(session_id, limit=1)
    return {"contract_version": contract_version(), "scope": session_scope(session_id),
            "cursor": cursor(session_id, latest),
            "snapshot": {"session_id": page.session_id, "message_count": page.message_count,
                         "last_event_seq": latest}}


def session_scope(session_id: str) -> dict[str, Any]:
    """The event source scope of one session."""
    return {"type": "session", "session_id": session_id}


def scope_session_id(scope: Any) -> str:
    """The session id of a ``scope`` param; only session scopes exist on this host."""
    if not isinstance(scope, dict):
        raise InvalidParams("scope must be an object like {\"type\": \"session\", \"session_id\": \"...\"}")
    if scope.get("type") != "session":
        raise InvalidParams(f"scope.type {scope.get('type')!r} is not supported: this host has session scopes only")
    session_id = scope.get("session_id")
    if not isinstance(session_id, str):
        raise InvalidParams("scope.session_id must be a string")
    return session_id


def cursor(session_id: str, sequence: int) -> dict[str, Any]:
    """A replay cursor: events after ``sequence`` (0: the start)."""
    return {"scope": session_scope(session_id), "sequence": sequence}


def cursor_sequence(value: Any, session_id: str) -> int:
    """The ``sequence`` of a cursor param (None: 0); it must name the same session."""
    if value is None:
        return 0
    if not isinstance(value, dict):
        raise InvalidParams("cursor must be an object {scope, sequence}")
    sequence = validate_cursor(value.get("sequence"), "cursor.sequence")
    if sequence is None:
        raise InvalidParams("cursor.sequence must be a non-negative integer, got None")
    scope = value.get("scope")
    if scope is not None and scope_session_id(scope) != session_id:
        raise InvalidParams("cursor.scope names another session than scope")
    return sequence


def input_state_wire(record: InputRecord) -> dict[str, Any]:
    """The ``WireInputState`` snapshot of an input."""
    body: dict[str, Any] = {
        "input_id": record.input_id,
        "current_state": record.state,
        "created_at": rfc3339_from_ms(record.created_at_ms),
        "updated_at": rfc3339_from_ms(record.updated_at_ms),
        "durability": "durable",
        "policy": "immediate" if record.kind == "inject_context" else "queue",
    }
    if record.idempotency_key is not None:
        body["idempotency_key"] = record.idempotency_key
    if record.run_id is not None:
        body["last_run_id"] = record.run_id
    if record.boundary_seq is not None:
        body["last_boundary_sequence"] = record.boundary_seq
    if record.state in _TERMINAL:
        body["terminal_outcome"] = _TERMINAL[record.state]
    return body


def accept_result_wire(outcome: "InputOutcome") -> dict[str, Any]:
    """The ``RuntimeAcceptResult`` of an external event."""
    record = outcome.record
    body: dict[str, Any] = {"outcome_type": "accepted" if outcome.accepted else "deduplicated",
                            "input_id": record.input_id, "policy": "queue", "state": input_state_wire(record)}
    if not outcome.accepted:
        body["existing_id"] = record.input_id
    return body


def inject_result_wire(outcome: "InputOutcome") -> dict[str, Any]:
    """The ``session/inject_context`` result: ``applied`` the first time, ``duplicate`` for a retry."""
    return {"status": "applied" if outcome.accepted else "duplicate", "input_id": outcome.record.input_id}


async def list_since_wire(service: "SessionService", session_id: str, after: int, limit: int | None) -> dict[str, Any]:
    """The ``events/list_since`` result (events are full envelopes, oldest first)."""
    page = await service.list_events(session_id, after_seq=after, limit=limit)
    return {"contract_version": dict(CONTRACT_VERSION), "scope": session_scope(session_id),
            "from_cursor": cursor(session_id, after), "latest_cursor": cursor(session_id, page.latest),
            "has_more": page.has_more, "events": page.events}


# -- runtime host and realms ---------------------------------------------------------


def host_capabilities() -> dict[str, Any]:
    """``RuntimeHostCapabilities``."""
    return {"contract_version": dict(CONTRACT_VERSION), "features": dict(FEATURES)}


async def host_health(service: "SessionService") -> dict[str, Any]:
    """``RuntimeHostHealth``: the store answers a read, or the host is unhealthy.

    A postgres realm adds ``checks.database`` and a ``database`` object (reachable,
    latency, server and schema version, the URL without its password).
    """
    from actors.store_health import check_database

    probe = await check_database(service)
    sup = service.supervisor
    store = "unhealthy"
    if probe is None or probe.reachable:  # an unreachable database would only make the pool wait
        try:
            await sup.store_call(partial(sup.store.get_session, "00000000-0000-0000-0000-000000000000"))
            store = "ok"
        except Exception:  # any failure is what the health check reports
            pass
    health: dict[str, Any] = {"contract_version": dict(CONTRACT_VERSION), "status": store, "checks": {"store": store}}
    if probe is not None:
        health["checks"]["database"] = "ok" if probe.reachable else "unhealthy"
        health["database"] = probe.to_dict()
    return health


async def host_info(service: "SessionService", process_name: str) -> dict[str, Any]:
    """``RuntimeHostInfo`` of this process."""
    realm = service.realm
    return {
        "contract_version": dict(CONTRACT_VERSION),
        "host_id": f"{process_name}:{os.getpid()}",
        "host_id_scope": "process",
        "process_name": process_name,
        "process_version": __version__,
        "endpoints": {},
        "realm": {"realm_id": realm.realm_id, "backend": realm.backend, "instance_id": realm.instance_id},
        "capabilities": host_capabilities(),
        "health": await host_health(service),
    }


def _summary(realm_id: str, backend: str, current: bool) -> dict[str, Any]:
    # Counts are upstream's auth bindings/profiles (none here); the one backend is the realm's store.
    return {"realm_id": realm_id, "backend_count": 1, "auth_profile_count": 0, "binding_count": 0,
            "backend": backend, "current": current}


async def realm_summaries(service: "SessionService") -> list[dict[str, Any]]:
    """The realms this host can see, this one first: for a postgres realm those its database holds,
    else those under its state root (each with a readable manifest). Read in a worker thread."""
    realm = service.realm
    out = [_summary(realm.realm_id, realm.backend, True)]
    if realm.backend == "memory":
        return out
    if realm.backend == "postgres" and realm.database_url is not None:
        others = await trio.to_thread.run_sync(_database_realms, realm.database_url)
    else:
        others = await trio.to_thread.run_sync(_state_root_realms, Path(realm.paths.root).parent)
    return out + [_summary(realm_id, backend, False) for realm_id, backend in others if realm_id != realm.realm_id]


def _database_realms(url: str) -> list[tuple[str, str]]:
    from meerkat.store.postgres_realms import list_database_realms

    rows, _database_id = list_database_realms(url)
    return [(row.realm_id, "postgres") for row in rows]


def _state_root_realms(root: Path) -> list[tuple[str, str]]:
    try:
        entries = sorted(os.scandir(root), key=lambda e: e.name)
    except OSError:
        return []
    found: list[tuple[str, str]] = []
    for entry in entries:
        if not entry.is_dir():
            continue
        try:
            manifest = read_manifest(Path(entry.path) / MANIFEST_FILE)
        except Exception:  # an unreadable neighbour is left out, not an error of this call
            continue
        if manifest is not None:
            found.append((manifest.realm_id, manifest.backend))
    return found


async def realm_connection_set(service: "SessionService", realm_id: Any) -> dict[str, Any]:
    """``WireRealmConnectionSet`` of a realm this host can see (no auth bindings here)."""
    if not isinstance(realm_id, str) or not realm_id:
        raise InvalidParams("realm_id must be a non-empty string")
    for summary in await realm_summaries(service):
        if summary["realm_id"] == realm_id:
            return {"realm_id": realm_id, "auth_profiles": {}, "backends": {}, "bindings": {},
                    "backend": summary["backend"], "current": summary["current"]}
    where = "in this realm's database" if service.realm.backend == "postgres" else "under this host's state root"
    raise InvalidParams(f"unknown realm {realm_id!r}: not {where} (realm/list shows the known ones)")
