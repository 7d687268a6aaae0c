"""Where the CLI keeps a project's sessions when no --state-root is given (no $RKAT_STATE_ROOT either).

Inside a git work tree: one ``.rkat/`` at the work tree's root (not in whatever
subdirectory the first command ran in), one session list from every subdirectory,
a ``.gitignore`` inside ``.rkat/`` so git never lists it, and nothing created by
read-only commands.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from cli_process import RKAT, cli_env


def _rkat(cwd, *args, home):
    env = cli_env(XDG_DATA_HOME=str(home / "data"), HOME=str(home))
    done = subprocess.run([RKAT, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def repo(tmp_path):
    root = tmp_path / "repo"
    (root / "src" / "deep").mkdir(parents=True)
    if shutil.which("git"):
        subprocess.run(["git", "init", "-q", str(root)], check=True)
    else:
        (root / ".git").mkdir()
    return root


def test_read_only_commands_create_nothing(repo, tmp_path):
    deep = repo / "src" / "deep"
    assert _rkat(deep, "session", "list", home=tmp_path) == "No sessions found.\n"
    assert "max_tokens_per_turn" in _rkat(deep, "config", "get", home=tmp_path)
    _rkat(deep, "models", home=tmp_path)
    assert sorted(p.name for p in repo.rglob(".rkat")) == []
    assert not (tmp_path / "data").exists()


def test_sessions_live_at_the_work_tree_root_and_git_ignores_them(repo, tmp_path):
    deep = repo / "src" / "deep"
    assert _rkat(deep, "run", "hello from deep", home=tmp_path) == "Mock reply to: hello from deep\n"
    assert [p.relative_to(repo).as_posix() for p in repo.rglob(".rkat")] == [".rkat"]
    assert (repo / ".rkat" / ".gitignore").read_text().splitlines()[-1] == "*"
    # One list for the repository, from any directory in it.
    for where in (repo, repo / "src", deep):
        listed = _rkat(where, "session", "list", "--format", "json", home=tmp_path)
        assert '"message_count": 2' in listed, where
    if shutil.which("git"):
        status = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=repo,
                                capture_output=True, text=True, check=True).stdout
        assert ".rkat" not in status


def test_an_existing_rkat_inside_the_repository_still_wins(repo, tmp_path):
    (repo / "src" / ".rkat").mkdir()
    _rkat(repo / "src" / "deep", "run", "hi", home=tmp_path)
    assert (repo / "src" / ".rkat" / "realms").is_dir() and not (repo / ".rkat").exists()
