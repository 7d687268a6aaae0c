"""``rkat --log-level LEVEL --log-format text|json``: stderr logs for the CLI.

Without either flag the CLI configures no logging at all (warnings show as bare
lines, as before); with one, stderr gets the servers' format (``rkat: LEVEL
logger: message``, or JSON lines with the turn's session and run ids).
"""

from __future__ import annotations

from typing import Any, Callable

import asyncclick as click

__all__ = ["log_options"]

LEVELS = ["debug", "info", "warning", "error"]


def _apply(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"rkat.{param.name}"] = value
    level, log_format = ctx.meta.get("rkat.log_level"), ctx.meta.get("rkat.log_format")
    if value is not None and (level is not None or log_format is not None):
        from surfaces.observability import setup_logging

        setup_logging("rkat", level or "warning", log_format or "text", json_stderr=False)
    return value


def log_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``--log-level`` and ``--log-format`` to the root command."""
    command = click.option("--log-format", type=click.Choice(["text", "json"]), default=None, expose_value=False,
                           callback=_apply, help="stderr log lines as text or JSON objects (one per line, with "
                                                 "session_id, run_id, realm_id, event) [default: text]")(command)
    return click.option("--log-level", type=click.Choice(LEVELS), default=None, expose_value=False, callback=_apply,
                        help="log to stderr from this level on (info: one line per turn start and end) "
                             "[default: warnings only, unformatted]")(command)
