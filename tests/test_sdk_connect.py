"""What a new SDK user trips over at connect: a silent binary, a missing one, a bad argument, a bad id."""

from __future__ import annotations

import time

import pytest

from meerkat.client import BinaryNotFound, ConnectionClosed, ConnectTimeout, MeerkatClient
from meerkat.errors import InvalidParams, SessionNotFound


async def test_a_binary_that_never_answers_fails_connect_within_the_timeout(tmp_path):
    silent = tmp_path / "rkat-rpc"
    silent.write_text("#!/bin/sh\nexec sleep 600\n")
    silent.chmod(0o755)
    client = MeerkatClient(rkat_path=str(silent), connect_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ConnectTimeout, match=r"did not answer the handshake within 0\.5 s") as failed:
        await client.connect()
    assert time.monotonic() - started < 20
    assert isinstance(failed.value, ConnectionClosed) and failed.value.details["binary"] == str(silent)
    with pytest.raises(InvalidParams, match="connect_timeout"):
        MeerkatClient(connect_timeout=0)


def test_binary_not_found_says_how_to_install_from_the_repository(tmp_path, monkeypatch):
    from meerkat.client._binary import find_rkat_rpc

    monkeypatch.delenv("MEERKAT_BIN_PATH", raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr("sys.executable", str(tmp_path / "python"))
    with pytest.raises(BinaryNotFound) as missing:
        find_rkat_rpc()
    assert "pip install rkat " not in missing.value.message and "pip install rkat)" not in missing.value.message
    assert "not on PyPI: pip install /path/to/the/rkat/repository" in missing.value.message


async def test_bad_server_argument_is_one_line_not_the_usage(tmp_path):
    with pytest.raises(ConnectionClosed) as closed:
        await MeerkatClient().connect(realm_id="../x", state_root=tmp_path)
    stderr = closed.value.details["stderr_tail"]
    assert "usage:" not in stderr
    assert stderr.strip().splitlines() == [
        "rkat-rpc: error: invalid explicit realm id: '../x' (must start with an ASCII letter or digit) "
        "(see rkat-rpc --help)"]


async def test_history_of_a_malformed_id_is_invalid_params(tmp_path):
    async with await MeerkatClient().connect(realm_id="ids", state_root=tmp_path) as client:
        with pytest.raises(InvalidParams, match="Invalid session ID: 'not-a-session'"):
            await client.read_session_history("not-a-session")
        with pytest.raises(SessionNotFound):  # well formed but unknown: still not found
            await client.read_session_history("01936f8a-7b2c-7000-8000-000000000001")
