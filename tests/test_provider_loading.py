"""A vendor SDK is imported off the event loop's thread: its 1-3 s import must not stall
every other session of the process on the first turn with that provider."""

from __future__ import annotations

import os
import subprocess
import sys

from fake_vendor import fake_vendor_process, vendor_env

# Records, for each vendor SDK, whether its first import ran on the main (trio) thread;
# then runs one openai and one anthropic turn through a service against the fake vendor.
SCRIPT = r'''
import importlib.abc, sys, threading

on_main = {}

class ImportSpy(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name in ("openai", "anthropic") and name not in on_main:
            on_main[name] = threading.current_thread() is threading.main_thread()
        return None

sys.meta_path.insert(0, ImportSpy())

import trio
from actors import open_service

async def main():
    async with open_service(backend="memory") as service:
        for model in ("gpt-5.5", "claude-sonnet-4-5"):
            result = await service.create_session("hi", model=model)
            print(model, result.text, flush=True)
    print("imports", sorted(on_main.items()))

trio.run(main)
'''


def test_the_first_turn_of_a_vendor_imports_its_sdk_in_a_worker_thread(tmp_path):
    script = tmp_path / "first_turns.py"
    script.write_text(SCRIPT)
    with fake_vendor_process("pong") as url:
        env = {**os.environ, **vendor_env(url), "HOME": str(tmp_path), "RKAT_STATE_ROOT": str(tmp_path / "realms")}
        done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "gpt-5.5 pong" and lines[1] == "claude-sonnet-4-5 pong", done.stdout
    assert lines[2] == "imports [('anthropic', False), ('openai', False)]", done.stdout
