"""``rkat run``, ``rkat c`` (``continue``) and ``rkat resume``: one turn, new or continued."""

from __future__ import annotations

from typing import Any, Callable

import asyncclick as click

from meerkat.errors import InvalidParams

from .context import realm_options, service_for
from .handles import looks_like_target, resolve_session
from .inputs import STDIN_GRACE_S, STDIN_MODES, parse_labels, parse_params, read_prompt
from .render import VIEWS, StreamView
from .turn import Presentation, run_turn

__all__ = ["run_command", "continue_command", "resume_command"]


def turn_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every turn-running command takes."""
    command = realm_options(command)  # applied first, so listed last in --help
    options = [
        click.option("--stdin", "stdin_mode", type=click.Choice(STDIN_MODES), default="auto", show_default=True,
                     help="Read a piped stdin as the prompt, or as context before PROMPT. auto: with a PROMPT, "
                          f"only if the pipe has data or EOF within {STDIN_GRACE_S:g} s; on: wait for its end; "
                          "off: never."),
        click.option("--stream-focus", "-f", "stream_focus", metavar="SCOPE",
                     help="With --stream-view focus: the scope to show (primary, mob:<member>, ...)."),
        click.option("--stream-view", "-w", "stream_view", type=click.Choice(VIEWS),
                     help="Which scopes to stream: primary (default), mux (all, prefixed), focus. Implies --stream."),
        click.option("--no-stream", "no_stream", is_flag=True, help="Never stream (not even on a terminal)."),
        click.option("--stream", "-s", "stream", is_flag=True,
                     help="Print text as it arrives [default: on when stdout is a terminal and --format is text]."),
        click.option("--json", "json_flag", is_flag=True, help="Same as --format json."),
        click.option("--format", "--output", "-o", "output_format", type=click.Choice(("text", "json")),
                     help="text: the answer [default]; json: the full run result."),
        click.option("--param", "params", multiple=True, metavar="KEY=VALUE",
                     help="A provider parameter (repeatable); VALUE is JSON if it parses, else a string."),
        click.option("--max-tokens", type=click.IntRange(min=1), metavar="N",
                     help="Most output tokens per model call."),
        click.option("--system-prompt", "--system", "system_prompt", metavar="TEXT",
                     help="System prompt (for a resumed session: added from this turn on)."),
        click.option("--provider", "-p", metavar="NAME",
                     help="anthropic, openai, gemini, self_hosted or mock [default: inferred from the model]."),
        click.option("--model", "-m", metavar="MODEL",
                     help="Model id [default: agent.model from config, else the offline mock model]."),
    ]
    for option in options:
        command = option(command)
    return command


def _presentation(output_format: str | None, json_flag: bool, stream_flag: bool, no_stream: bool,
                  stream_view: str | None, stream_focus: str | None) -> Presentation:
    if json_flag and output_format == "text":
        raise InvalidParams("--json cannot be combined with --format text")
    output_format = "json" if json_flag else output_format or "text"
    if stream_flag and no_stream:
        raise InvalidParams("cannot use --stream and --no-stream together")
    stream: bool | None = True if stream_flag else False if no_stream else None
    if stream_focus is not None and stream_view is None:
        stream_view = "focus"
    if stream_view is not None:
        if stream is False:
            raise InvalidParams("--stream-view cannot be combined with --no-stream")
        stream = True
    return Presentation(output_format, stream, StreamView(stream_view or "primary", stream_focus))


def _pop_presentation(options: dict[str, Any]) -> Presentation:
    """The presentation options taken out of a command's ``options`` (the rest are turn settings)."""
    return _presentation(*(options.pop(name) for name in ("output_format", "json_flag", "stream", "no_stream",
                                                          "stream_view", "stream_focus")))


def _turn_overrides(model: str | None, provider: str | None, system_prompt: str | None, max_tokens: int | None,
                    params: tuple[str, ...]) -> dict[str, Any]:
    options = {"model": model, "provider": provider.replace("-", "_") if provider else None,
               "system_prompt": system_prompt, "max_tokens": max_tokens, "provider_params": parse_params(params)}
    return {key: value for key, value in options.items() if value is not None}


