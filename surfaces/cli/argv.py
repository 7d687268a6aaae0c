"""The prompt-first shorthand: ``rkat "hi"`` means ``rkat run "hi"``.

Before the command line is parsed, the leading global options are skipped; if
what follows is not a command name (nor an option the root understands), ``run``
is inserted there. So ``rkat "hi"``, ``rkat -r team "hi"`` and
``rkat -m gpt-5.5 "hi"`` all run a turn, while ``rkat models`` stays the
``models`` command: a prompt whose first word is a command needs ``rkat run``.
A single word that is a near miss of a command (``rkat sesion list``) is left
alone too, so the user hears "No such command 'sesion'. Did you mean
'session'?" rather than having a typo sent to the model as a prompt.
"""

from __future__ import annotations

import difflib
from typing import Iterable

__all__ = ["normalize_argv"]

#: Root options that take a value (the next token, unless attached with ``=``).
VALUE_OPTIONS = frozenset({"-r", "--realm", "--instance", "--realm-backend", "--database-url", "--state-root", "--log-level",
                           "--log-format"})
#: Root flags without a value.
FLAG_OPTIONS = frozenset({"--isolated", "--raw"})
#: How alike a word and a command name must be for the word to count as a typo (difflib ratio).
TYPO_CUTOFF = 0.8
#: Tokens that mean "show help / version": leave the command line alone.
HELP_OPTIONS = frozenset({"-h", "--help", "--version", "-V"})


def normalize_argv(argv: list[str], commands: Iterable[str]) -> list[str]:
    """``argv`` (without the program name) with ``run`` inserted where the shorthand is used."""
    names = set(commands)
    index = 0
    while index < len(argv):
        token = argv[index]
        if token in HELP_OPTIONS:
            return argv
        if token in VALUE_OPTIONS:
            index += 2
            continue
        if token in FLAG_OPTIONS or _attached_value(token):
            index += 1
            continue
        if token.startswith("-") and len(token) > 1:
            # An option the root does not know (``-m gpt-5.5 "hi"``), or ``--`` before a prompt
            # that starts with a dash: it belongs to ``run``.
            return argv[:index] + ["run"] + argv[index:]
        if token in names or _near_miss(token, names):
            return argv
        return argv[:index] + ["run"] + argv[index:]
    return argv


def _attached_value(token: str) -> bool:
    """``--realm=x`` or ``-rx``: a root option carrying its value in the same token."""
    if "=" in token and token.split("=", 1)[0] in VALUE_OPTIONS:
        return True
    return token.startswith("-r") and not token.startswith("--") and len(token) > 2


def _near_miss(token: str, names: set[str]) -> bool:
    """``sesion`` for ``session``: one word (no spaces), close to a command name of 3+ letters."""
    if not token.isalpha():
        return False
    candidates = [name for name in names if len(name) >= 3]
    return bool(difflib.get_close_matches(token, candidates, n=1, cutoff=TYPO_CUTOFF))
