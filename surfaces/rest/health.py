"""``GET /health``: the liveness probe a load balancer polls (never needs a token).

``200 ok`` (text) while the realm's store answers; ``503`` with a JSON body of
problems when it does not: a damaged file realm, or for a ``postgres`` realm a
database that is unreachable (the next probe after it returns answers ``200``
again). A client sending ``Accept: application/json`` gets JSON either way,
with a ``database`` object for a postgres realm: reachable, latency, server and
schema version, and, to a caller that could use the API (a valid token, or a
token-less server, which only answers its own machine), the database's URL
without its password. Files are named relative to the realm (``<realm>/...``).
"""

from __future__ import annotations

from typing import Any

from quart import Response, request
from quart_trio import QuartTrio

from actors.store_health import check_database, check_store
from meerkat.errors import MeerkatError

from .auth import check_bearer
from .responses import json_response
from .state import RestState

__all__ = ["add_health_route"]

#: Database fields only a caller allowed to use the API sees: they name hosts and accounts.
_PRIVATE_DATABASE_FIELDS = ("url", "database_id")


def _authorized(token: str | None) -> bool:
    if token is None:
        return True
    try:
        check_bearer(request.headers.get("Authorization"), token)
    except MeerkatError:
        return False
    return True


def add_health_route(app: QuartTrio, state: RestState) -> None:
    """Register ``GET /health`` on ``app``."""
    service = state.service

    @app.get("/health")
    async def health() -> Response:
        # "ok" only while the store answers: a damaged realm or a lost database must not pass a probe.
        probe = await check_database(service)
        problems = await check_store(service, full_paths=False, probe=probe)
        body: dict[str, Any] = {"status": "unhealthy" if problems else "ok", "problems": problems}
        if probe is not None:
            database = probe.to_dict()
            if not _authorized(state.settings.auth_token):
                for field in _PRIVATE_DATABASE_FIELDS:
                    database.pop(field, None)
                body["problems"] = problems = [p.replace(probe.url, "<database>") for p in problems]
            body["database"] = database
        if problems:
            return json_response(body, status=503)
        if request.accept_mimetypes.best_match(["text/plain", "application/json"]) == "application/json":
            return json_response(body)
        return Response("ok", content_type="text/plain; charset=utf-8")
