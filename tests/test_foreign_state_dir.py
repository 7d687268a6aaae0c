"""The CLI does not trust a ``.rkat/`` another user owns (git's ``safe.directory`` rule):
its realms and config (which could point the user's API keys elsewhere) are ignored."""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from cli_process import RKAT, cli_env

NOBODY = 65534


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user owns needs root")
def test_a_parent_state_dir_of_another_user_is_ignored(tmp_path):
    shared = tmp_path / "shared"
    planted = shared / ".rkat"
    planted.mkdir(parents=True)
    (planted / "realms").mkdir()
    for path in (planted, planted / "realms"):
        os.chown(path, NOBODY, NOBODY)
    work = shared / "me" / "project"
    work.mkdir(parents=True)
    env = cli_env()
    done = subprocess.run([RKAT, "run", "--model", "mock", "--output", "json", "hi"], cwd=work, env=env,
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["text"] == "Mock reply to: hi"
    assert "belongs to another user" in done.stderr and str(planted) in done.stderr
    assert list((planted / "realms").iterdir()) == []  # nothing was written into it
    os.chown(planted, os.getuid(), os.getgid())  # once it is the user's, it is the project's again
    again = subprocess.run([RKAT, "run", "--model", "mock", "--output", "json", "hi"], cwd=shared, env=env,
                           capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert again.returncode == 0 and "belongs to another user" not in again.stderr
