"""The quart-trio application: one small handler per route.

Each handler parses its request (:mod:`.requests`, :mod:`surfaces.session_params`),
makes one call on the :class:`~actors.SessionService` and encodes the answer. No
business rules live here. Turn requests (create, continue) block until the turn
ends, as upstream's do; a client that disconnects meanwhile does not stop the
turn, only an interrupt does.
"""

from __future__ import annotations

from typing import Any

import trio
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from meerkat.errors import ErrorCode, MeerkatError, error_from_code
from meerkat.views import RunResult
from surfaces.network_config import write_config_checked
from surfaces.session_params import config_write, create_options, require_prompt, turn_options

from . import wire
from .auth import OPEN_PATHS, check_bearer, check_loopback_host
from .body_fields import reject_unknown_fields
from .cancellation import HEADER as REQUEST_ID_HEADER, CancellableRequests
from .console import add_console_routes, is_public_console_path
from .health import add_health_route
from .history_routes import add_history_routes
from .live_routes import add_live_routes
from .metrics import add_metrics_route, note_trace_context
from .openapi import openapi_document
from .requests import bool_query, int_query, json_object, label_query, mismatch, resume_cursor, session_locator
from .responses import error_response, http_error_response, internal_error_response, json_response
from .state import RestState
from .streams import open_event_stream
from .turn_stream import stream_first_turn, wants_event_stream

__all__ = ["create_app"]

