"""The ``rkat-rpc`` console script: serve one realm over JSON-RPC on stdin/stdout.

Only JSON-RPC objects are written to stdout: at start the real stdout is kept
for the protocol and file descriptor 1 is pointed at stderr, so a stray print or
a library's warning can never corrupt the stream. Logs go to stderr.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from typing import Sequence

import trio

from meerkat.errors import MeerkatError

from surfaces.observability import add_observability_arguments, start_observability
from surfaces.realm_options import RealmOptions, add_realm_arguments, realm_options_from_args
from surfaces.server_args import ServerArgumentParser
from surfaces.startup_errors import single_error

from .framing import DEFAULT_MAX_LINE_BYTES

from .server import RpcConnection
from .stdio import stdio_streams

__all__ = ["main", "build_parser"]

log = logging.getLogger("rkat.rpc")

_EXAMPLES = """\
examples:
  rkat-rpc                                   serve a fresh realm (gone with the process unless named)
  rkat-rpc --realm team-alpha --instance worker-1
  rkat-rpc --realm team-alpha --realm-backend sqlite --state-root /data/meerkat
  rkat-rpc --realm ws-1234abcd5678ef90 --context-root ~/project   share a realm the CLI made in ~/project

  echo '{"jsonrpc":"2.0","id":1,"method":"session/create","params":{"prompt":"Hello"}}' | rkat-rpc

protocol: one JSON-RPC 2.0 object per line on stdin and stdout; see docs/rpc.md.
SDKs (meerkat.MeerkatClient, the published meerkat-sdk) start this program themselves.
"""


def build_parser() -> argparse.ArgumentParser:
    """The command line of ``rkat-rpc``."""
    parser = ServerArgumentParser(
        prog="rkat-rpc", description="Serve rkat sessions over newline-delimited JSON-RPC 2.0 on stdin/stdout.",
        epilog=_EXAMPLES, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_realm_arguments(parser)
    parser.add_argument("--max-line-bytes", type=int, default=DEFAULT_MAX_LINE_BYTES, metavar="N",
                        help=f"refuse request lines longer than N bytes (default {DEFAULT_MAX_LINE_BYTES})")
    parser.add_argument("--eof-grace", type=float, default=DEFAULT_EOF_GRACE, metavar="SECONDS",
                        help="after stdin closes, how long requests in flight may take before running turns "
                             f"are interrupted (committed as interrupted) and the server exits "
                             f"(default {DEFAULT_EOF_GRACE:g})")
    parser.add_argument("--log-level", default=os.environ.get("RKAT_LOG", "warning"),
                        choices=["debug", "info", "warning", "error"],
                        help="stderr log level (default $RKAT_LOG or warning)")
    add_observability_arguments(parser, metrics=True)
    # What the published SDK's connect(context_root=..., user_config_root=..., live_ws=...,
    # live_webrtc=...) appends: known here, so each gets a meaning or a precise refusal.
    roots = parser.add_argument_group("context (what SDKs' connect() passes)")
    roots.add_argument("--user-config-root", metavar="DIR",
                       help="accepted for SDK compatibility; this host keeps all config in the realm, so there "
                            "is nothing user-level to read")
    roots.add_argument("--live-ws", metavar="ADDR", help=argparse.SUPPRESS)
    roots.add_argument("--live-webrtc", action="store_true", help=argparse.SUPPRESS)
    return parser


#: Seconds requests in flight may go on after stdin closes: enough for ``rkat-rpc < file``
#: with quick turns, short enough that a client that went away does not leave a process behind.
DEFAULT_EOF_GRACE = 2.0

#: Events one streamed turn may queue for a client that reads slower than the turn produces.
#: Past it the client gets a stream_truncated marker; real models never come close, the
#: offline mock with no delay (benchmarks) does at 4096, the runtime's default.
TURN_STREAM_CAPACITY = 1 << 16


async def _serve(options: RealmOptions, input_fd: int, output_fd: int, max_line_bytes: int,
                 eof_grace: float) -> None:
    from actors import HostOptions

    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async with options.open_service(HostOptions(turn_stream_capacity=TURN_STREAM_CAPACITY)) as service:
            realm = service.realm
            if options.realm_id is None:
                print(f"rkat-rpc: serving a fresh realm {realm.realm_id} (backend {realm.backend}); "
                      f"pass --realm ID to keep sessions across restarts", file=sys.stderr, flush=True)
            else:
                log.info("serving realm %s (backend %s)", realm.realm_id, realm.backend)
            stdin, stdout = stdio_streams(input_fd, output_fd)
            connection = RpcConnection(service, stdout, max_line_bytes=max_line_bytes, eof_grace=eof_grace)
            async with trio.open_nursery() as nursery:

                async def stop_on_signal() -> None:
                    async for signum in signals:
                        log.info("%s: interrupting running turns, answering pending calls and exiting",
                                 signal.Signals(signum).name)
                        nursery.start_soon(stop_at_second_signal)
                        await connection.shut_down()
                        nursery.cancel_scope.cancel()
                        return

                async def stop_at_second_signal() -> None:
                    async for _ in signals:
                        nursery.cancel_scope.cancel()
                        return

                nursery.start_soon(stop_on_signal)
                await connection.serve(stdin)
                nursery.cancel_scope.cancel()
        # Leaving open_service interrupted running turns and committed them as interrupted.


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``rkat-rpc`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.max_line_bytes < 1024:
        parser.error("--max-line-bytes must be at least 1024")
    if not args.eof_grace >= 0:
        parser.error("--eof-grace must be a number of seconds >= 0")
    if args.live_ws is not None or args.live_webrtc:
        parser.error("live channels (--live-ws, --live-webrtc) are not supported by this host; "
                     "connect without live_ws/live_webrtc")
    try:
        options = realm_options_from_args(args)
    except MeerkatError as exc:
        parser.error(exc.message)
    try:
        start_observability("rkat-rpc", args, args.log_level)
    except OSError as exc:
        print(f"rkat-rpc: error: cannot serve metrics on {args.metrics[0]}:{args.metrics[1]}: {exc}", file=sys.stderr)
        return 2
    # Keep the real stdout for the protocol; anything else printing to fd 1 lands on stderr.
    output_fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    input_fd = os.dup(0)
    try:
        trio.run(_serve, options, input_fd, output_fd, args.max_line_bytes, args.eof_grace)
    except BaseException as caught:  # noqa: BLE001 - nurseries wrap the one error an operator can fix
        error = single_error(caught)
        if isinstance(error, MeerkatError):  # the realm could not be opened (corrupt config.toml, bad backend...)
            print(f"rkat-rpc: error: {error.message}", file=sys.stderr)
            return 2
        if isinstance(error, KeyboardInterrupt):
            return 130
        raise
    return 0


if __name__ == "__main__":
    sys.exit(main())
