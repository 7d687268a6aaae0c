"""Which ``.rkat/`` the CLI uses: the project of the working directory, and whom to trust.

The CLI keeps its realms in ``<project>/.rkat/realms``. ``<project>`` is found by
walking up from the working directory to the nearest ``.rkat`` directory, and a
``.rkat`` holds config that decides where API keys are sent. So the walk must not
pick up a directory someone else could have made or filled (git's
``safe.directory`` problem). The rule (docs/security.md):

* The walk stops at the project boundary: the root of the git work tree, the
  user's home directory, and a filesystem boundary (a mount point), whichever
  comes first; it never looks into a world-writable directory above the working
  directory (``/tmp``, ``/var/tmp``: anyone may create entries there, and a stale
  ``/tmp/.rkat`` would otherwise capture every run under ``/tmp``). Finding the
  git work tree obeys the same boundaries, so a planted ``/tmp/.git`` does not
  make ``/tmp`` a project either.
* A ``.rkat`` is used only when it is a directory the current user owns (and so is
  the entry itself when it is a symlink) and it is not world-writable; when it sits in a world-writable directory (possible only
  when that is the working directory itself) it must not be group-writable either.
  Anything else is skipped with a warning naming it.
* When the project's own ``.rkat`` is untrusted, the CLI does not use it:
  :func:`project_state_root` falls back to the user's data directory.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path
from typing import Iterator

__all__ = ["git_work_tree_root", "project_dir", "project_state_root", "workspace_context", "trusted_state_dir"]

#: Not "rkat.realm": what opening a realm warns about is about its store (rkat doctor reports
#: those as store problems), while a skipped .rkat is about where the CLI looks.
log = logging.getLogger("rkat.project")

STATE_DIR = ".rkat"


def _status(path: Path) -> os.stat_result | None:
    try:
        return path.stat()
    except OSError:
        return None


def _world_writable(status: os.stat_result | None) -> bool:
    return status is not None and bool(status.st_mode & stat.S_IWOTH)


def _home() -> Path | None:
    try:
        return Path.home().resolve()
    except (RuntimeError, KeyError, OSError):
        return None


def _walk_up(cwd: str | Path) -> Iterator[Path]:
    """``cwd`` and its ancestors, up to the first boundary (the home directory, a mount
    point, or the last directory below a world-writable one), inclusive."""
    directory = Path(cwd).resolve()
    home = _home()
    while True:
        yield directory
        parent = directory.parent
        if parent == directory or directory == home:
            return
        here, above = _status(directory), _status(parent)
        if above is None or _world_writable(above):
            return  # a shared directory such as /tmp is nobody's project
        if here is not None and here.st_dev != above.st_dev:
            return  # a mount point (git's GIT_DISCOVERY_ACROSS_FILESYSTEM rule)
        directory = parent


def git_work_tree_root(cwd: str | Path) -> Path | None:
    """The root of the git work tree ``cwd`` is in (the nearest ancestor holding ``.git``,
    within the boundaries of :func:`_walk_up`), if any."""
    for directory in _walk_up(cwd):
        if (directory / ".git").exists():
            return directory
    return None


def trusted_state_dir(path: Path, *, warn: bool = True) -> bool:
    """``path`` is a ``.rkat`` directory the current user owns and others may not write (see above).

    Another user's (or a group- or world-writable) one is skipped, with a warning:
    its realms and config could send the user's keys elsewhere.
    """
    status = _status(path)
    if status is None or not stat.S_ISDIR(status.st_mode):
        return False
    try:
        entry = path.lstat()  # the entry itself, as git checks: a link another user made is theirs
    except OSError:
        return False
    owner = entry.st_uid if entry.st_uid != os.getuid() else status.st_uid
    if owner != os.getuid():
        why = f"it belongs to another user (uid {owner})"
    elif status.st_mode & stat.S_IWOTH or (status.st_mode & stat.S_IWGRP and _world_writable(_status(path.parent))):
        why = f"others may write to it (mode {stat.S_IMODE(status.st_mode):o})"
    else:
        return True
    if warn:
        log.warning("ignoring %s: %s, and its realms and config are not trusted; pass --state-root to use it "
                    "anyway", path, why)
    return False


def project_dir(cwd: str | Path) -> Path:
    """The project ``cwd`` belongs to: the nearest ancestor holding a trusted ``.rkat``;
    when none has one, the root of the git work tree ``cwd`` is in; else ``cwd`` itself.

    Inside a git work tree the walk stops at its root: a ``~/.rkat`` above the
    repository does not capture it. So there is one ``.rkat/`` per repository, at its
    root, instead of a new one in whatever subdirectory the first command ran in.
    """
    git_root = git_work_tree_root(cwd)
    for directory in _walk_up(cwd):
        if trusted_state_dir(directory / STATE_DIR):
            return directory
        if directory == git_root:
            return git_root
    return Path(cwd).resolve()


def workspace_context(cwd: str | Path) -> Path:
    """The directory the CLI's workspace realm id is derived from: the git work tree root
    when ``cwd`` is inside one (one session list per repository, from any subdirectory),
    else ``cwd`` (per directory, as upstream)."""
    return git_work_tree_root(cwd) or Path(cwd)


def project_state_root(cwd: str | Path) -> Path | None:
    """``<project>/.rkat/realms`` for the project of ``cwd`` (see :func:`project_dir`), or
    None when that ``.rkat`` exists but is not trusted (the caller then uses the user's
    data directory, never a directory someone else controls).

    The CLI's default state root (upstream's project-local layout); servers given
    ``--context-root`` look there too, so an SDK program finds the CLI's realms.
    """
    state_dir = project_dir(cwd) / STATE_DIR
    if os.path.lexists(state_dir) and not trusted_state_dir(state_dir, warn=False):
        return None
    return state_dir / "realms"
