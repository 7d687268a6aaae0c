"""OpenTelemetry traces, optional: ``pip install 'rkat[otel]'``.

Off unless the environment asks (:func:`tracing_requested`:
``OTEL_EXPORTER_OTLP_ENDPOINT``, ``OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`` or an
``OTEL_TRACES_EXPORTER`` other than ``none``). Then :func:`enable_from_env`
builds the SDK's tracer provider with the standard ``OTEL_*`` settings and
installs a :class:`~meerkat.observability.otel.TracingObserver`. Nothing here
imports OpenTelemetry until that happens, so a host without tracing pays only
for one ``os.environ`` lookup at start-up.

Prompt and completion text go into spans only when
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = ["tracing_requested", "content_capture_requested", "enable_from_env"]

_TRUE = {"1", "true", "yes", "on"}


def tracing_requested() -> bool:
    """Whether the environment asks for traces."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter == "none" or os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() in _TRUE:
        return False
    return bool(exporter or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT")
                or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))


def content_capture_requested() -> bool:
    """Whether prompt and completion text may go into spans (off unless explicitly enabled)."""
    return os.environ.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower() in _TRUE


def enable_from_env(service_name: str) -> Any:
    """Build a tracer provider from the ``OTEL_*`` environment and install a tracing observer.

    Exporters (``OTEL_TRACES_EXPORTER``, comma-separated): ``otlp`` (the default;
    OTLP over HTTP/protobuf to ``OTEL_EXPORTER_OTLP_ENDPOINT``) and ``console``.
    Raises ImportError when the ``otel`` extra is not installed.
    """
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    from . import install
    from .otel import TracingObserver

    resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME") or service_name})
    provider = TracerProvider(resource=resource)  # shut down (flushed) at exit
    names = [n.strip().lower() for n in (os.environ.get("OTEL_TRACES_EXPORTER") or "otlp").split(",") if n.strip()]
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        elif name == "console":
            provider.add_span_processor(BatchSpanProcessor(ConsoleSpanExporter()))
        else:
            raise ValueError(f"OTEL_TRACES_EXPORTER: unknown exporter {name!r} (this host knows otlp, console, none)")
    return install(TracingObserver(provider.get_tracer("rkat"), capture_content=content_capture_requested()))
