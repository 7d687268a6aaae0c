"""The first examples of the README and the SDK guide run as printed, without a key, and more than once."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from rpc_process import child_env

ROOT = Path(__file__).resolve().parent.parent


def _blocks(path: Path, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", path.read_text(), flags=re.S)


def _run(code: str, tmp_path: Path) -> str:
    script = tmp_path / "example.py"
    script.write_text(code)
    env = child_env(tmp_path / "state", XDG_DATA_HOME=str(tmp_path / "data"))
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_readme_in_process_example_runs_twice(tmp_path):
    example = next(block for block in _blocks(ROOT / "README.md", "python") if "open_service" in block)
    first = _run(example, tmp_path)
    assert first.startswith("Mock reply to: What is the capital of France?\n")
    second = _run(example, tmp_path)  # the same realm again: its config is at generation 1 by now
    assert second == first


def test_python_sdk_first_example_runs_without_a_key(tmp_path):
    example = _blocks(ROOT / "docs" / "python-sdk.md", "python")[0]
    assert "claude" not in example  # a model that needs a key would fail without one
    out = _run(example, tmp_path)
    assert out.startswith("Mock reply to: What is the capital of France?\n")
    assert "Mock reply to: Continue the story" in out


def test_desktop_mcp_configs_pass_provider_keys():
    """Claude Desktop does not see the shell's variables: the documented config must carry `env`."""
    for path in (ROOT / "README.md", ROOT / "docs" / "mcp.md"):
        configs = [json.loads(block) for block in _blocks(path, "json") if '"command"' in block]
        assert configs, path
        for config in configs:
            for server in config["mcpServers"].values():
                assert any(name.endswith("_API_KEY") for name in server.get("env", {})), (path, server)
