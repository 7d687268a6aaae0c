"""What the servers share to be watched: the process's metrics, its tracing, its log format.

Every server process installs one Prometheus observer (:func:`process_metrics`);
``rkat-rest`` serves it at ``GET /metrics``, ``rkat-rpc`` and ``rkat-mcp`` on
their own listener with ``--metrics HOST:PORT`` (:func:`serve_metrics`, which
keeps stdio free for the protocol). Tracing turns on when the environment asks
for it (:func:`enable_tracing_from_env`). Nothing here imports
``prometheus_client`` or OpenTelemetry until a server calls it.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Any

from meerkat import observability

if TYPE_CHECKING:
    from meerkat.observability.metrics import PrometheusObserver

__all__ = ["process_metrics", "serve_metrics", "metrics_address", "add_observability_arguments",
           "setup_logging", "enable_tracing_from_env"]

_metrics: "PrometheusObserver | None" = None
log = logging.getLogger("rkat.observability")


def process_metrics() -> "PrometheusObserver":
    """This process's Prometheus observer, installed on first use."""
    global _metrics
    if _metrics is None:
        from meerkat.observability.metrics import PrometheusObserver

        _metrics = PrometheusObserver()
        observability.install(_metrics)
    return _metrics


def metrics_address(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:9464`` for IPv6; port 0 picks a free one) as a pair; argparse type."""
    host, sep, port_text = text.rpartition(":")
    host = host.strip("[]")
    try:
        port = int(port_text)
    except ValueError:
        port = -1
    if not sep or not host or not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (e.g. 127.0.0.1:9464), got {text!r}")
    return host, port


def serve_metrics(address: tuple[str, int], program: str) -> str:
    """Serve ``GET /metrics`` on ``address`` from a daemon thread; returns the URL (printed on stderr)."""
    from prometheus_client import start_http_server

    metrics = process_metrics()
    server, _thread = start_http_server(address[1], addr=address[0], registry=metrics.registry)
    host, port = server.server_address[:2]
    host = host.decode() if isinstance(host, bytes) else host
    url = f"http://{f'[{host}]' if ':' in str(host) else host}:{port}/metrics"
    print(f"{program}: metrics on {url}", file=sys.stderr, flush=True)
    return url


def add_observability_arguments(parser: argparse.ArgumentParser, *, metrics: bool) -> None:
    """``--log-format`` (and ``--metrics HOST:PORT`` for stdio servers)."""
    group = parser.add_argument_group("observability")
    if metrics:
        group.add_argument("--metrics", type=metrics_address, metavar="HOST:PORT",
                           help="serve Prometheus metrics at http://HOST:PORT/metrics (port 0 picks a free one; "
                                "the URL is printed on stderr)")
    group.add_argument("--log-format", choices=["text", "json"], default="text",
                       help="stderr log lines: text, or json (one object per line with time, level, logger, "
                            "message and session_id/run_id/realm_id when known); default: %(default)s")


def enable_crash_reports() -> None:
    """Make a fatal signal loud: the Python stacks of every thread go to stderr before the process dies.

    Python code cannot survive a SIGBUS or SIGSEGV, but it need not die silently. The
    one known way for rkat: SQLite maps the database's ``-shm`` file (the WAL index),
    and truncating it under a running process makes that process's next database
    access a SIGBUS (docs/security.md). The report names the store call it died in.
    Written to the real stderr descriptor, also when the log is JSON lines.
    """
    import faulthandler

    stream = sys.__stderr__
    if stream is not None and not faulthandler.is_enabled():
        faulthandler.enable(file=stream, all_threads=True)


def setup_logging(program: str, level: str, log_format: str, *, json_stderr: bool = True) -> None:
    """Configure the root logger: ``level`` to stderr, as text or JSON lines.

    With JSON and ``json_stderr`` (servers), whatever else the program writes to
    stderr becomes JSON lines too; the CLI keeps its stderr for people. Fatal
    signals are reported too (:func:`enable_crash_reports`).
    """
    enable_crash_reports()
    handler = logging.StreamHandler(sys.stderr)
    if log_format == "json":
        from meerkat.observability.logs import JsonFormatter, JsonLines

        handler.setFormatter(JsonFormatter(program))
        if json_stderr and not isinstance(sys.stderr, JsonLines):
            sys.stderr = JsonLines(sys.stderr, program)  # type: ignore[assignment]
    else:
        handler.setFormatter(logging.Formatter(f"{program}: %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    if root.isEnabledFor(logging.INFO):  # one line per turn start and end (no cost at warning level)
        from meerkat.observability.logs import TurnLogObserver

        if not any(isinstance(o, TurnLogObserver) for o in observability.installed()):
            observability.install(TurnLogObserver())


def enable_tracing_from_env(program: str) -> Any:
    """Turn OpenTelemetry tracing on when ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``OTEL_TRACES_EXPORTER`` is set.

    Returns the installed observer, or None (tracing off, or the ``otel`` extra
    missing: then a warning says what to install).
    """
    from meerkat.observability.tracing import tracing_requested

    if not tracing_requested():
        return None
    from meerkat.observability.tracing import enable_from_env

    try:
        return enable_from_env(service_name=program)
    except ImportError as exc:
        print(f"{program}: warning: OpenTelemetry tracing requested by the environment but not installed "
              f"({exc.name}): pip install 'rkat[otel]'", file=sys.stderr, flush=True)
        return None


def start_observability(program: str, args: argparse.Namespace, level: str) -> None:
    """Apply the parsed observability flags: logging, tracing from the environment, ``--metrics``.

    Raises OSError when the metrics address cannot be bound (the caller reports it).
    """
    setup_logging(program, level, args.log_format)
    enable_tracing_from_env(program)
    address = getattr(args, "metrics", None)
    if address is not None:
        serve_metrics(address, program)


def note_meta_trace_context(meta: Any) -> None:
    """Keep the W3C trace context a request carried in its ``_meta`` (RPC params, MCP requests); None without."""
    parent = meta.get("traceparent") if meta and hasattr(meta, "get") else None
    if not isinstance(parent, str) or not parent:
        observability.set_incoming_trace_context(None)
        return
    state = meta.get("tracestate")
    observability.set_incoming_trace_context(
        {"traceparent": parent, **({"tracestate": state} if isinstance(state, str) and state else {})})
