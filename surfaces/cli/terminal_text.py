"""Model and tool text made safe for a terminal.

Text from a model, a tool or a transcript is data, not terminal commands: an OSC
sequence in a reply could set the clipboard or the window title, a CSI one clear
the screen or move the cursor. The CLI prints such text through :func:`visible`,
which drops escape sequences and every other control character but newline and
tab. ``rkat --raw`` turns that off (the bytes as the model sent them).

Works on streamed text too: a sequence cut between two deltas loses its ESC (or
its control introducer) in the first and shows as plain characters in the second.
"""

from __future__ import annotations

import re

__all__ = ["visible", "set_raw"]

_raw = False

# ESC-introduced sequences: CSI, OSC (to BEL or ST), DCS/SOS/PM/APC (to ST), and
# two-character escapes; then their 8-bit C1 forms (CSI 0x9b, OSC 0x9d, DCS 0x90 ...).
_SEQUENCES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
    r"|[\x9d\x90\x98\x9e\x9f][^\x07\x9c\x1b]*[\x07\x9c]?")
# What is left of the C0 and C1 controls (and DEL), newline and tab excepted.
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def set_raw(raw: bool) -> None:
    """``--raw``: print text as received."""
    global _raw
    _raw = raw


def visible(text: str) -> str:
    """``text`` without terminal control sequences or control characters (but ``\\n`` and ``\\t``)."""
    if _raw or not text:
        return text
    if text.isprintable():
        return text  # the common case, checked at C speed
    return _CONTROLS.sub("", _SEQUENCES.sub("", text))
