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


#: Open MCP sessions one client address may hold, and all clients together; how long an
#: idle one stays (the SDK's defaults, 10,000 and 30 minutes, let one client take 77 MB).
DEFAULT_SESSIONS_PER_CLIENT = 32
DEFAULT_MAX_SESSIONS = 256
DEFAULT_SESSION_IDLE_SECS = 600.0
#: How long a session whose client never came back after ``initialize`` stays (it costs
#: as much as a used one, and a client opening sessions in a loop never comes back).
DEFAULT_HANDSHAKE_SECS = 30.0


def limit_sessions_per_client(app: Asgi, manager: Any, per_client: int, *,
                              handshake_secs: float = DEFAULT_HANDSHAKE_SECS,
                              idle_secs: float = DEFAULT_SESSION_IDLE_SECS) -> Asgi:
    """``app`` refusing (429) a request that would open one more MCP session for a client
    address already holding ``per_client`` open ones (``manager``: the SDK's session manager).

    A new session gets ``handshake_secs`` as its idle timeout until its client sends a
    second request on it (the ``notifications/initialized`` that completes the
    handshake), then ``idle_secs``.
    """
    by_client: dict[str, set[str]] = {}
    unconfirmed: set[str] = set()

    def set_idle_timeout(session_id: str, seconds: float) -> None:
        transport = manager._server_instances.get(session_id)
        if transport is not None:  # read when its requests end (pinned mcp version)
            transport._idle_timeout = seconds

    def prune() -> None:
        live = manager._server_instances  # the SDK keeps its open sessions here (pinned mcp version)
        for client in list(by_client):
            by_client[client] &= set(live)
            if not by_client[client]:
                del by_client[client]

    async def limited(scope: dict, receive: Any, send: Any) -> None:
        headers = dict(scope.get("headers") or []) if scope.get("type") == "http" else {}
        if scope.get("type") != "http" or scope.get("method") != "POST" or b"mcp-session-id" in headers:
            session_id = headers.get(b"mcp-session-id", b"").decode("latin-1")
            if session_id in unconfirmed:
                unconfirmed.discard(session_id)
                set_idle_timeout(session_id, idle_secs)
            await app(scope, receive, send)
            return
        client = (scope.get("client") or ("?", 0))[0]
        prune()
        unconfirmed.intersection_update(manager._server_instances)
        held = by_client.setdefault(client, set())
        if len(held) >= per_client:
            body = json.dumps({"jsonrpc": "2.0", "id": None, "error": {
                "code": -32600, "message": f"too many open MCP sessions from {client} ({len(held)}, the limit per "
                                           f"client): close some (DELETE /mcp) or let idle ones expire"}}).encode()
            await send({"type": "http.response.start", "status": 429, "headers": [
                (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                (b"retry-after", b"60")]})
            await send({"type": "http.response.body", "body": body})
            return

        async def noting_send(message: dict) -> None:
            if message.get("type") == "http.response.start":
                session_id = dict(message.get("headers") or []).get(b"mcp-session-id")
                if session_id:
                    held.add(session_id.decode("latin-1"))
                    unconfirmed.add(session_id.decode("latin-1"))
                    set_idle_timeout(session_id.decode("latin-1"), handshake_secs)
            await send(message)

        await app(scope, receive, noting_send)
    return limited
