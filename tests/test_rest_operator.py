"""What an operator sees: one ``error:`` line when rkat-rest cannot start, clean 4xx for a
Host that names no host, no internals in 5xx bodies, and an access log on request."""

from __future__ import annotations

import socket
import subprocess
import time

from test_rest_server import REST_BIN, RestServer, hermetic_environ


def start_failure(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(REST_BIN), *args], capture_output=True, text=True, timeout=60,
                          env=hermetic_environ(), stdin=subprocess.DEVNULL)


def test_port_in_use_is_one_error_line(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = start_failure("--realm", "busy", "--state-root", str(tmp_path), "--port", str(port))
    assert done.returncode == 1
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert errors == [f"rkat-rest: error: cannot listen: Address already in use on 127.0.0.1:{port}"], done.stderr
    assert "Traceback" not in done.stderr


def test_corrupt_config_is_one_error_line(tmp_path):
    with RestServer("--realm", "cfg", "--state-root", str(tmp_path)):
        pass
    config = next(tmp_path.glob("*/config.toml"), None) or next(tmp_path.iterdir()) / "config.toml"
    config.write_text("this is [not toml\n")
    done = start_failure("--realm", "cfg", "--state-root", str(tmp_path), "--port", "0")
    assert done.returncode != 0 and "Traceback" not in done.stderr, done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("rkat-rest: error: corrupt config file ")
    assert str(config) in done.stderr


def raw(server: RestServer, request: bytes) -> bytes:
    host, port = server.url.split("//", 1)[1].rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=15) as sock:
        sock.sendall(request)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    return data


def test_a_host_that_names_no_host_is_a_clean_400(tmp_path):
    with RestServer("--realm", "hosts", "--state-root", str(tmp_path)) as server:
        answer = raw(server, b"GET /sessions HTTP/1.1\r\nHost: " + b"a" * 64 + b".localhost\r\nConnection: close\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 400") and b"INVALID_REQUEST" in answer and b"Host" in answer
        time.sleep(0.2)
        assert "Traceback" not in server.stderr()


def test_access_log_is_off_by_default_and_on_with_the_flag(tmp_path):
    with RestServer("--realm", "quiet", "--state-root", str(tmp_path)) as server:
        raw(server, b"GET /health HTTP/1.0\r\n\r\n")
        time.sleep(0.2)
        assert "GET /health" not in server.stderr()
    with RestServer("--realm", "quiet", "--state-root", str(tmp_path), "--access-log") as server:
        raw(server, b"GET /health?probe=1 HTTP/1.0\r\n\r\n")
        time.sleep(0.3)
        lines = [line for line in server.stderr().splitlines() if "access:" in line]
        assert any('"GET /health"' in line and "probe=1" in line and " 200 " in line for line in lines), lines



async def test_server_side_failures_answer_without_internals(caplog):
    from meerkat.errors import InternalError, StoreError
    from surfaces.rest.responses import error_response

    for error in (StoreError("sqlite store /home/op/.rkat/realms/x/sessions.sqlite3: disk I/O error"),
                  InternalError("could not start the turn: MemoryError()")):
        response = error_response(error)
        body = (await response.get_data()).decode()
        assert response.status_code >= 500
        assert "/home/op" not in body and "MemoryError" not in body and "server log" in body, body
    assert "/home/op/.rkat/realms/x/sessions.sqlite3" in caplog.text and "MemoryError()" in caplog.text
