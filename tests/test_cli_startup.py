"""`--help` everywhere, start-up imports and usage errors of the installed `rkat`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from cli_process import RKAT, Cli, cli_env

#: Every command and alias, as typed.
COMMANDS = [
    [], ["run"], ["c"], ["continue"], ["resume"], ["session"], ["sessions"], ["session", "list"],
    ["sessions", "list"], ["session", "show"], ["session", "delete"], ["session", "interrupt"], ["config"],
    ["config", "get"], ["config", "set"], ["config", "patch"], ["models"], ["help"],
]
HEAVY = ("openai", "anthropic", "quart", "mcp", "hypercorn")


def test_help_on_every_command_has_an_example(tmp_path):
    # Started together: each is its own process, and they need not wait for each other.
    procs = [subprocess.Popen([RKAT, *words, "--help"], cwd=tmp_path, env=cli_env(), stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for words in COMMANDS]
    for words, proc in zip(COMMANDS, procs):
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, (words, err)
        assert out.startswith("Usage: rkat"), (words, out)
        assert "Examples:\n    rkat " in out, (words, out)
    assert not (tmp_path / ".rkat").exists()  # help opens no realm


@pytest.mark.parametrize("words", [["--help"], ["session", "list"]])
def test_startup_imports_no_provider_sdk_or_server(tmp_path, words):
    code = (
        "import sys\n"
        f"sys.argv = ['rkat', '--state-root', {str(tmp_path)!r}, *{words!r}]\n"
        "from surfaces.cli.main import run_cli\n"
        "code = run_cli(sys.argv[1:])\n"
        f"print('LOADED', [m for m in {HEAVY!r} if m in sys.modules], code)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=cli_env(), capture_output=True,
                         text=True, check=True, stdin=subprocess.DEVNULL).stdout
    assert out.splitlines()[-1] == "LOADED [] 0"


def test_usage_errors(tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path)
    bare = rkat()  # no command: the help, and no failure (a terminal would get `rkat chat`)
    assert bare.out.startswith("Usage: rkat") and bare.code == 0
    unknown = rkat("run", "--no-such-flag", "x", expect=2)
    assert unknown.err.endswith("Error: No such option '--no-such-flag'.\n")
    conflicting = rkat("run", "--no-stream", "-w", "mux", "x", expect=2)
    assert conflicting.err == "Error: --stream-view cannot be combined with --no-stream\n"
    both = rkat("run", "-s", "--no-stream", "x", expect=2)
    assert both.err == "Error: cannot use --stream and --no-stream together\n"
    assert rkat("run", "--json", "--format", "text", "x", expect=2).err == \
        "Error: --json cannot be combined with --format text\n"
    # Saying json twice is no conflict.
    assert rkat("run", "--json", "--format", "json", "Twice").json()["text"] == "Mock reply to: Twice"
    assert rkat("--version").out == "rkat 0.1.0\n"
    assert rkat("help", "sessions", "list").out.startswith("Usage: rkat session list [OPTIONS]\n")
