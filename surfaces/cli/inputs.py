"""Values from the command line and stdin: ``--param``, ``--label`` and the prompt.

``--param KEY=VALUE`` becomes one ``provider_params`` entry; VALUE is read as
JSON when it parses (``3``, ``true``, ``{"a": 1}``) and as a plain string
otherwise (``high``). ``--label KEY=VALUE`` values are always strings.

The prompt: a stdin that is not a terminal is read to its end. Alone it is the
prompt; with a prompt argument too, it is attached before it as
``<stdin>...</stdin>`` (``git diff | rkat "review this"``). An empty stdin
changes nothing. A terminal is never read.

``--stdin`` says when to read it:

* ``auto`` (the default): with a prompt argument, stdin is read only if data or
  EOF shows up within :data:`STDIN_GRACE_S`. A caller (a test harness, an IDE,
  a supervisor) that hands over a pipe it never writes to nor closes would
  otherwise hang the command forever. Without a prompt argument stdin is the
  only place a prompt can come from, so it is waited for.
* ``on``: always wait for stdin's end (``slow-command | rkat run --stdin on "..."``).
* ``off``: never read it.
"""

from __future__ import annotations

import json
import select
import sys
from typing import Any, Iterable

from meerkat.errors import InvalidParams

__all__ = ["parse_params", "parse_labels", "read_prompt", "require_text", "STDIN_MODES"]

STDIN_MODES = ("auto", "on", "off")
#: How long ``--stdin auto`` waits for a pipe to show data or EOF when a prompt argument was given.
STDIN_GRACE_S = 0.5


def require_text(value: Any, what: str) -> Any:
    """``value`` unchanged if every string in it is valid Unicode; else INVALID_PARAMS naming ``what``.

    Python hands over bytes that are not UTF-8 (in arguments and stdin) as lone
    surrogates, and a JSON ``"\\udcff"`` decodes to one; neither can be stored or sent.
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            bad = value[exc.start]
            shown = f"byte 0x{ord(bad) - 0xDC00:02x}" if 0xDC80 <= ord(bad) <= 0xDCFF else f"U+{ord(bad):04X}"
            raise InvalidParams(f"{what} is not valid UTF-8 text ({shown} at character {exc.start})",
                                details={"option": what}) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            require_text(key, what)
            require_text(item, what)
    elif isinstance(value, list):
        for item in value:
            require_text(item, what)
    return value


def _split_pair(raw: str, flag: str) -> tuple[str, str]:
    key, sep, value = raw.partition("=")
    if not sep or not key.strip():
        raise InvalidParams(f"Invalid {flag} '{raw}': expected KEY=VALUE", details={"option": flag})
    return key.strip(), value


def parse_params(pairs: Iterable[str]) -> dict[str, Any] | None:
    """``--param`` values as a provider_params object (None when there are none)."""
    params: dict[str, Any] = {}
    for raw in pairs:
        key, value = _split_pair(raw, "--param")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return require_text(params, "--param") or None


def parse_labels(pairs: Iterable[str]) -> dict[str, str] | None:
    """``--label`` values as a labels object (None when there are none)."""
    labels = dict(_split_pair(raw, "--label") for raw in pairs)
    return require_text(labels, "--label") or None


def read_prompt(prompt: str | None, stdin_mode: str) -> str:
    """The prompt to send: the argument, stdin, or both (see the module docstring)."""
    require_text(prompt, "the prompt")
    piped = require_text(_read_stdin(wait=stdin_mode == "on" or prompt is None) if stdin_mode != "off" else "",
                         "the prompt on stdin")
    if prompt is not None and piped:
        return f"<stdin>\n{piped}\n</stdin>\n\n{prompt}"
    if prompt is not None:
        return prompt
    if piped:
        return piped
    raise InvalidParams("no prompt: pass one as an argument or on stdin (rkat run \"What is the capital of France?\")")


def _read_stdin(*, wait: bool) -> str:
    """A non-terminal stdin to its end; unless ``wait``, only if it is ready within the grace period."""
    stdin = sys.stdin
    if stdin is None or stdin.closed or stdin.isatty():
        return ""
    if not wait and not _ready(stdin.fileno(), STDIN_GRACE_S):
        # An open pipe that stays silent: most likely nobody is sending anything. Say so, in case a
        # slow producer (`slow-report | rkat run "..."`) was about to: its output would be left out.
        print(f"Note: stdin was not read (nothing arrived within {STDIN_GRACE_S:g} s); "
              "use --stdin on to wait for it, or --stdin off to skip this check.", file=sys.stderr)
        return ""
    return stdin.read().strip()


def _ready(fd: int, timeout_s: float) -> bool:
    """Whether reading ``fd`` would not block (data or EOF) within ``timeout_s``."""
    try:
        readable, _, _ = select.select([fd], [], [], timeout_s)
    except (OSError, ValueError):
        return True  # not selectable (an unusual stdin): read it as before
    return bool(readable)
