"""Who may talk to ``rkat-mcp --http``: the same rule as ``rkat-rest``.

* On a loopback address no token is needed: only programs on this machine reach it.
* Any other address requires a bearer token (``--auth-token`` or ``RKAT_MCP_TOKEN``);
  every request must then carry ``Authorization: Bearer <token>``.
* The Host/Origin guard against DNS rebinding stays on whatever the address: the
  ``Host`` must be a loopback name, the bound address, this machine's name, or one
  given with ``--allowed-host``; a browser ``Origin`` must name one of those too.
"""

from __future__ import annotations

import hmac
import json
import socket
from typing import Any, Awaitable, Callable

from mcp.server.transport_security import TransportSecuritySettings

from meerkat.errors import InvalidParams
from surfaces.rest.auth import is_loopback

__all__ = ["TOKEN_ENV", "check_bind", "security_settings", "require_bearer"]

TOKEN_ENV = "RKAT_MCP_TOKEN"

_LOOPBACK_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
_WILDCARDS = {"0.0.0.0", "::", ""}


def check_bind(host: str, token: str | None) -> None:
    """INVALID_PARAMS for a non-loopback address without a token."""
    if token is None and not is_loopback(host):
        raise InvalidParams(f"binding {host} (not a loopback address) requires a token: pass --auth-token or "
                            f"set {TOKEN_ENV}")


def _host_pattern(name: str) -> str:
    """A Host header pattern: ``name`` with its port, or any port (``:*``) when it has none."""
    name = name.strip().lower()
    if name.startswith("["):
        return name if "]:" in name else f"{name}:*"
    if name.count(":") > 1:  # a bare IPv6 address
        return f"[{name}]:*"
    return name if ":" in name else f"{name}:*"


def security_settings(host: str, allowed_hosts: list[str]) -> TransportSecuritySettings:
    """The Host/Origin guard for a server bound to ``host`` (always on)."""
    names = [*_LOOPBACK_HOSTS, *allowed_hosts]
    if host not in _WILDCARDS:
        names.append(host)
    else:
        names.append(socket.gethostname())
    hosts = sorted({_host_pattern(name) for name in names})
    # A browser's Origin carries no port for the scheme's default one.
    bases = {pattern[:-2] if pattern.endswith(":*") else pattern for pattern in hosts}
    origins = sorted({f"{scheme}://{name}" for name in {*hosts, *bases} for scheme in ("http", "https")})
    return TransportSecuritySettings(enable_dns_rebinding_protection=True, allowed_hosts=hosts,
                                     allowed_origins=origins)


Asgi = Callable[[dict, Any, Any], Awaitable[None]]


def require_bearer(app: Asgi, token: str) -> Asgi:
    """``app`` answering 401 to any HTTP request without ``Authorization: Bearer <token>``."""
    expected = token.encode()

    async def gate(scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") == "http":
            header = dict(scope.get("headers") or []).get(b"authorization", b"")
            scheme, _, given = header.partition(b" ")
            if scheme.lower() != b"bearer" or not hmac.compare_digest(given.strip(), expected):
                body = json.dumps({"error": "missing or invalid bearer token: send 'Authorization: Bearer <token>'"
                                   }).encode()
                await send({"type": "http.response.start", "status": 401, "headers": [
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    (b"www-authenticate", b'Bearer realm="rkat-mcp"')]})
                await send({"type": "http.response.body", "body": body})
                return
        await app(scope, receive, send)
    return gate
