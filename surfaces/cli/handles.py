"""Naming a session on the command line.

Accepted everywhere a session is named (``run --resume``, ``resume``, ``session
show/delete/interrupt``):

* a full session id (any UUID spelling), or ``<realm>:<uuid>`` for this realm;
* ``last`` (or ``~``): the most recently updated session;
* ``~N``: the N-th most recently updated session, counting as the seed documents
  it: ``~1`` is the most recent, ``~2`` the second most recent;
* a short handle: any unique prefix or suffix of the id. Ids are UUIDv7, whose
  prefixes are timestamps shared by sessions made close together, so the handle
  the CLI prints is the last 8 characters. An ambiguous handle is an error
  listing the candidates.
"""

from __future__ import annotations

import os
import re
from typing import TYPE_CHECKING

from meerkat.errors import ErrorCode, InvalidParams, MeerkatError, error_from_code
from meerkat.ids import canonical_uuid
from meerkat.views import session_id_from_ref

if TYPE_CHECKING:
    from actors import SessionService

__all__ = ["resolve_session", "looks_like_target", "short_handle"]

_RELATIVE_RE = re.compile(r"~(\d*)")
_HANDLE_RE = re.compile(r"[0-9a-fA-F-]+")
_UUID_SPELLING_RE = re.compile(r"\{?[0-9a-fA-F-]{32,38}\}?")
#: How many candidates an ambiguity error lists.
_SHOWN_CANDIDATES = 5
#: Page size when scanning the realm for a handle (the store's maximum).
_SCAN_PAGE = 1000


def short_handle(session_id: str) -> str:
    """The handle the CLI prints for a session: the last 8 characters of its id."""
    return session_id[-8:]


def looks_like_target(token: str) -> bool:
    """True when ``token`` reads as a session rather than a prompt.

    Used where one word may be either (``run --resume WORD``, ``resume WORD``):
    ``last``, ``~``/``~N``, a ``realm:uuid`` ref, a UUID, or 8-36 hex digits and dashes.
    """
    if token == "last" or _RELATIVE_RE.fullmatch(token):
        return True
    if ":" in token:
        return canonical_uuid(token.rsplit(":", 1)[1]) is not None
    return 8 <= len(token) <= 36 and _HANDLE_RE.fullmatch(token) is not None


async def resolve_session(service: "SessionService", target: str) -> str:
    """The full id of the session ``target`` names in the service's realm."""
    target = target.strip()
    if not target:
        raise InvalidParams("empty session id: give a session id, a prefix or suffix of one, `last` or `~N`")
    if target == "last":
        return await _nth_most_recent(service, 1, target)
    relative = _RELATIVE_RE.fullmatch(target)
    if relative:
        return await _nth_most_recent(service, _relative_index(relative.group(1), target), target)
    if ":" in target:
        return _from_ref(service.realm.realm_id, target)
    full = canonical_uuid(target) if _UUID_SPELLING_RE.fullmatch(target) else None
    if full is not None:
        return full
    return await _from_handle(service, target)


def _relative_index(digits: str, target: str) -> int:
    if not digits:
        return 1
    index = int(digits)
    if index == 0:
        raise InvalidParams(f"Invalid relative session '{target}': ~N counts from 1 (~1 is the most recent session)")
    return index


async def _nth_most_recent(service: "SessionService", n: int, target: str) -> str:
    sessions = await service.list_sessions(limit=1, offset=n - 1)
    if sessions:
        return sessions[0].session_id
    if n == 1:
        raise _not_found(target, "No sessions found in this realm")
    raise _not_found(target, f"{target} is out of range: this realm has fewer than {n} sessions "
                             "(`rkat session list` shows them with their ~N)")


def _not_found(target: str, message: str) -> MeerkatError:
    """SESSION_NOT_FOUND with a message saying how the name failed to match."""
    return error_from_code(ErrorCode.SESSION_NOT_FOUND, message, {"session": target})


def _from_ref(realm_id: str, target: str) -> str:
    try:
        return session_id_from_ref(target, realm_id)
    except InvalidParams as exc:
        realm = (exc.details or {}).get("realm_id")
        if realm is None:
            raise
        raise InvalidParams(f"{exc.message}. Use --realm {realm} to reach it.", details=exc.details) from None


async def _from_handle(service: "SessionService", target: str) -> str:
    handle = target.lower()
    matches: list[str] = []
    offset = 0
    while True:
        page = await service.list_sessions(limit=_SCAN_PAGE, offset=offset)
        matches.extend(s.session_id for s in page
                       if s.session_id.startswith(handle) or s.session_id.endswith(handle))
        if len(page) < _SCAN_PAGE:
            break
        offset += _SCAN_PAGE
    if not matches:
        raise _not_found(target, f"No session matching '{target}'{_tilde_hint(target)}")
    if len(matches) > 1:
        raise InvalidParams(_ambiguity_message(service.realm.realm_id, target, matches),
                            details={"session": target, "candidates": matches[:_SHOWN_CANDIDATES]})
    return matches[0]


def _tilde_hint(target: str) -> str:
    """Why ``--resume ~`` can arrive as ``/home/me``: an unquoted ``~`` is the shell's home directory."""
    home = os.path.expanduser("~")
    if home != "~" and target.rstrip("/") == home.rstrip("/"):
        return " (the shell turned an unquoted ~ into your home directory: write `last`, or quote it: '~')"
    if target.startswith("/") and os.path.isdir(target):
        # After pushd, bash expands ~1, ~2... to the directory stack's entries.
        return (" (the shell turned an unquoted ~N into a directory of its directory stack, as bash does "
                "after pushd: quote it, '~1', or write `last`)")
    return ""


def _ambiguity_message(realm_id: str, target: str, matches: list[str]) -> str:
    lines = [f"Ambiguous session handle '{target}': matches {len(matches)} sessions. "
             "Use `last`, `~N`, a longer prefix or suffix, or the full session id."]
    lines += [f"  - {realm_id}:{sid} (handle {short_handle(sid)})" for sid in matches[:_SHOWN_CANDIDATES]]
    if len(matches) > _SHOWN_CANDIDATES:
        lines.append(f"  ... and {len(matches) - _SHOWN_CANDIDATES} more")
    return "\n".join(lines)
