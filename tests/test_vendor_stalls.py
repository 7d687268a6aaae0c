"""A vendor that accepts the connection and never answers: a clear error within the first-byte timeout.

The "vendor" is a real local socket that accepts and then says nothing. Every
hosted provider's real client is pointed at it; the turn must fail with an error
naming the provider, the URL and the timeout that fired, not hang for the
(generous) stream inactivity timeout. The CLI shows retries without ``-s``.
"""

from __future__ import annotations

import socket
import threading
import time

import pytest
import trio

from cli_process import Cli, run_in_terminal
from meerkat.errors import ProviderError
from provider_cases import CASES, REAL_PROVIDERS, provider_service


class SilentServer:
    """Accepts TCP connections on loopback and never sends a byte (until closed)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        self.sock.close()
        for conn in self.accepted:
            conn.close()


@pytest.fixture
def silent():
    server = SilentServer()
    yield server
    server.close()


@pytest.mark.parametrize("provider", REAL_PROVIDERS)
async def test_silent_vendor_fails_within_the_first_byte_timeout(provider, silent, tmp_path, monkeypatch):
    case = CASES[provider]
    retry = {"max_retries": 0, "first_byte_timeout_ms": 700, "stream_inactivity_timeout_ms": 600_000}
    async with provider_service(case, tmp_path, monkeypatch, retry=retry) as (service, _fake):
        await service.patch_config(case.config(silent.url))
        started = trio.current_time()
        with trio.fail_after(30):  # without the first-byte timeout this waits 10 minutes
            with pytest.raises(ProviderError) as failed:
                await service.create_session("Hello", model=case.model)
        waited = trio.current_time() - started
    message = failed.value.message
    assert waited >= 0.6, message
    assert provider in message and f"127.0.0.1:{silent.port}" in message, message
    assert "first-byte timeout" in message and "0.7 s" in message and "retry.first_byte_timeout_ms" in message


def test_cli_stall_names_provider_url_and_timeout_and_shows_retries(silent, tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path, env={"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": silent.url})
    rkat("config", "patch", "--json",
         '{"retry": {"max_retries": 1, "initial_delay_ms": 10, "first_byte_timeout_ms": 800}}')
    started = time.monotonic()
    failed = rkat("run", "--model", "claude-sonnet-4-6", "Hello", expect=None)
    assert failed.code != 0 and time.monotonic() - started < 30
    lines = failed.err.splitlines()
    notices = [line for line in lines if "retry 1/1" in line]
    assert notices and "anthropic" in notices[0] and "first-byte timeout" in notices[0], failed.err
    error = lines[-1]
    assert error.startswith("Error: ") and "anthropic" in error and f"127.0.0.1:{silent.port}" in error, failed.err
    assert "first-byte timeout" in error and "0.8 s" in error, failed.err


def test_cli_connection_refused_names_the_url(tmp_path):
    with socket.create_server(("127.0.0.1", 0)) as probe:
        port = probe.getsockname()[1]  # closed again: nothing listens there now
    rkat = Cli(tmp_path / "state", tmp_path,
               env={"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{port}"})
    rkat("config", "patch", "--json", '{"retry": {"max_retries": 0}}')
    failed = rkat("run", "--model", "claude-sonnet-4-6", "Hello", expect=None)
    assert failed.code != 0
    assert "anthropic" in failed.err and f"127.0.0.1:{port}" in failed.err, failed.err


def test_whole_turn_is_bounded_by_max_turn_duration(tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path)
    bad = rkat("config", "patch", "--json", '{"limits": {"max_turn_duration": "soon"}}', expect=2)
    assert "limits.max_turn_duration" in bad.err
    rkat("config", "patch", "--json", '{"limits": {"max_turn_duration": "500ms"}}')
    started = time.monotonic()
    failed = rkat("run", "--param", "reply_words=400", "--param", "token_delay_ms=50", "Hello", expect=None)
    assert failed.code != 0 and time.monotonic() - started < 15
    assert "within 0.5 s (limits.max_turn_duration)" in failed.err, failed.err


def test_max_turn_duration_bounds_the_whole_turn_not_one_model_call(tmp_path):
    """Two model calls (one tool call between), each well inside the limit, together past it."""
    rkat = Cli(tmp_path / "state", tmp_path)
    rkat("config", "patch", "--json", '{"limits": {"max_turn_duration": "1500ms"}}')
    failed = rkat("run", "--param", "first_token_latency_ms=1000", "What time is it? tool:datetime", expect=None)
    assert failed.code != 0, failed.out
    assert "within 1.5 s (limits.max_turn_duration); 1 model call(s) and 1 tool call(s)" in failed.err, failed.err
    rkat("config", "patch", "--json", '{"limits": {"max_turn_duration": "10s"}}')
    done = rkat("run", "--param", "first_token_latency_ms=1000", "What time is it? tool:datetime")
    assert "Tool datetime returned" in done.out, done.out


def test_spinner_shows_elapsed_time_and_the_next_retry_on_a_terminal(silent, tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path, env={"ANTHROPIC_API_KEY": "sk-ant-test", "ANTHROPIC_BASE_URL": silent.url})
    rkat("config", "patch", "--json",
         '{"retry": {"max_retries": 1, "initial_delay_ms": 1500, "first_byte_timeout_ms": 1200}}')
    code, text = run_in_terminal(rkat.argv("run", "--model", "claude-sonnet-4-6", "Hello"), tmp_path, rkat.env)
    assert code == 20, text
    import re

    assert re.search(r"waiting for the model \([1-9]\d* s\)", text), text  # elapsed time
    assert re.search(r"· retry 1/1 in [12] s", text), text  # the coming retry, counting down...
    assert "· retry 1/1\r" in text, text  # ...then the retry itself
