"""The servers' argument parser: a bad argument is one error line, not the whole usage text.

``rkat-rpc`` is usually started by an SDK, which shows the child's stderr as its
error; argparse's default (usage block, then the error) buried the one line that
mattered. ``--help`` still prints everything.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

__all__ = ["ServerArgumentParser"]


class ServerArgumentParser(argparse.ArgumentParser):
    """``argparse.ArgumentParser`` whose errors are ``PROG: error: MESSAGE (see PROG --help)``, exit 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see {self.prog} --help)\n")
        sys.exit(2)
