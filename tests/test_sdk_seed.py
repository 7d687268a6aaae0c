"""The seed's Python examples, run as written against ``rkat-rpc``, under asyncio and under trio.

The models they name (claude-sonnet-4-6, gpt-5.5) are served by the fake vendor
server of :mod:`meerkat.testing`, run as its own process on loopback; the real
provider SDKs inside ``rkat-rpc`` talk to it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fake_vendor import fake_vendor_process, vendor_env

from rpc_process import child_env

SCRIPT = Path(__file__).resolve().parent / "sdk_drivers" / "seed_examples.py"
REPLY = "Paris is the capital of France."


@pytest.fixture(scope="module")
def vendor_url():
    """A fake Anthropic/OpenAI/Gemini server process on a free loopback port."""
    with fake_vendor_process(REPLY) as url:
        yield url


@pytest.mark.parametrize("loop", ["asyncio", "trio"])
def test_seed_python_examples_run_as_written(tmp_path, vendor_url, loop):
    env = child_env(tmp_path, **vendor_env(vendor_url))
    done = subprocess.run([sys.executable, str(SCRIPT), loop], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    lines = out.splitlines()
    assert lines[0] == REPLY and lines[1] == REPLY  # create, then the follow-up turn
    assert "model='claude-sonnet-4-6', provider='anthropic'" in out
    assert f"STREAM RESULT {REPLY}" in out and out.count(REPLY) >= 5
    assert "model='gpt-5.5', provider='openai'" in out.split("OPENAI", 1)[1]
    config_line = next(line for line in lines if line.startswith("CONFIG"))
    assert config_line.startswith("CONFIG 3 ") and "'model': 'gpt-5.5'" in config_line
    assert "'max_tokens_per_turn': 8192" in config_line
    assert lines[-1] == "REALM team-alpha worker-1"
