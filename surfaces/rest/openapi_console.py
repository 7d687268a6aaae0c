"""OpenAPI paths of the web console (``/``, ``/console``, its assets and providers) and ``/metrics``.

Kept apart from ``openapi.py`` like the other route groups; built with that
document's own helpers. The page and its assets are public (``security: []``):
they hold no data. ``/metrics`` and ``/console/api/providers`` follow the API's
auth rule.
"""

from __future__ import annotations

from typing import Any

from .console import ASSET_NAMES

__all__ = ["console_paths", "console_schemas"]

_REF = "#/components/schemas/"
_HTML = {"text/html": {"schema": {"type": "string"}}}


def console_schemas(obj: Any) -> dict[str, Any]:
    """The ``ProvidersCredentials`` schema, built with the document's ``_obj`` helper."""
    provider = obj({"provider": {"type": "string"}, "credentials": {"type": "boolean"},
                    "variables": {"type": "array", "items": {"type": "string"}}},
                   ("provider", "credentials", "variables"))
    return {"ProvidersCredentials": obj(
        {"providers": {"type": "array", "items": provider}}, ("providers",),
        description="Which providers have credentials here (never the keys) and the variables read for them.")}


def console_paths(op: Any, json_body: Any) -> dict[str, Any]:
    """The paths, with the document's ``_op`` and ``_json`` helpers."""
    error = {"application/json": {"schema": {"$ref": _REF + "Error"}}}
    return {
        "/": {"get": {"summary": "Redirects to the web console (/console)", "operationId": "root",
                      "security": [],
                      "responses": {"302": {"description": "Location: /console",
                                            "headers": {"Location": {"schema": {"const": "/console"}}},
                                            "content": _HTML},
                                    "200": {"description": "The console page, for clients that follow "
                                                           "the redirect", "content": _HTML}}}},
        "/console": {"get": {"summary": "The web console's page (also at /console/); no token needed to load "
                                        "it, the page asks for one when the API does",
                             "operationId": "consolePage", "security": [],
                             "responses": {"200": {"description": "The page", "content": _HTML}}}},
        "/console/assets/{name}": {"get": {
            "summary": "A file of the console (its stylesheet and script, shipped in the package)",
            "operationId": "consoleAsset", "security": [],
            "parameters": [{"name": "name", "in": "path", "required": True,
                            "schema": {"type": "string", "enum": sorted(ASSET_NAMES)}}],
            "responses": {"200": {"description": "The file",
                                  "content": {"text/css": {"schema": {"type": "string"}},
                                              "text/javascript": {"schema": {"type": "string"}}}},
                          "404": {"description": "No such asset (NOT_FOUND)", "content": error},
                          "default": {"description": "Any other error, as {error, code, details?}",
                                      "content": error}}}},
        "/console/api/providers": {"get": op(
            "Which providers have credentials here (never the keys)",
            json_body("ProvidersCredentials", "One entry per provider"), (), operationId="consoleProviders")},
        "/metrics": {"get": op(
            "This process's Prometheus metrics (text exposition format; names in docs/observability.md)",
            {"description": "The metrics", "content": {"text/plain": {"schema": {"type": "string"}}}}, (),
            operationId="metrics")},
    }
