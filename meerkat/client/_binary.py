"""Finding the ``rkat-rpc`` executable. Nothing is ever downloaded.

Order: ``$MEERKAT_BIN_PATH``, then an explicit ``rkat_path``, then ``rkat-rpc`` on
``PATH``, then the ``rkat-rpc`` installed next to this Python (a virtualenv that
is not activated still works). A value with a slash names a file; one without
is looked up on ``PATH``.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

from ._errors import BinaryNotFound

__all__ = ["find_rkat_rpc", "DEFAULT_BINARY"]

DEFAULT_BINARY = "rkat-rpc"
_HOW = "put rkat-rpc on PATH, set MEERKAT_BIN_PATH=/path/to/rkat-rpc, or pass MeerkatClient(rkat_path=...)"


def _resolve(value: str, source: str) -> str:
    if "/" in value or "\\" in value:
        path = Path(value).expanduser()
        if not path.is_file():
            raise BinaryNotFound(f"{source} names {value!r}, which is not a file; {_HOW}")
        if not os.access(path, os.X_OK):
            raise BinaryNotFound(f"{source} names {value!r}, which is not executable")
        found = str(path.absolute())
    else:
        located = shutil.which(value)
        if located is None:
            raise BinaryNotFound(f"{source} names {value!r}, which is not on PATH; {_HOW}")
        found = located
    if Path(found).name == "rkat":
        raise BinaryNotFound(f"{source} names the rkat CLI; point it at rkat-rpc instead")
    return found


def find_rkat_rpc(rkat_path: str = DEFAULT_BINARY) -> str:
    """The absolute path of the server to start; :class:`BinaryNotFound` saying how to fix it."""
    env = os.environ.get("MEERKAT_BIN_PATH")
    if env:
        if not env.strip():
            raise BinaryNotFound(f"MEERKAT_BIN_PATH is set but blank; {_HOW}")
        return _resolve(env.strip(), "MEERKAT_BIN_PATH")
    if rkat_path != DEFAULT_BINARY:
        return _resolve(rkat_path, "rkat_path")
    located = shutil.which(DEFAULT_BINARY)
    if located is not None:
        return located
    beside = Path(sys.executable).parent / DEFAULT_BINARY
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    raise BinaryNotFound(f"rkat-rpc not found; {_HOW}. It is installed with the rkat package, which is not on "
                         f"PyPI: pip install /path/to/the/rkat/repository (or a wheel built there with "
                         f"`pip wheel --no-deps .`); see the README's Install section")
