"""``rkat-mcp``: the host's sessions as MCP tools, over stdio (default) or streamable HTTP.

Examples::

    rkat-mcp                                   # stdio, a fresh realm per start
    rkat-mcp --realm team-alpha --instance mcp-1
    rkat-mcp --realm team-alpha --http 127.0.0.1:8811   # http://127.0.0.1:8811/mcp
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from functools import partial
from importlib import metadata
from typing import TYPE_CHECKING

import trio

from meerkat.errors import InvalidParams, MeerkatError
from surfaces.observability import add_observability_arguments, start_observability
from surfaces.realm_options import RealmOptions, add_realm_arguments, realm_options_from_args
from surfaces.server_args import ServerArgumentParser
from surfaces.startup_errors import single_error

if TYPE_CHECKING:  # imported for real inside _serve, keeping `rkat-mcp --help` light
    from .turns import RunningTurns

__all__ = ["main", "build_parser", "parse_http_address", "BENCH_TOOL_ENV"]

#: Set to 1 to also list the empty ``bench_noop`` tool (used by bench/mcp_roundtrip.py).
BENCH_TOOL_ENV = "RKAT_MCP_BENCH_TOOL"

_EPILOG = """\
examples:
  rkat-mcp                                    serve MCP on stdin/stdout (a fresh realm per start)
  rkat-mcp --realm team-alpha                 keep sessions in realm team-alpha across restarts
  rkat-mcp --realm team-alpha --http 127.0.0.1:8811
                                              streamable HTTP at http://127.0.0.1:8811/mcp
  rkat-mcp --http 127.0.0.1:0                 HTTP on a free port (the URL is printed on stderr)

tools: meerkat_run, meerkat_resume, meerkat_sessions, meerkat_read, meerkat_archive, meerkat_interrupt,
meerkat_config, meerkat_event_stream_open/read/close, meerkat_models_catalog (see docs/mcp.md)
"""


def _version() -> str:
    try:
        return metadata.version("rkat")
    except metadata.PackageNotFoundError:
        return "0"


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``rkat-mcp``."""
    parser = ServerArgumentParser(
        prog="rkat-mcp", description="Serve rkat agent sessions as MCP tools (stdio by default).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--http", metavar="HOST:PORT",
                        help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio (port 0: a free port)")
    parser.add_argument("--auth-token", metavar="TOKEN",
                        help="with --http: require 'Authorization: Bearer TOKEN' on every request (default: "
                             "$RKAT_MCP_TOKEN; required when binding a non-loopback address)")
    parser.add_argument("--allowed-host", action="append", default=[], metavar="NAME[:PORT]",
                        help="with --http: a Host (and Origin) name clients may use besides loopback names, the "
                             "bound address and this machine's name (repeatable)")
    parser.add_argument("--max-sessions", type=int, default=None, metavar="N",
                        help="with --http: open MCP sessions in total (default: 256; past it new ones get 503)")
    parser.add_argument("--sessions-per-client", type=int, default=None, metavar="N",
                        help="with --http: open MCP sessions per client address (default: 32; past it 429)")
    parser.add_argument("--streams-per-client", type=int, default=None, metavar="N",
                        help="open event streams (meerkat_event_stream_open) per client address (default: 32)")
    parser.add_argument("--handshake-timeout", type=float, default=None, metavar="SECS",
                        help="with --http: close a session whose client sends nothing after initialize within "
                             "SECS (default: 30; used sessions idle for 10 minutes)")
    parser.add_argument("--version", action="version", version=f"rkat-mcp {_version()}")
    add_realm_arguments(parser)
    parser.add_argument("--log-level", default="warning", choices=["debug", "info", "warning", "error"],
                        help="stderr log level (default: %(default)s)")
    add_observability_arguments(parser, metrics=True)
    return parser


def parse_http_address(value: str) -> tuple[str, int]:
    """``HOST:PORT`` (IPv6 as ``[::1]:PORT``) -> ``(host, port)``; InvalidParams says what is wrong."""
    host, sep, port_text = value.rpartition(":")
    host = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    if not sep or not host or not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise InvalidParams(f"--http expects HOST:PORT such as 127.0.0.1:8811 (port 0-65535), got {value!r}")
    return host, int(port_text)


def _say(message: str) -> None:
    print(f"rkat-mcp: {message}", file=sys.stderr, flush=True)


async def _serve(realm: RealmOptions, http: tuple[str, int] | None, bench_tool: bool,
                 token: str | None = None, allowed_hosts: list[str] | None = None,
                 session_limits: tuple[int | None, int | None] = (None, None),
                 streams_per_client: int | None = None, handshake_secs: float | None = None) -> None:
    # mcp is imported here, not at module top, so `rkat-mcp --help` stays quick.
    from .server import build_server, serve_http
    from .stdio import serve_stdio
    from .tools import MeerkatTools
    from .turns import RunningTurns

    async with realm.open_service() as service, trio.open_nursery() as turn_watchers:
        tools = MeerkatTools(service, RunningTurns(service, turn_watchers), bench_tool=bench_tool,
                             streams_per_client=streams_per_client)
        server = build_server(tools, version=_version())
        _say(f"starting (realm={service.realm.realm_id}, backend={service.realm.backend}, "
             f"transport={'stdio' if http is None else 'http'})")
        if realm.realm_id is None:
            _say("serving a fresh realm; pass --realm NAME to keep sessions across restarts")
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_stop_on_signals, nursery.cancel_scope)
                if http is None:
                    await serve_stdio(server)  # returns when the client closes stdin
                    await _finish_turns(tools.turns)
                    nursery.cancel_scope.cancel()
                else:
                    url = await nursery.start(partial(serve_http, server, *http, token=token,
                                                      allowed_hosts=allowed_hosts, max_sessions=session_limits[0],
                                                      sessions_per_client=session_limits[1],
                                                      handshake_secs=handshake_secs))
                    _say(f"listening on {url}")
        finally:
            tools.streams.close_all()
            # A stop (signal) lands here with turns still running: closing the service interrupts them.
            turn_watchers.cancel_scope.cancel()


