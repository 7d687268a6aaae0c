"""A real ``rkat-rpc`` child driven with raw JSON lines (for the wire-level tests).

Sync on purpose: one server per test module is started by a plain fixture, and
each test writes lines and reads what comes back. Every stdout line is kept, so
a test can check that nothing but JSON objects was ever written. The timeouts
are safety nets against a hung server, not measurements.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

BIN = Path(sys.executable).parent
RKAT_RPC = str(BIN / "rkat-rpc")
WAIT = 30.0


def child_env(state_root: Path | str, **extra: str) -> dict[str, str]:
    """The environment for a child: our venv first on PATH, a private state root, no provider keys."""
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL") and k != "MEERKAT_BIN_PATH"}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env["RKAT_STATE_ROOT"] = str(state_root)
    env.update(extra)
    return env


def write_wrapper(directory: Path, script: Path, python: str = sys.executable, name: str = "rkat-rpc") -> Path:
    """An executable ``directory/name`` that runs ``python script ARGS`` (what SDKs exec)."""
    directory.mkdir(parents=True, exist_ok=True)
    wrapper = directory / name
    wrapper.write_text(f'#!/bin/sh\nexec "{python}" "{script}" "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


class RpcProcess:
    """``rkat-rpc ARGS`` with pipes; :meth:`call` sends a request and collects what precedes its answer."""

    def __init__(self, *args: str, state_root: Path | str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([RKAT_RPC, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, env=env or child_env(state_root))
        self.raw_lines: list[bytes] = []
        self._lines: queue.Queue[bytes | None] = queue.Queue()
        self.stderr = bytearray()
        self._next_id = 1000
        threading.Thread(target=self._pump_stdout, daemon=True).start()
        threading.Thread(target=self._pump_stderr, daemon=True).start()

    def _pump_stdout(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.raw_lines.append(line)
            self._lines.put(line)
        self._lines.put(None)

    def _pump_stderr(self) -> None:
        assert self.proc.stderr is not None
        for chunk in iter(lambda: self.proc.stderr.read1(65536), b""):  # type: ignore[union-attr]
            self.stderr += chunk

    def send_raw(self, data: bytes) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def send(self, message: dict[str, Any]) -> None:
        self.send_raw(json.dumps(message).encode() + b"\n")

    def read(self, timeout: float = WAIT) -> dict[str, Any]:
        """The next stdout object (AssertionError if stdout ended)."""
        line = self._lines.get(timeout=timeout)
        assert line is not None, f"rkat-rpc closed stdout; stderr: {self.stderr.decode()[-2000:]}"
        message = json.loads(line)
        assert isinstance(message, dict)
        return message

    def request(self, method: str, params: Any = None, *, request_id: Any = None, **fields: Any) -> Any:
        """Send a request; returns its id."""
        if request_id is None:
            self._next_id += 1
            request_id = self._next_id
        message: dict[str, Any] = {"jsonrpc": "2.0", "id": request_id, "method": method, **fields}
        if params is not None:
            message["params"] = params
        self.send(message)
        return request_id

    def until_response(self, request_id: Any) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """(everything read before it, the response to ``request_id``)."""
        before = []
        while True:
            message = self.read()
            if message.get("id") == request_id and "method" not in message:
                return before, message
            before.append(message)

    def call(self, method: str, params: Any = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
        """Request and wait: (notifications and other lines before the response, the response)."""
        return self.until_response(self.request(method, params))

    def result(self, method: str, params: Any = None) -> Any:
        """The result of a call that must succeed."""
        _, response = self.call(method, params)
        assert "result" in response, response
        return response["result"]

    def error(self, method: str, params: Any = None) -> dict[str, Any]:
        """The error of a call that must fail."""
        _, response = self.call(method, params)
        assert "error" in response, response
        return response["error"]

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def terminate(self) -> None:
        self.proc.send_signal(signal.SIGTERM)

    def wait(self, timeout: float = WAIT) -> int:
        return self.proc.wait(timeout=timeout)

    def stop(self) -> None:
        """End the child however it is (used by fixtures)."""
        if self.proc.poll() is None:
            try:
                self.close_stdin()
            except (BrokenPipeError, ValueError):
                pass
            self.terminate()
            try:
                self.proc.wait(timeout=WAIT)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            if stream is not None:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass

    def assert_stdout_was_json_only(self) -> None:
        """Every line written so far is one JSON object."""
        for line in self.raw_lines:
            assert line.endswith(b"\n") and line.strip(), line
            assert isinstance(json.loads(line), dict), line