async def _continue(ctx: click.Context, target: str, prompt: str | None, options: dict[str, Any]) -> None:
    """Run a turn on the session ``target`` names."""
    presentation = _pop_presentation(options)
    text = read_prompt(prompt, options.pop("stdin_mode"))
    overrides = _turn_overrides(**options)
    async with service_for(ctx) as service:
        session_id = await resolve_session(service, target)
        await run_turn(service, lambda: service.start_turn_streaming(session_id, text, **overrides),
                       presentation, resumed=True)


@click.command("run")
@click.argument("prompt", required=False)
@click.option("--label", "labels", multiple=True, metavar="KEY=VALUE",
              help="Label the new session (repeatable); `session list --format json` shows them.")
@click.option("--resume", is_flag=False, flag_value="last", default=None, metavar="SESSION",
              help="Continue a session: a full id, a unique prefix or suffix, last, or ~N "
                   "(~1 = most recent). A bare --resume means last.")
@click.option("--fork", "fork", metavar="SESSION[@N]",
              help="Run on a new fork of SESSION keeping its first N messages (all without @N); "
                   "SESSION is not changed.")
@turn_options
@click.pass_context
async def run_command(ctx: click.Context, prompt: str | None, labels: tuple[str, ...], resume: str | None,
                      fork: str | None, **options: Any) -> None:
    """Run a prompt: a new session, or a turn on an existing one with --resume.

    \b
    Examples:
      rkat run "What is the capital of France?"
      rkat "What is the capital of France?"            # the same, shorter
      rkat run --model claude-sonnet-4-6 "Hello"
      rkat run --resume "Now explain it in more detail"  # the most recent session
      rkat run --resume ~2 "Go back to this one"        # the second most recent
      rkat run --resume 019c8b99 "Keep going"           # by prefix (or last 8 chars)
      rkat run -s -w mux "Plan the release"
      rkat run --param reasoning_effort=high --label team=alpha "Explain monads"
      git diff | rkat run "Review this change"
      rkat run --fork last@2 "Ask the second question differently"
    """
    if fork is not None:
        if resume is not None:
            raise InvalidParams("--fork and --resume cannot be combined: --fork already names the session")
        from .history import fork_and_run, split_fork_target

        source, at = split_fork_target(fork)
        presentation = _pop_presentation(options)
        text = read_prompt(prompt, options.pop("stdin_mode"))
        await fork_and_run(ctx, source, at, text, parse_labels(labels) or None, presentation,
                           _turn_overrides(**options))
        return
    if resume is not None:
        if labels:
            raise InvalidParams("--label applies to new sessions only; it cannot be combined with --resume")
        if prompt is None and not looks_like_target(resume):
            # `rkat run --resume "keep going"`: the option took the prompt as its value.
            resume, prompt = "last", resume
        await _continue(ctx, resume, prompt, options)
        return
    presentation = _pop_presentation(options)
    text = read_prompt(prompt, options.pop("stdin_mode"))
    create = _turn_overrides(**options)
    label_map = parse_labels(labels)
    if label_map:
        create["labels"] = label_map
    async with service_for(ctx) as service:
        await run_turn(service, lambda: service.create_session_streaming(text, **create), presentation,
                       resumed=False)


@click.command("c")
@click.argument("prompt", required=False)
@turn_options
@click.pass_context
async def continue_command(ctx: click.Context, prompt: str | None, **options: Any) -> None:
    """Continue the most recent session (the same as run --resume last).

    \b
    Examples:
      rkat c "Keep going"
      rkat continue -s "And then?"
    """
    await _continue(ctx, "last", prompt, options)


@click.command("resume")
@click.argument("session", required=False)
@click.argument("prompt", required=False)
@turn_options
@click.pass_context
async def resume_command(ctx: click.Context, session: str | None, prompt: str | None, **options: Any) -> None:
    """Continue a session: rkat resume [SESSION] PROMPT (as run --resume SESSION PROMPT).

    SESSION is a full id, a unique prefix or suffix, last, or ~N (~1 = most
    recent); without it, the most recent session.

    \b
    Examples:
      rkat resume last "Continue"
      rkat resume ~2 "Go back to this one"
      rkat resume 019c8b99 "Keep going"
      rkat resume "Keep going"                          # the most recent session
    """
    if session is not None and prompt is None and not looks_like_target(session):
        session, prompt = "last", session
    await _continue(ctx, session or "last", prompt, options)
