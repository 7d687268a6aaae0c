"""Running one turn from the command line: output, spinner and Ctrl-C.

Every turn runs through the streaming API, even when nothing is streamed to the
screen, so the CLI knows the session id from the start and can interrupt it.

Ctrl-C during a turn interrupts it the way ``rkat session interrupt`` would: the
host cancels the turn and commits what was already said (the user's prompt and
the partial answer, with stop reason ``cancelled``), then the command exits
with 130 (the shell's code for SIGINT). A second Ctrl-C stops waiting for that
commit; the host still records the run as interrupted on its way out.
"""

from __future__ import annotations

import signal
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, AsyncIterator, Awaitable, Callable

import asyncclick as click
import trio

from meerkat.errors import RequestCancelled

from .handles import short_handle
from .terminal_text import visible
from .output import print_json
from .render import StreamRenderer, StreamView, run_summary
from .spinner import Spinner

if TYPE_CHECKING:
    from actors import SessionService, TurnStream
    from meerkat.views import RunResult

__all__ = ["Presentation", "run_turn", "SIGINT_EXIT_CODE"]

#: 128 + SIGINT, what shells report for a command stopped by Ctrl-C.
SIGINT_EXIT_CODE = 130
#: Events that end the "waiting for the model" phase.
_FIRST_OUTPUT = frozenset({"text_delta", "reasoning_delta", "tool_call_requested"})


@dataclass(frozen=True)
class Presentation:
    """How a turn is shown: output format, streaming, view."""

    output_format: str = "text"
    stream: bool | None = None
    view: StreamView = StreamView()

    @property
    def streaming(self) -> bool:
        """Stream when asked; by default only text output to a terminal streams."""
        if self.stream is not None:
            return self.stream
        return self.output_format == "text" and sys.stdout.isatty()


@dataclass
class _Interrupt:
    requested: bool = False


async def run_turn(service: "SessionService", start: Callable[[], Awaitable["TurnStream"]],
                   presentation: Presentation, *, resumed: bool,
                   continue_hint: Callable[[str], str] | None = None) -> "RunResult":
    """Start the turn with ``start()``, show it, and print its result.

    ``continue_hint(session_id)`` says how to go on after an interrupt (default: the
    ``rkat run --resume`` command); ``rkat chat`` just takes the next line.
    """
    json_output = presentation.output_format == "json"
    # With JSON on stdout, streamed text goes to stderr so stdout stays one JSON document.
    renderer = StreamRenderer(presentation.view, sys.stderr if json_output else sys.stdout, sys.stderr,
                              color=sys.stderr.isatty())
    spinner = Spinner(sys.stderr) if sys.stdout.isatty() and sys.stderr.isatty() else None
    interrupt = _Interrupt()
    with trio.open_signal_receiver(signal.SIGINT) as sigints:
        if spinner:
            spinner.start()
        try:
            stream = await start()
            async with trio.open_nursery() as nursery:
                if spinner:
                    nursery.start_soon(spinner.animate)
                nursery.start_soon(_interrupt_on_sigint, sigints, service, stream.session_id, interrupt, spinner)
                async for envelope in stream:
                    if envelope.type == "retrying":
                        _show_retry(envelope.payload, spinner, shown=presentation.streaming)
                    if presentation.streaming:
                        if spinner and envelope.type in _FIRST_OUTPUT:
                            spinner.stop()
                        renderer.handle(envelope)
                nursery.cancel_scope.cancel()
        finally:
            if spinner:
                spinner.stop()
            renderer.finish()
        try:
            result = await stream.result()
        except RequestCancelled as cancelled:
            kept = (continue_hint(stream.session_id) if continue_hint else
                    f"The partial answer is kept in session {stream.session_id} "
                    f"(continue with: rkat run --resume {short_handle(stream.session_id)} \"...\")")
            if not interrupt.requested:  # `rkat session interrupt`, REST, an SDK... from another process
                click.echo(f"Interrupted from elsewhere (an interrupt of this session by another command "
                           f"or surface). {kept}", err=True)
                raise click.exceptions.Exit(cancelled.spec.exit_code) from None
            click.echo(f"Interrupted. {kept}", err=True)
            raise click.exceptions.Exit(SIGINT_EXIT_CODE) from None
    _print_result(result, presentation, printed_text=presentation.streaming and renderer.printed_text,
                  resumed=resumed)
    if presentation.streaming:
        renderer.check_focus(result.session_id)
    return result


def _show_retry(payload: object, spinner: Spinner | None, *, shown: bool) -> None:
    """A failed model call is retried: say so even without ``--stream`` (a stall is never silent)."""
    failure, plan = payload.retry.failure, payload.retry.plan  # type: ignore[attr-defined]
    if spinner:
        spinner.retry(plan.attempt, plan.max_retries, plan.selected_delay_ms / 1000)
        spinner.clear()
    if not shown:  # the stream renderer prints its own line for it
        click.echo(f"{failure.message}: retry {plan.attempt}/{plan.max_retries} "
                   f"in {plan.selected_delay_ms / 1000:.3g} s", err=True)


async def _interrupt_on_sigint(sigints: AsyncIterator[int], service: "SessionService",
                               session_id: str, interrupt: _Interrupt, spinner: Spinner | None) -> None:
    async for _ in sigints:
        if spinner:
            spinner.stop()  # erased before anything else is said, never left half-drawn
        if interrupt.requested:
            raise KeyboardInterrupt  # a second Ctrl-C: stop waiting for the commit
        interrupt.requested = True
        click.echo("\nInterrupting...", err=True)
        await service.interrupt(session_id)


def _print_result(result: "RunResult", presentation: Presentation, *, printed_text: bool, resumed: bool) -> None:
    if presentation.output_format == "json":
        print_json({**result.to_wire(), "model": result.model, "stop_reason": result.stop_reason})
        return
    if not printed_text:
        click.echo(visible(result.text))
    click.echo("\n" + run_summary(result, resumed=resumed), err=True)
