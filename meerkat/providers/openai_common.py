"""What the OpenAI-SDK providers share: building the client and classifying its failures.

Both ``openai`` (Responses API) and ``self_hosted`` (chat completions on any
OpenAI-compatible server) talk through ``openai.AsyncOpenAI`` with the SDK's
retries off; the turn loop retries.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai

from .base import ProviderCallError
from .failures import connection_failure, redact, status_failure, stream_failure, timeout_failure
from .transport import error_text, http_client

__all__ = ["make_client", "classify", "error_event_failure", "usage_counter"]

#: Error codes of an in-stream failure, as the HTTP status they stand for.
_CODE_STATUS = {"rate_limit_exceeded": 429, "insufficient_quota": 429, "server_error": 500,
                "server_is_overloaded": 503, "slow_down": 503, "invalid_prompt": 400,
                "context_length_exceeded": 400, "invalid_api_key": 401}


def make_client(settings: dict[str, Any], base_url: str, api_key: str | None) -> openai.AsyncOpenAI:
    """An ``AsyncOpenAI`` for ``base_url`` with our timeouts and no SDK retries."""
    return openai.AsyncOpenAI(
        # Local servers often take no key; the SDK insists on one, and they ignore it.
        api_key=api_key or "no-key", base_url=base_url, max_retries=0,
        timeout=httpx2.Timeout(settings["read_timeout_s"], connect=settings["connect_timeout_s"]),
        http_client=http_client(settings))


def classify(provider: str, exc: Exception, *, key: str | None, model: str, streamed: bool) -> ProviderCallError:
    """The ProviderCallError for an SDK or transport exception."""
    message = redact(error_text(exc), key)
    if isinstance(exc, openai.APIStatusError):
        return status_failure(provider, exc.status_code, message, headers=exc.response.headers, model=model)
    if isinstance(exc, (openai.APITimeoutError, httpx2.TimeoutException)):
        return timeout_failure(provider, message)
    if isinstance(exc, (openai.APIConnectionError, httpx2.TransportError)):
        return connection_failure(provider, message, streamed=streamed)
    if isinstance(exc, openai.APIError):  # an error object inside the stream
        body = exc.body if isinstance(exc.body, dict) else {}
        return error_event_failure(provider, body.get("code"), message, key=key)
    return stream_failure(provider, "stream_parse_error", message)


def error_event_failure(provider: str, code: Any, message: Any, *, key: str | None) -> ProviderCallError:
    """A failure the server reported inside a 200 stream (``error`` / ``response.failed`` events)."""
    status = _CODE_STATUS.get(str(code), 500)
    return status_failure(provider, status, redact(str(message or code or "stream error"), key))


def _field(value: Any, name: str) -> Any:
    return value.get(name) if isinstance(value, dict) else getattr(value, name, None)


def usage_counter(usage: Any, name: str, detail: str | None = None) -> int:
    """A usage counter from a usage object or its JSON (``detail`` reads a ``*_details`` sub-object); 0 when absent."""
    value = _field(usage, name)
    if detail is not None:
        value = _field(value, detail)
    return value if isinstance(value, int) else 0
