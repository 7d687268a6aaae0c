"""Who may talk to the server.

By default ``rkat-rest`` binds 127.0.0.1 and needs no token: only programs on
this machine reach it. Binding any other address requires a bearer token, and
with a token every route but ``/health`` needs ``Authorization: Bearer <token>``.

Without a token the server also checks the ``Host`` header names a loopback
host. That stops DNS rebinding: a web page whose name resolves to 127.0.0.1
would otherwise reach the local agent from the user's browser.
"""

from __future__ import annotations

import hmac
import ipaddress

from meerkat.errors import ErrorCode, MeerkatError, error_from_code

__all__ = ["is_loopback", "check_bearer", "check_loopback_host", "OPEN_PATHS"]

#: Routes answered without a token (liveness probes).
OPEN_PATHS = frozenset({"/health"})


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    host = host.strip("[]").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _unauthorized(message: str) -> MeerkatError:
    return error_from_code(ErrorCode.UNAUTHORIZED, message)


def check_bearer(header: str | None, token: str) -> None:
    """Raise UNAUTHORIZED unless ``header`` is ``Bearer <token>``."""
    if not header:
        raise _unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    scheme, _, given = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        raise _unauthorized("invalid bearer token")


def check_loopback_host(host_header: str | None) -> None:
    """Raise UNAUTHORIZED if the ``Host`` header names a non-loopback host (token-less servers only)."""
    if not host_header:
        return  # HTTP/1.0 without Host: cannot come from a browser page
    host = host_header.rsplit(":", 1)[0] if not host_header.endswith("]") else host_header
    if not is_loopback(host):
        raise _unauthorized(f"Host {host_header!r} is not a loopback name; this server has no token and "
                            "only answers local clients (start it with --auth-token to serve others)")
