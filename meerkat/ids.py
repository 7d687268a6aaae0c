"""Identifiers: session, run, event and message ids as canonical UUIDv7 strings.

UUIDv7 sorts by creation time, which makes ids useful as keys and lets a person
read the order in which things happened. Every id leaves this module as a lowercase
hyphenated string, the only form the published SDK accepts.
"""

from __future__ import annotations

import os
import re
import threading
import time
import uuid

__all__ = ["new_uuid7", "is_uuid", "canonical_uuid"]

_UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_lock = threading.Lock()
_last_ms = 0
_counter = 0


def new_uuid7() -> str:
    """Return a new UUIDv7 as a lowercase hyphenated string.

    Ids minted in the same millisecond by this process stay strictly increasing:
    the 12-bit ``rand_a`` field holds a counter seeded randomly each millisecond.
    """
    global _last_ms, _counter
    with _lock:
        ms = time.time_ns() // 1_000_000
        if ms > _last_ms:
            _last_ms = ms
            _counter = int.from_bytes(os.urandom(2), "big") & 0x7FF
        else:
            _counter += 1
            if _counter > 0xFFF:  # counter overflow: borrow the next millisecond
                _last_ms += 1
                _counter = 0
            ms = _last_ms
        counter = _counter
    rand_b = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | rand_b
    return str(uuid.UUID(int=value))


def is_uuid(text: str) -> bool:
    """True when ``text`` is a UUID in canonical lowercase hyphenated form."""
    return isinstance(text, str) and _UUID_RE.match(text) is not None


def canonical_uuid(text: str) -> str | None:
    """Parse any UUID spelling and return the canonical form, or None if it is not one."""
    try:
        return str(uuid.UUID(text))
    except (ValueError, AttributeError, TypeError):
        return None
