"""Run a fake provider server as a process: ``python -m meerkat.testing --help``.

It prints its URL on the first line of stdout, then serves until killed. Point
providers at it with config ``[providers.NAME] base_url`` or ``*_BASE_URL``
(and any non-empty API key).
"""

from __future__ import annotations

import argparse
import json
import sys

import trio

from .fake_server import FakeProviderServer, serve_fake_provider_server
from .script import Reply, script_from_json


def main(argv: list[str] | None = None) -> int:
    """Parse arguments and serve."""
    parser = argparse.ArgumentParser(
        prog="python -m meerkat.testing",
        description="A fake LLM vendor server (Anthropic, OpenAI Responses, chat completions, Gemini) on loopback.",
        epilog='example: python -m meerkat.testing --port 0 --reply "Hello from the fake"\n'
               '         python -m meerkat.testing --script script.json   # [{"text": "hi"}, {"fault": "http", "status": 429}]',
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--reply", help="text answered to every call once the script is used up")
    parser.add_argument("--script", help="JSON file: a list of replies and faults, used one per call")
    parser.add_argument("--latency-ms", type=float, default=0.0, help="delay before the first byte")
    parser.add_argument("--tokens-per-second", type=float, default=None, help="pace of the streamed events")
    parser.add_argument("--record-to", metavar="FILE",
                        help="append every request received as a JSON line {vendor, path, body} to FILE")
    args = parser.parse_args(argv)
    server = FakeProviderServer(latency_ms=args.latency_ms, tokens_per_second=args.tokens_per_second,
                                default=Reply(text=args.reply) if args.reply is not None else None,
                                record=args.record_to is not None)  # else nobody outside the process reads them
    server.record_to = args.record_to
    if args.script:
        try:
            with open(args.script, encoding="utf-8") as handle:
                server.script(*script_from_json(json.load(handle)))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            print(f"Error: cannot read script {args.script}: {exc}", file=sys.stderr)
            return 2

    async def run() -> None:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(serve_fake_provider_server, server, args.host, args.port)
            print(url, flush=True)

    try:
        trio.run(run)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
