"""``rkat-rest``: start the REST + SSE daemon.

The listen address comes from ``--host``/``--port``, else from the realm config
``[rest]`` (default 127.0.0.1:8080). Port 0 binds a free port. The bound URL is
printed on stdout as ``rkat-rest listening on http://HOST:PORT``. SIGINT or
SIGTERM shuts down gracefully: open event streams end with ``done``, running
turns are interrupted and committed as interrupted, waiting requests are
answered, then the server stops (a second signal stops it at once).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from functools import partial
from typing import Any, Callable

import trio

from meerkat.errors import InvalidParams, MeerkatError
from surfaces.observability import (
    add_observability_arguments,
    enable_tracing_from_env,
    process_metrics,
    setup_logging,
)
from surfaces.realm_options import RealmOptions, add_realm_arguments, realm_options_from_args
from surfaces.startup_errors import single_error
from surfaces.server_args import ServerArgumentParser

from .auth import is_loopback
from .state import DEFAULT_KEEPALIVE_SECS, DEFAULT_MAX_BODY_BYTES, ServerSettings

__all__ = ["main", "build_parser"]

TOKEN_ENV = "RKAT_REST_TOKEN"
#: Seconds an idle keep-alive connection stays open (hypercorn's default too).
DEFAULT_KEEP_ALIVE_SECS = 5.0
#: Seconds hypercorn waits for open connections once the server has drained itself.
_HTTP_DRAIN_SECS = 1.0

_EPILOG = """\
examples:
  rkat-rest --realm team-alpha                       # 127.0.0.1:8080 unless [rest] in the realm config says otherwise
  rkat-rest --realm team-alpha --port 0              # any free port; the URL is printed on start
  rkat-rest --realm team-alpha --realm-backend sqlite --state-root /data/meerkat
  RKAT_REST_TOKEN=s3cret rkat-rest --realm team-alpha --host 0.0.0.0 --port 8080

  curl -X POST http://localhost:8080/sessions -H "Content-Type: application/json" \\
    -d '{"prompt": "What is the capital of France?", "model": "mock"}'
  curl -N http://localhost:8080/sessions/<session_id>/events