async def _finish_turns(turns: "RunningTurns") -> None:
    """The stdio client went away: a disconnect is not an interrupt, so its running turns finish and are
    committed before the process exits (SIGTERM/SIGINT still stops at once, interrupting them)."""
    if len(turns):
        _say(f"client disconnected; finishing {len(turns)} running turn(s) before exiting")
        await turns.wait_idle()


async def _stop_on_signals(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``rkat-mcp`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        realm = realm_options_from_args(args)
        http = parse_http_address(args.http) if args.http else None
        token = args.auth_token or os.environ.get("RKAT_MCP_TOKEN") or None
        for name in ("max_sessions", "sessions_per_client", "streams_per_client", "handshake_timeout"):
            if getattr(args, name) is not None and not 0 < getattr(args, name) < float("inf"):
                raise InvalidParams(f"--{name.replace('_', '-')} must be a positive number")
        if http is not None and token is None and not _loopback(http[0]):
            raise InvalidParams(f"binding {http[0]} (not a loopback address) requires a token: pass --auth-token "
                                f"or set RKAT_MCP_TOKEN")
    except MeerkatError as exc:
        parser.error(exc.message)
    # Log to stderr only: on stdio, stdout carries the protocol.
    try:
        start_observability("rkat-mcp", args, args.log_level)
    except OSError as exc:
        _say(f"error: cannot serve metrics on {args.metrics[0]}:{args.metrics[1]}: {exc}")
        return 2
    try:
        trio.run(_serve, realm, http, os.environ.get(BENCH_TOOL_ENV) == "1", token, args.allowed_host,
                 (args.max_sessions, args.sessions_per_client), args.streams_per_client, args.handshake_timeout)
    except BaseException as exc:  # noqa: BLE001 - unwrapped, then re-raised unless it is ours to report
        error = single_error(exc)
        if isinstance(error, MeerkatError):
            _say(f"error: {error.message}")
            return error.spec.exit_code
        if isinstance(error, OSError):  # e.g. the HTTP port is taken
            where = f" on {http[0]}:{http[1]}" if http is not None else ""
            _say(f"error: cannot serve{where}: {error.strerror or error}")
            return 1
        if isinstance(error, KeyboardInterrupt):
            return 130
        raise
    return 0


def _loopback(host: str) -> bool:
    # The same rule as rkat-rest's (surfaces.rest.auth), without importing the web stack here.
    import ipaddress

    try:
        return host.lower() == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
