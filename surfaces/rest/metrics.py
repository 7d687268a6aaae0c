"""``GET /metrics`` (Prometheus text format) and the trace context of incoming requests."""

from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

from quart import Response
from quart_trio import QuartTrio

from meerkat import observability
from surfaces.observability import process_metrics

if TYPE_CHECKING:
    from werkzeug.datastructures import Headers

__all__ = ["add_metrics_route", "note_trace_context"]


def add_metrics_route(app: QuartTrio) -> None:
    """Serve this process's metrics at ``GET /metrics`` (under the API's auth rule)."""
    metrics = process_metrics()
    from meerkat.observability.metrics import CONTENT_TYPE_LATEST

    @app.get("/metrics")
    async def prometheus_metrics() -> Response:
        return Response(metrics.render(), content_type=CONTENT_TYPE_LATEST)


def note_trace_context(headers: Mapping[str, str] | Headers) -> None:
    """Keep a W3C ``traceparent`` (and ``tracestate``) for the turn this request starts.

    Set for every request, to None without the header: a keep-alive connection may
    serve several requests in one task, and one request's trace must not leak into the next.
    """
    parent = headers.get("traceparent")
    state = headers.get("tracestate")
    observability.set_incoming_trace_context(
        {"traceparent": parent, **({"tracestate": state} if state else {})} if parent else None)
