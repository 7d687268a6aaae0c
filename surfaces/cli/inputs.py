"""Values from the command line and stdin: ``--param``, ``--label`` and the prompt.

``--param KEY=VALUE`` becomes one ``provider_params`` entry; VALUE is read as
JSON when it parses (``3``, ``true``, ``{"a": 1}``) and as a plain string
otherwise (``high``). ``--label KEY=VALUE`` values are always strings.

The prompt: with ``--stdin auto`` (the default) a stdin that is not a terminal is
read to the end. Alone it is the prompt; with a prompt argument too, it is
attached before it as ``<stdin>...</stdin>`` (``git diff | rkat "review this"``).
An empty stdin changes nothing. ``--stdin off`` never reads it (use it when
stdin is a pipe nobody closes).
"""

from __future__ import annotations

import json
import sys
from typing import Any, Iterable

from meerkat.errors import InvalidParams

__all__ = ["parse_params", "parse_labels", "read_prompt", "STDIN_MODES"]

STDIN_MODES = ("auto", "off")


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
    return params or None


def parse_labels(pairs: Iterable[str]) -> dict[str, str] | None:
    """``--label`` values as a labels object (None when there are none)."""
    labels = dict(_split_pair(raw, "--label") for raw in pairs)
    return labels or None


def read_prompt(prompt: str | None, stdin_mode: str) -> str:
    """The prompt to send: the argument, stdin, or both (see the module docstring)."""
    piped = ""
    if stdin_mode == "auto" and sys.stdin is not None and not sys.stdin.isatty():
        piped = sys.stdin.read().strip()
    if prompt is not None and piped:
        return f"<stdin>\n{piped}\n</stdin>\n\n{prompt}"
    if prompt is not None:
        return prompt
    if piped:
        return piped
    raise InvalidParams("no prompt: pass one as an argument or on stdin (rkat run \"What is the capital of France?\")")
