"""OpenTelemetry traces (placeholder until the tracing observer lands)."""

from __future__ import annotations

import os

__all__ = ["tracing_requested"]


def tracing_requested() -> bool:
    """Whether the environment asks for traces (``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_TRACES_EXPORTER``)."""
    exporter = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    return bool(os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
                or (exporter and exporter != "none"))
