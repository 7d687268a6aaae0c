"""Provider failures, classified once for every vendor.

Each provider adapter turns what went wrong (an HTTP status, a timeout, a
dropped connection, a broken stream) into a :class:`ProviderCallError` through
these functions, so every vendor reports the same ``run_failed.error_report``
reasons and the turn loop retries the same failures:

=========================================  ==========================  =========
condition                                  reason / provider_error_kind  retried
=========================================  ==========================  =========
401, 403                                   ``llm_auth_error``            no
404                                        ``llm_invalid_model``         no
413 or a "request too large" body          ``request_too_large``         no
429                                        ``llm_rate_limited``          yes
503, 529                                   ``server_overloaded``         yes
other 5xx                                  ``server_error``              yes
other 4xx                                  ``invalid_request``           no
connect/read timeout                       ``llm_network_timeout``       yes
connection refused/reset before any data   ``connection_reset``          yes
connection lost mid-stream                 ``incomplete_response``       no
unparseable stream                         ``stream_parse_error``        no
=========================================  ==========================  =========
"""

from __future__ import annotations

import email.utils
import time
from typing import Any, Mapping

from .base import ProviderCallError

__all__ = [
    "status_failure",
    "timeout_failure",
    "connection_failure",
    "stream_failure",
    "parse_retry_after_ms",
    "redact",
]


def redact(text: str, secret: str | None) -> str:
    """``text`` with ``secret`` masked; vendors sometimes echo part of a bad key back."""
    if secret and len(secret) >= 4:
        text = text.replace(secret, "***")
    return text


def parse_retry_after_ms(headers: Mapping[str, str] | None) -> int | None:
    """The server's retry hint in ms: ``retry-after-ms``, ``retry-after`` seconds or an HTTP date."""
    if not headers:
        return None
    raw_ms = headers.get("retry-after-ms")
    if raw_ms:
        try:
            return max(0, int(float(raw_ms)))
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        return max(0, int(float(raw) * 1000))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    return max(0, int((when.timestamp() - time.time()) * 1000))


def _provider_error(kind: str, retryable: bool, detail: dict[str, Any]) -> dict[str, Any]:
    return {"reason_type": "llm_provider_error", "provider_error_kind": kind,
            "provider_error_retryability": "retryable" if retryable else "non_retryable",
            "provider_error": detail}


def status_failure(provider: str, status: int, message: str, *, headers: Mapping[str, str] | None = None,
                   model: str = "") -> ProviderCallError:
    """A non-2xx answer from the vendor."""
    text = f"{provider} returned HTTP {status}: {message}"
    detail = {"status": status, "message": message}
    lowered = message.lower()
    if status in (401, 403):
        return ProviderCallError(f"{text} (check the API key)", reason={"reason_type": "llm_auth_error"},
                                 provider=provider)
    if status == 404:
        return ProviderCallError(text, reason={"reason_type": "llm_invalid_model", "model": model},
                                 provider=provider)
    if status == 413 or "request_too_large" in lowered or "request too large" in lowered:
        return ProviderCallError(text, reason=_provider_error("request_too_large", False, detail), provider=provider)
    if status == 429:
        hint = parse_retry_after_ms(headers)
        reason: dict[str, Any] = {"reason_type": "llm_rate_limited"}
        if hint is not None:
            reason["retry_after_ms"] = hint
        return ProviderCallError(text, reason=reason, retry_kind="rate_limited", retry_after_ms=hint,
                                 provider=provider)
    if status >= 500:
        kind = "server_overloaded" if status in (503, 529) else "server_error"
        return ProviderCallError(text, reason=_provider_error(kind, True, detail), retryable=True,
                                 retry_after_ms=parse_retry_after_ms(headers), provider=provider)
    return ProviderCallError(text, reason=_provider_error("invalid_request", False, detail), provider=provider)


def timeout_failure(provider: str, message: str, duration_ms: int | None = None) -> ProviderCallError:
    """A connect or read timeout before the reply began streaming."""
    reason: dict[str, Any] = {"reason_type": "llm_network_timeout"}
    if duration_ms is not None:
        reason["duration_ms"] = duration_ms
    return ProviderCallError(f"{provider} timed out: {message}", reason=reason, retry_kind="network_timeout",
                             provider=provider)


def connection_failure(provider: str, message: str, *, streamed: bool) -> ProviderCallError:
    """The connection failed: retryable before any data came, an incomplete reply after."""
    if streamed:
        return stream_failure(provider, "incomplete_response", f"connection lost mid-stream: {message}")
    return ProviderCallError(f"could not reach {provider}: {message}",
                             reason=_provider_error("connection_reset", True, {"message": message}),
                             retryable=True, provider=provider)


def stream_failure(provider: str, kind: str, message: str) -> ProviderCallError:
    """The stream broke or said something unparseable (``stream_parse_error``, ``incomplete_response``...)."""
    return ProviderCallError(f"{provider} stream failed: {message}",
                             reason=_provider_error(kind, False, {"message": message}), provider=provider)
