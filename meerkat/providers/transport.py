"""The HTTP transport under every hosted provider: separate timeouts, errors that say which.

A vendor can fail to answer in three distinct ways, each with its own limit
(``[retry]`` in the realm config):

* the connection is not established: ``connect_timeout_ms`` (default 10 s);
* the connection is open but no response headers arrive: ``first_byte_timeout_ms``
  (default 60 s). Without it a server that accepts and never answers held a turn
  for the whole (generous) inactivity timeout, times every retry;
* the reply is streaming and then goes silent: ``stream_inactivity_timeout_ms``
  (default 5 min: long reasoning pauses are legitimate).

The whole turn is bounded by ``limits.max_turn_duration`` elsewhere. Every
failure raised here names the URL and which timeout fired (and its config key),
so the final error tells a user what to fix. :func:`error_text` digs that text
out from under the SDKs' generic wrappers ("Request timed out.").
"""

from __future__ import annotations

from typing import Any, AsyncIterator

import anyio
import httpx2

__all__ = ["FirstByteTimeout", "TimeoutTransport", "http_client", "error_text"]

#: Connection pool limits of the vendors' own default clients.
_LIMITS = httpx2.Limits(max_connections=1000, max_keepalive_connections=100, keepalive_expiry=5.0)


class FirstByteTimeout(httpx2.ReadTimeout):
    """The server accepted the connection but sent no response headers in time."""


def _url(request: httpx2.Request) -> str:
    return str(request.url.copy_with(query=None))


class _InactivityStream(httpx2.AsyncByteStream):
    """A response body whose read timeouts say which URL went silent, and for how long."""

    def __init__(self, inner: Any, request: httpx2.Request, inactivity_s: float) -> None:
        self._inner, self._request, self._inactivity_s = inner, request, inactivity_s

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.ReadTimeout:
            raise httpx2.ReadTimeout(
                f"{_url(self._request)} sent nothing for {self._inactivity_s:g} s mid-stream "
                f"(stream inactivity timeout, retry.stream_inactivity_timeout_ms)", request=self._request) from None

    async def aclose(self) -> None:
        await self._inner.aclose()


class TimeoutTransport(httpx2.AsyncHTTPTransport):
    """``AsyncHTTPTransport`` with a first-byte deadline and errors naming the URL and timeout."""

    def __init__(self, *, connect_s: float, first_byte_s: float, inactivity_s: float) -> None:
        super().__init__(limits=_LIMITS)
        self.connect_s, self.first_byte_s, self.inactivity_s = connect_s, first_byte_s, inactivity_s

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        url = _url(request)
        response: httpx2.Response | None = None
        try:
            with anyio.move_on_after(self.first_byte_s):
                response = await super().handle_async_request(request)
        except httpx2.ConnectTimeout:
            raise httpx2.ConnectTimeout(
                f"could not connect to {url} within {self.connect_s:g} s "
                f"(connect timeout, retry.connect_timeout_ms)", request=request) from None
        except httpx2.ReadTimeout:
            # The read timeout fired while waiting for headers: it is shorter than the first-byte one.
            raise FirstByteTimeout(
                f"{url} accepted the connection but sent no response within {self.inactivity_s:g} s "
                f"(stream inactivity timeout, retry.stream_inactivity_timeout_ms)", request=request) from None
        except httpx2.ConnectError as exc:
            raise httpx2.ConnectError(f"cannot connect to {url}: {exc or type(exc).__name__}",
                                      request=request) from None
        if response is None:
            raise FirstByteTimeout(self._first_byte_message(url), request=request)
        response.stream = _InactivityStream(response.stream, request, self.inactivity_s)
        return response

    def _first_byte_message(self, url: str) -> str:
        return (f"{url} accepted the connection but sent no response within {self.first_byte_s:g} s "
                f"(first-byte timeout, retry.first_byte_timeout_ms)")


def http_client(settings: dict[str, Any], **kwargs: Any) -> httpx2.AsyncClient:
    """An ``httpx2.AsyncClient`` for a provider, with the realm's three timeouts."""
    connect_s = settings.get("connect_timeout_s", 10.0)
    inactivity_s = settings.get("read_timeout_s", 300.0)
    first_byte_s = settings.get("first_byte_timeout_s", 60.0)
    transport = TimeoutTransport(connect_s=connect_s, first_byte_s=first_byte_s, inactivity_s=inactivity_s)
    return httpx2.AsyncClient(transport=transport, timeout=httpx2.Timeout(inactivity_s, connect=connect_s),
                              follow_redirects=True, **kwargs)


def error_text(exc: BaseException) -> str:
    """The most telling message of ``exc``: the transport's own when an SDK wrapped it."""
    cause = exc.__cause__
    if isinstance(cause, httpx2.TransportError) and str(cause):
        return str(cause)
    return str(getattr(exc, "message", None) or exc) or type(exc).__name__
