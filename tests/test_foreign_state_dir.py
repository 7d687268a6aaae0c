"""The CLI does not trust a ``.rkat/`` another user owns (git's ``safe.directory`` rule):
its realms and config (which could point the user's API keys elsewhere) are ignored."""

from __future__ import annotations

import json
import os
import stat
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


def _run(cwd, env, *args):
    done = subprocess.run([RKAT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done


def _user_env(tmp_path):
    """HOME and the data directory in the test's own tree, so both boundaries are known."""
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    return cli_env(HOME=str(home), XDG_DATA_HOME=str(tmp_path / "data")), tmp_path / "data" / "meerkat" / "realms"


def _shared_dir(path):
    """A directory like /tmp: anyone may create entries in it (sticky, world-writable)."""
    path.mkdir(parents=True)
    path.chmod(0o1777)
    return path


def _stale_state_dir(parent):
    """A ``.rkat`` of this user (0755) with a realm in it, as an earlier run left it."""
    stale = parent / ".rkat"
    (stale / "realms").mkdir(parents=True)
    stale.chmod(0o755)
    return stale


def test_the_walk_does_not_climb_into_a_world_writable_directory(tmp_path):
    # A stale /tmp/.rkat of the user (root on a shared machine) used to capture every run under /tmp.
    env, _ = _user_env(tmp_path)
    shared = _shared_dir(tmp_path / "tmp")
    stale = _stale_state_dir(shared)
    work = shared / "someone" / "project"
    work.mkdir(parents=True)
    _run(work, env, "run", "--model", "mock", "hi")
    assert list((stale / "realms").iterdir()) == []  # the stale state dir was not used
    assert (work / ".rkat" / "realms").is_dir()  # the run made its own, private
    assert stat.S_IMODE((work / ".rkat").stat().st_mode) == 0o700
    # In the shared directory itself, the user's own, not group-writable .rkat is still theirs.
    _run(shared, env, "run", "--model", "mock", "hi")
    assert list((stale / "realms").iterdir()) != []


def test_a_git_dir_planted_in_a_world_writable_directory_makes_no_project(tmp_path):
    env, _ = _user_env(tmp_path)
    shared = _shared_dir(tmp_path / "tmp")
    (shared / ".git").mkdir()  # anyone could have made it
    work = shared / "mine"
    work.mkdir()
    _run(work, env, "run", "--model", "mock", "hi")
    assert not (shared / ".rkat").exists() and (work / ".rkat" / "realms").is_dir()


def test_a_writable_state_dir_in_a_shared_directory_is_ignored(tmp_path):
    env, data_root = _user_env(tmp_path)
    shared = _shared_dir(tmp_path / "tmp")
    planted = _stale_state_dir(shared)
    planted.chmod(0o775)  # the group (or anyone, 0777) may plant a config.toml in it
    done = _run(shared, env, "run", "--model", "mock", "hi")
    assert "others may write to it" in done.stderr and str(planted) in done.stderr
    assert list((planted / "realms").iterdir()) == []
    assert any(data_root.iterdir())  # the user's data directory was used instead


def test_the_walk_stops_at_the_home_directory(tmp_path):
    env, _ = _user_env(tmp_path)
    above_home = _stale_state_dir(tmp_path)  # tmp_path/.rkat, above tmp_path/home
    work = tmp_path / "home" / "notes"
    work.mkdir()
    _run(work, env, "run", "--model", "mock", "hi")
    assert list((above_home / "realms").iterdir()) == []
    assert (work / ".rkat" / "realms").is_dir()


@pytest.mark.skipif(os.getuid() != 0, reason="making a directory another user owns needs root")
def test_another_users_state_dir_at_the_git_root_is_not_used(tmp_path):
    env, data_root = _user_env(tmp_path)
    repo = tmp_path / "home" / "repo"
    (repo / ".git").mkdir(parents=True)
    planted = _stale_state_dir(repo)
    for path in (planted, planted / "realms"):
        os.chown(path, NOBODY, NOBODY)
    done = _run(repo, env, "run", "--model", "mock", "hi")
    assert "belongs to another user" in done.stderr
    assert list((planted / "realms").iterdir()) == []  # before, the git root's .rkat was used whoever owned it
    assert any(data_root.iterdir())


def test_doctor_reports_an_ignored_state_dir_apart_from_the_store(tmp_path):
    # The warning about a skipped .rkat is about where the CLI looks, not about the realm's store:
    # doctor printed "store FAILED: ignoring ..." for a store that was fine.
    env, _ = _user_env(tmp_path)
    shared = _shared_dir(tmp_path / "tmp")
    planted = _stale_state_dir(shared)
    planted.chmod(0o777)
    _run(shared, env, "run", "--model", "mock", "hi")  # a realm in the user's data directory
    done = _run(shared, env, "doctor")
    assert "others may write to it" in done.stderr and str(planted) in done.stderr, done.stderr
    store = next(line for line in done.stdout.splitlines() if line.strip().startswith("store"))
    assert "FAILED" not in store and "ok" in store, done.stdout


@pytest.mark.skipif(os.getuid() != 0, reason="making a link another user owns needs root")
def test_a_link_another_user_planted_is_not_followed(tmp_path):
    # Ownership is of the entry itself (git's rule too): a symlink /tmp/.rkat that another user made
    # pointed the CLI at any directory of the user's (/etc, another project's .rkat) and passed the check.
    env, data_root = _user_env(tmp_path)
    shared = _shared_dir(tmp_path / "tmp")
    target = _stale_state_dir(tmp_path / "elsewhere")  # the user's own, 0755: trusted where it is
    (shared / ".rkat").symlink_to(target)
    os.lchown(shared / ".rkat", NOBODY, NOBODY)
    done = _run(shared, env, "run", "--model", "mock", "hi")
    assert "belongs to another user" in done.stderr and str(shared / ".rkat") in done.stderr, done.stderr
    assert list((target / "realms").iterdir()) == []
    assert any(data_root.iterdir())
