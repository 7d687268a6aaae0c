"""The web console: a small offline page served by ``rkat-rest`` at ``/console``.

Plain HTML, CSS and JavaScript shipped inside this package (``assets/``): no
CDN, no build step. The page talks to the same JSON routes and event streams
as any client, with the same auth: on a server with a token, the user enters
it once and the page keeps it for the tab (``sessionStorage``) and sends it as
``Authorization: Bearer``. The page and its assets hold no data, so they load
without a token; everything they show comes through authenticated routes,
plus one of the console's own: ``GET /console/api/providers`` (which
providers have credentials, never the keys).
"""

from __future__ import annotations

from importlib import resources

from quart import Response, redirect
from quart_trio import QuartTrio

from meerkat.errors import ErrorCode, error_from_code
from meerkat.providers.credentials import KEY_VARIABLES, find_api_key

from ..responses import json_response

__all__ = ["ASSET_NAMES", "add_console_routes", "is_public_console_path"]

_ASSETS = {
    "console.css": "text/css; charset=utf-8",
    "console.js": "text/javascript; charset=utf-8",
}
#: The files served under ``/console/assets/``.
ASSET_NAMES = frozenset(_ASSETS)
#: The page may only talk to this server and load its own files.
_PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
                               "img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


def is_public_console_path(path: str) -> bool:
    """Whether ``path`` is the console's page or one of its files (served without a token)."""
    return path in ("/", "/console", "/console/") or path.startswith("/console/assets/")


def _asset(name: str) -> bytes:
    return resources.files(__package__).joinpath("assets", name).read_bytes()


def add_console_routes(app: QuartTrio) -> None:
    """``/`` (a redirect), ``/console``, its assets and ``/console/api/providers``."""
    page = _asset("index.html")
    assets = {name: _asset(name) for name in _ASSETS}

    @app.get("/")
    async def root() -> Response:
        return redirect("/console", 302)  # type: ignore[return-value]

    @app.get("/console")
    @app.get("/console/")
    async def console_page() -> Response:
        return Response(page, content_type="text/html; charset=utf-8", headers=_PAGE_HEADERS)

    @app.get("/console/assets/<name>")
    async def console_asset(name: str) -> Response:
        if name not in assets:
            raise error_from_code(ErrorCode.NOT_FOUND, f"no console asset {name!r}")
        return Response(assets[name], content_type=_ASSETS[name], headers=_PAGE_HEADERS)

    @app.get("/console/api/providers")
    async def console_providers() -> Response:
        body = {"providers": [
            {"provider": name, "credentials": find_api_key(name) is not None, "variables": list(variables)}
            for name, variables in KEY_VARIABLES.items()] + [
            {"provider": "mock", "credentials": True, "variables": []}]}
        return json_response(body)