_BODY_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
_SSE_HEADERS = {"Content-Type": "text/event-stream", "Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def create_app(state: RestState) -> QuartTrio:
    """The app serving ``state.service``."""
    app = QuartTrio("rkat-rest")
    app.config.update(MAX_CONTENT_LENGTH=state.settings.max_body_bytes, JSON_SORT_KEYS=False)
    service = state.service
    token = state.settings.auth_token

    def locate(session_id: str) -> str:
        return session_locator(session_id, state.realm_id)

    cancellables = CancellableRequests(service)

    async def run_turn(session_id: str, prompt: Any, options: dict[str, Any]) -> RunResult:
        with state.turn_in_flight(session_id), cancellables.track(request.headers.get(REQUEST_ID_HEADER)) as entry:
            await cancellables.bind(entry, session_id)
            return await service.start_turn(session_id, prompt, **options)

    async def run_first_turn(prompt: Any, options: dict[str, Any]) -> RunResult:
        with cancellables.track(request.headers.get(REQUEST_ID_HEADER)) as entry:
            return await _run_first_turn(prompt, options, entry)

    async def _run_first_turn(prompt: Any, options: dict[str, Any], entry: Any) -> RunResult:
        # Create and start under a shield: a client leaving at that instant must not
        # leave a session without its first turn. The wait for the result is not
        # shielded: a disconnect only stops the waiting, never the turn.
        with trio.CancelScope(shield=True):
            stream = await service.create_session_streaming(prompt, **options)
            await stream.aclose()  # the answer is the result; the events are on GET /events
            await cancellables.bind(entry, stream.session_id)
        with state.turn_in_flight(stream.session_id):
            try:
                return await stream.result()
            except MeerkatError as exc:
                # The client learns the id of the session its request created, even on failure.
                exc.details.setdefault("session_id", stream.session_id)
                raise

    # -- guards and errors ----------------------------------------------------------

    @app.before_request
    async def receive_body_then_authenticate() -> None:
        # Take in the whole body before any answer, even a rejection: hypercorn can only
        # reuse a keep-alive connection whose request was read to its end, and an answer
        # sent before that left the client's next request on the connection unanswered.
        if request.method in _BODY_METHODS or "Content-Length" in request.headers \
                or "Transfer-Encoding" in request.headers:
            await request.get_data()
        note_trace_context(request.headers)
        if request.path in OPEN_PATHS or is_public_console_path(request.path):
            return
        if token is not None:
            check_bearer(request.headers.get("Authorization"), token)
        else:
            check_loopback_host(request.headers.get("Host"))

    @app.errorhandler(MeerkatError)
    async def on_meerkat_error(exc: MeerkatError) -> Response:
        headers = {"WWW-Authenticate": 'Bearer realm="rkat-rest"'} if exc.spec.http_status == 401 else None
        return error_response(exc, headers)

    @app.errorhandler(HTTPException)
    async def on_http_error(exc: HTTPException) -> Response:
        return http_error_response(exc, request.method, request.path, state.settings.max_body_bytes)

    @app.errorhandler(Exception)
    async def on_unexpected(exc: Exception) -> Response:
        return internal_error_response(exc, request.method, request.path)

    # -- sessions -------------------------------------------------------------------

    @app.post("/sessions")
    async def create_session() -> Response:
        body = await json_object(request)
        reject_unknown_fields(body, "CreateSessionRequest")
        prompt = require_prompt(body)
        options = create_options(body)
        if wants_event_stream(request.headers.get("Accept")):
            return await stream_first_turn(state, prompt, options)
        result = await run_first_turn(prompt, options)
        return json_response(result.to_wire())

    @app.post("/sessions/<session_id>/messages")
    async def continue_session(session_id: str) -> Response:
        sid = locate(session_id)
        body = await json_object(request)
        wrong = mismatch(sid, body.get("session_id"), state.realm_id)
        if wrong is not None:
            raise wrong
        reject_unknown_fields(body, "TurnRequest")
        prompt = require_prompt(body)
        result = await run_turn(sid, prompt, turn_options(body))
        return json_response(result.to_wire())

    @app.get("/sessions")
    async def list_sessions() -> Response:
        sessions = await service.list_sessions(limit=int_query(request, "limit"), offset=int_query(request, "offset"),
                                               labels=label_query(request))
        return json_response(wire.session_list(sessions))

    @app.get("/sessions/<session_id>")
    async def read_session(session_id: str) -> Response:
        return json_response(wire.session_read(await service.read_session(locate(session_id))))

    @app.get("/sessions/<session_id>/history")
    async def read_history(session_id: str) -> Response:
        page = await service.read_history(locate(session_id), offset=int_query(request, "offset") or 0,
                                          limit=int_query(request, "limit"))
        return json_response(page.to_wire())

    @app.delete("/sessions/<session_id>")
    async def archive_session(session_id: str) -> Response:
        sid = locate(session_id)
        await service.archive(sid)
        return json_response({"session_id": sid, "archived": True})

    @app.post("/sessions/<session_id>/interrupt")
    async def interrupt_session(session_id: str) -> Response:
        result = await service.interrupt(locate(session_id))
        return json_response(result.to_wire())

    @app.get("/sessions/<session_id>/events")
    async def session_events(session_id: str) -> Response:
        sid = locate(session_id)
        if request.method == "HEAD":  # headers only: a stream would never end for a body nobody reads
            await service.read_session(sid)
            return Response(b"", headers=_SSE_HEADERS)
        frames = await open_event_stream(state, sid, resume_cursor(request), bool_query(request, "stop_after_run"))
        response = Response(frames, headers=_SSE_HEADERS)
        response.timeout = None  # Quart's RESPONSE_TIMEOUT would otherwise cut the stream after 60 s
        return response

    # -- config, catalog, health, schema ----------------------------------------

    @app.get("/config")
    async def get_config() -> Response:
        return json_response((await service.get_config()).to_wire())

    @app.put("/config")
    async def set_config() -> Response:
        document, expected = config_write(await json_object(request), "config", allow_bare=True)
        view = await write_config_checked(service, document, patch=False, expected_generation=expected,
                                          surface="the REST API")
        return json_response(view.to_wire())

    @app.patch("/config")
    async def patch_config() -> Response:
        patch, expected = config_write(await json_object(request), "patch", allow_bare=True)
        view = await write_config_checked(service, patch, patch=True, expected_generation=expected,
                                          surface="the REST API")
        return json_response(view.to_wire())

    @app.get("/models/catalog")
    async def models_catalog() -> Response:
        return json_response(await service.models_catalog())

    add_health_route(app, state)
    add_history_routes(app, state, locate)
    add_live_routes(app, state, locate)

    @app.post("/requests/<request_id>/cancel")
    async def cancel_request(request_id: str) -> Response:
        if not await cancellables.cancel(request_id):
            raise error_from_code(ErrorCode.NOT_FOUND, f"no cancellable request {request_id!r} is in flight "
                                                       f"(send {REQUEST_ID_HEADER} with the request to cancel)")
        return json_response({"request_id": request_id, "cancelled": True})
    add_metrics_route(app)
    add_console_routes(app)

    document = openapi_document(auth=token is not None, realm_id=state.realm_id)

    @app.get("/openapi.json")
    async def openapi() -> Response:
        return json_response(document)

    return app
