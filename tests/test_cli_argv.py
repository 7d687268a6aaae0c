"""The prompt-first shorthand: when `rkat ...` means `rkat run ...` (a pure function, no process needed)."""

from __future__ import annotations

import pytest

from surfaces.cli.app import COMMAND_NAMES
from surfaces.cli.argv import normalize_argv


@pytest.mark.parametrize("argv, expected", [
    (["hi"], ["run", "hi"]),
    (["-r", "team", "hi"], ["-r", "team", "run", "hi"]),
    (["--realm=team", "--isolated", "hi"], ["--realm=team", "--isolated", "run", "hi"]),
    (["-rteam", "hi"], ["-rteam", "run", "hi"]),
    (["-m", "gpt-5.5", "hi"], ["run", "-m", "gpt-5.5", "hi"]),
    (["--state-root", "/x", "--resume", "keep going"], ["--state-root", "/x", "run", "--resume", "keep going"]),
    (["--", "-dash"], ["run", "--", "-dash"]),
    # Commands and their aliases are never prompts; help and version stop the rewrite.
    (["models", "are", "great"], ["models", "are", "great"]),
    (["sessions", "list"], ["sessions", "list"]),
    (["c", "Keep going"], ["c", "Keep going"]),
    (["help", "run"], ["help", "run"]),
    # A near miss of a command is a typo (the parser then suggests the command), not a prompt.
    (["sesion", "list"], ["sesion", "list"]),
    (["modles"], ["modles"]),
    (["hello", "world"], ["run", "hello", "world"]),
    (["Help me"], ["run", "Help me"]),
    (["--help"], ["--help"]),
    (["-r", "team", "--version"], ["-r", "team", "--version"]),
    ([], []),
])
def test_prompt_first_shorthand(argv, expected):
    assert normalize_argv(argv, COMMAND_NAMES) == expected
