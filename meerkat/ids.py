"""Identifiers: session, run, event and message ids as canonical UUIDv7 strings.

UUIDv7 sorts by creation time, which makes ids useful as keys and lets a person
read the order in which things happened. Every id leaves this module as a lowercase
hyphenated string, the only form the published SDK accepts.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
import uuid

__all__ = ["new_uuid7", "new_event_id", "is_uuid", "canonical_uuid", "UUID_SPELLINGS"]

_HEX8_4_4_4_12 = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
#: The spellings of a UUID a client may send as a session id, any case: hyphenated, 32 bare hex
#: digits, or hyphenated in braces (those of upstream's parser but ``urn:uuid:``, whose colons
#: read as a realm prefix). A regular expression valid in Python and in JSON Schema (ECMA 262),
#: so the OpenAPI document states exactly what the server accepts.
UUID_SPELLINGS = f"(?:{_HEX8_4_4_4_12}|[0-9a-fA-F]{{32}}|\\{{{_HEX8_4_4_4_12}\\}})"
_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_lock = threading.Lock()
_last_ms = 0
_counter = 0
# Event ids are minted for every published event, so they take their random bits
# from a fast PRNG seeded by the OS instead of os.urandom: they identify, they guard nothing.
_fast = random.Random(int.from_bytes(os.urandom(16), "big"))


def _reseed_after_fork() -> None:
    # A forked child (a pre-fork server) would otherwise mint its parent's sequence.
    _fast.seed(int.from_bytes(os.urandom(16), "big"))


os.register_at_fork(after_in_child=_reseed_after_fork)


def _next_stamp() -> tuple[int, int]:
    """``(unix_ms, counter)``, strictly increasing for ids minted by this process."""
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = _fast.getrandbits(11)
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter overflow: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        return ms, _counter


def _format(ms: int, counter: int, rand_b: int) -> str:
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def new_uuid7() -> str:
    """Return a new UUIDv7 as a lowercase hyphenated string, random bits from the OS.

    Ids minted in the same millisecond by this process stay strictly increasing:
    the 12-bit ``rand_a`` field holds a counter seeded randomly each millisecond.
    Use it for session and run ids, which clients hold on to.
    """
    ms, counter = _next_stamp()
    return _format(ms, counter, int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1))


def new_event_id() -> str:
    """A UUIDv7 for an event envelope: the same form and order as :func:`new_uuid7`, cheaper."""
    ms, counter = _next_stamp()
    return _format(ms, counter, _fast.getrandbits(62))


def is_uuid(text: str) -> bool:
    """True when ``text`` is a UUID in canonical lowercase hyphenated form."""
    return isinstance(text, str) and _UUID_RE.match(text) is not None


def canonical_uuid(text: str) -> str | None:
    """Parse any UUID spelling and return the canonical form, or None if it is not one."""
    try:
        return str(uuid.UUID(text))
    except (ValueError, AttributeError, TypeError):
        return None
