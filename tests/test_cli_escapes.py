"""Model text printed by the CLI cannot drive the terminal: escape sequences and control
characters are removed (newlines and tabs kept), piped or not; ``--raw`` prints them."""

from __future__ import annotations

import os
import pty
import select
import subprocess

import pytest

from cli_process import RKAT, Cli, cli_env

OSC_CLIPBOARD = "\x1b]52;c;ZXZpbA==\x07"
OSC_TITLE = "\x1b]0;owned\x1b\\"
CSI_CLEAR = "\x1b[2J\x1b[H"
C1_CSI = "\x9b31m"
HOSTILE = f"safe{OSC_CLIPBOARD} text{OSC_TITLE}\tand{CSI_CLEAR}\nmore{C1_CSI}\x07\x08\r end"
CLEANED = "safe text\tand\nmore end"


@pytest.fixture
def rkat(tmp_path) -> Cli:
    return Cli(tmp_path / "state", tmp_path)


@pytest.mark.parametrize("stream", [False, True])
def test_replies_are_stripped_when_piped(rkat, stream):
    args = ["run", *(["--stream"] if stream else []), "--model", "mock", "--param", f"reply={HOSTILE}", "hi"]
    printed = rkat(*args).out
    assert "\x1b" not in printed and "\x9b" not in printed and "\x07" not in printed and "\r" not in printed
    assert printed.strip() == CLEANED


def test_raw_prints_what_the_model_sent(rkat):
    printed = rkat("run", "--raw", "--model", "mock", "--param", f"reply={HOSTILE}", "hi").out
    assert OSC_CLIPBOARD in printed and OSC_TITLE in printed  # (click itself drops CSI when piped)


def test_json_output_escapes_them(rkat):
    payload = rkat("run", "--model", "mock", "--param", f"reply={HOSTILE}", "--output", "json", "hi").json()
    assert payload["text"] == HOSTILE  # JSON carries the text as data, escaped


def test_session_show_on_a_terminal_is_stripped(rkat, tmp_path):
    rkat("run", "--model", "mock", "--param", f"reply={HOSTILE}", f"prompt{CSI_CLEAR}")
    main, child = pty.openpty()
    proc = subprocess.Popen([RKAT, "--state-root", str(tmp_path / "state"), "session", "show", "last"],
                            stdin=subprocess.DEVNULL, stdout=child, stderr=child, cwd=tmp_path, env=cli_env())
    os.close(child)
    shown = b""
    while True:
        ready, _, _ = select.select([main], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        shown += chunk
    proc.wait(timeout=30)
    os.close(main)
    text = shown.decode()
    assert "safe text\tand" in text and "more" in text, text
    assert "\x1b]" not in text and "\x1b[2J" not in text and "\x9b" not in text, repr(text)


@pytest.mark.parametrize("args, what", [
    (["--param", "reply=\udc9b2J"], "--param"),  # a raw C1 byte (not UTF-8) in an argument
    (["--param", 'reply="\\udcff"'], "--param"),  # a JSON escape that decodes to a lone surrogate
    (["--label", "team=\udcff"], "--label"),
    (["hi \udcff"], "the prompt"),
])
def test_arguments_that_are_not_utf8_are_a_clear_error(rkat, args, what):
    if not args[-1].startswith("hi"):
        args = [*args, "hi"]
    refused = rkat("run", "--model", "mock", *args, expect=2)  # arguments reach Python as lone surrogates
    assert f"Error: {what} is not valid UTF-8 text" in refused.err and "Traceback" not in refused.err, refused.err
    assert rkat("session", "list", "--format", "json").json() == {"sessions": []}  # nothing half-made


def test_a_prompt_on_stdin_that_is_not_utf8_is_a_clear_error(rkat):
    proc = subprocess.run(rkat.argv("run", "--model", "mock"), cwd=rkat.cwd, env=rkat.env, input=b"hi \xff\xfe",
                          capture_output=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert b"Error: the prompt on stdin is not valid UTF-8 text (byte 0xff" in proc.stderr, proc.stderr
