"""A truncated ``sessions.sqlite3-shm`` under a running daemon (issue 20): no silent death.

SQLite maps the ``-shm`` file (the WAL index) into every process that has the
database open; once it is truncated, the next database access touches pages past the
end of the file and the kernel sends SIGBUS, which no Python code can survive. There
is no full fix while several processes share a realm (docs/security.md says why).
What is required: the daemon's own periodic checkpoint and ``/health`` look at the
file before touching the store, and say what happened (a log line, a 503) instead of
being the access that crashes; and the crash that follows is loud, with the Python
stacks naming the store call, instead of an exit without a word.
"""

from __future__ import annotations

import signal

import httpx2
import pytest
import trio

from test_rest_server import RestServer
from test_store_health import realm_dir


async def test_a_truncated_wal_index_is_reported_and_the_crash_is_loud(tmp_path):
    with RestServer("--realm", "shm", "--state-root", str(tmp_path)) as server:
        async with server.client() as http:
            made = await http.post("/sessions", json={"prompt": "hi", "model": "mock"})
            assert made.status_code == 200, made.text
            shm = realm_dir(tmp_path) / "sessions.sqlite3-shm"
            assert shm.stat().st_size >= 32768
            shm.write_bytes(b"")  # what a cleanup tool or a careless `> file` does
            # The periodic checkpoint, the one database access of an idle daemon, looks first and says why.
            with trio.fail_after(30):
                while "sessions.sqlite3-shm was truncated" not in server.stderr():
                    await trio.sleep(0.05)
            sick = await http.get("/health", headers={"Accept": "application/json"})
            assert sick.status_code == 503, sick.text
            assert any("sessions.sqlite3-shm was truncated" in p and "SIGBUS" in p for p in sick.json()["problems"])
            with pytest.raises(httpx2.TransportError):
                await http.get("/sessions")  # the daemon's next store access
        assert server.proc is not None
        assert server.proc.wait(30) == -signal.SIGBUS
        report = server.stderr()
        assert "Fatal Python error: Bus error" in report, report
        assert "meerkat/store/sqlite.py" in report, report  # the stack names the store call it died in