Routes, bodies and events: docs/rest.md, or GET /openapi.json on a running server.
"""


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be in 0..65535 (0 picks a free port), got {port}")
    return port


def _positive(convert: Callable[[str], float]) -> Callable[[str], Any]:
    """An argparse type: ``convert(text)``, which must be > 0."""
    def parse(text: str) -> Any:
        try:
            value = convert(text)
        except ValueError:
            value = 0
        if not value > 0:  # NaN fails too
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    """The ``rkat-rest`` command line."""
    parser = ServerArgumentParser(
        prog="rkat-rest", description="Serve a realm's sessions over HTTP: JSON routes and Server-Sent Events.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_realm_arguments(parser)
    net = parser.add_argument_group("server")
    net.add_argument("--host", help="address to bind (default: [rest] host of the realm config, else 127.0.0.1); "
                                    "a non-loopback address requires a token")
    net.add_argument("--port", type=_port, help="port to bind; 0 picks a free one "
                                                "(default: [rest] port of the realm config, else 8080)")
    net.add_argument("--auth-token", metavar="TOKEN",
                     help=f"require 'Authorization: Bearer TOKEN' on every route but /health "
                          f"(default: ${TOKEN_ENV}; required when binding a non-loopback address)")
    net.add_argument("--max-body-bytes", type=_positive(int), default=DEFAULT_MAX_BODY_BYTES, metavar="N",
                     help="largest request body accepted (default: %(default)s); larger ones get 413")
    net.add_argument("--sse-keepalive", type=_positive(float), default=DEFAULT_KEEPALIVE_SECS, metavar="SECS",
                     help="seconds of silence before an event stream gets a keep-alive comment (default: %(default)s)")
    net.add_argument("--keep-alive-timeout", type=_positive(float), default=DEFAULT_KEEP_ALIVE_SECS, metavar="SECS",
                     help="seconds an idle keep-alive connection stays open (default: %(default)s)")
    net.add_argument("--max-connections", type=_positive(int), default=None, metavar="N",
                     help="open connections served at once; one more is answered 503 and closed "
                          "(default: half the process's file-descriptor limit, at most 1024)")
    net.add_argument("--access-log", action="store_true",
                     help="log one line per request on stderr (client, request line, status, bytes, referrer, "
                          "user agent; off by default)")
    net.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                     help="stderr log level (default: %(default)s)")
    add_observability_arguments(parser, metrics=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``rkat-rest``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        options = realm_options_from_args(args)
    except MeerkatError as exc:
        parser.error(exc.message)
    token = args.auth_token or os.environ.get(TOKEN_ENV) or None
    settings = ServerSettings(auth_token=token, max_body_bytes=args.max_body_bytes, keepalive_secs=args.sse_keepalive)
    setup_logging("rkat-rest", args.log_level, args.log_format)
    enable_tracing_from_env("rkat-rest")
    process_metrics()  # before any actor starts, so the gauges count from zero
    try:
        trio.run(partial(_serve, options, settings, args.host, args.port,
                         keep_alive_secs=args.keep_alive_timeout, max_connections=args.max_connections,
                         access_log=args.access_log))
    except BaseException as exc:  # noqa: BLE001 - unwrapped; what is not ours to report is re-raised
        error = single_error(exc)
        if isinstance(error, MeerkatError):
            print(f"rkat-rest: error: {error.message}", file=sys.stderr)
            return error.spec.exit_code
        if isinstance(error, OSError):
            print(f"rkat-rest: error: cannot listen: {error.strerror or error}"
                  f"{f' ({error.filename})' if error.filename else ''}", file=sys.stderr)
            return 1
        if isinstance(error, KeyboardInterrupt):
            return 130
        raise
    return 0


def _access_logger() -> logging.Logger:
    """``rkat.rest.access`` at INFO whatever ``--log-level`` says: asking for it means wanting it."""
    logger = logging.getLogger("rkat.rest.access")
    logger.setLevel(logging.INFO)
    if not logger.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("rkat-rest: access: %(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    return logger


async def _listen_address(service: Any, host: str | None, port: int | None) -> tuple[str, int]:
    rest = (await service.get_config()).config.get("rest") or {}
    return host or rest.get("host") or "127.0.0.1", port if port is not None else int(rest.get("port", 8080))


def _bind(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def _serve(options: RealmOptions, settings: ServerSettings, host: str | None, port: int | None, *,
                 keep_alive_secs: float = DEFAULT_KEEP_ALIVE_SECS, max_connections: int | None = None,
                 access_log: bool = False) -> None:
    # Imported here: `rkat-rest --help` and bad flags answer without loading the web stack.
    from hypercorn.config import Config as HypercornConfig

    from .http_server import default_max_connections, serve

    from .app import create_app
    from .state import RestState

    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with options.open_service() as service:
            if options.realm_id is None:
                _say(f"rkat-rest: serving a fresh throw-away realm {service.realm.realm_id}, removed on exit "
                     "(pass --realm ID to serve the same realm after a restart)", err=True)
            host, port = await _listen_address(service, host, port)
            if settings.auth_token is None and not is_loopback(host):
                raise InvalidParams(f"binding {host} (not a loopback address) requires a token: "
                                    f"pass --auth-token or set {TOKEN_ENV}")
            state = RestState(service, settings)
            config = HypercornConfig()
            config.bind = [_bind(host, port)]
            config.accesslog = _access_logger() if access_log else None
            # client, method, path, query, status, bytes, microseconds, user agent
            config.access_log_format = '%(h)s "%(m)s %(U)s" query="%(q)s" %(s)s %(b)s %(D)sus "%(a)s"'
            config.loglevel = "WARNING"
            config.keep_alive_timeout = keep_alive_secs
            # By the time hypercorn stops, state.shut_down() has answered every turn request and
            # ended every stream. What may remain are idle keep-alive connections, which hypercorn
            # (0.18, with quart-trio) does not close on shutdown but waits out: keep that wait short.
            config.graceful_timeout = _HTTP_DRAIN_SECS
            shutdown = trio.Event()
            served = trio.Event()

            async def run_server(*, task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await serve(create_app(state), config, shutdown_trigger=shutdown.wait, task_status=task_status,
                                max_connections=max_connections or default_max_connections())
                finally:
                    served.set()

            async with trio.open_nursery() as nursery:
                try:
                    binds = await nursery.start(run_server)
                except BaseException as exc:  # e.g. the port is taken: say which address
                    error = single_error(exc)
                    if isinstance(error, OSError):
                        raise OSError(error.errno, f"{error.strerror or error} on {_bind(host, port)}") from None
                    raise
                _say(f"rkat-rest listening on {binds[0]}")
                async for _ in signals:
                    break
                _say("rkat-rest: shutting down (interrupting running turns)", err=True)
                nursery.start_soon(_stop_on_second_signal, signals, nursery.cancel_scope)
                await state.shut_down()
                shutdown.set()
                await served.wait()
                nursery.cancel_scope.cancel()


def _say(text: str, *, err: bool = False) -> None:
    """Print a status line; a closed stdout/stderr (``rkat-rest | tee log`` and Ctrl-C) never stops the daemon.

    After a failed write the stream's descriptor is pointed at /dev/null, so later
    writes (log lines, the interpreter's final flush) cannot fail either.
    """
    stream = sys.stderr if err else sys.stdout
    try:
        print(text, file=stream, flush=True)
    except (OSError, ValueError):
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2 if err else 1)


async def _stop_on_second_signal(signals: Any, scope: trio.CancelScope) -> None:
    async for _ in signals:
        _say("rkat-rest: second signal, stopping now", err=True)
        scope.cancel()
        return


if __name__ == "__main__":
    sys.exit(main())
