"""``rkat-rest`` closes connections: HTTP/1.0, ``Connection: close``, idle keep-alive, late
bodies, a cap on open connections, and running out of file descriptors.

Raw sockets, since HTTP clients hide exactly what these tests look at: whether the
server closes its side.
"""

from __future__ import annotations

import resource
import socket
import time

import pytest

from test_rest_server import RestServer

WAIT = 15.0


def address(server: RestServer) -> tuple[str, int]:
    host, port = server.url.split("//", 1)[1].rsplit(":", 1)
    return host, int(port)


def connect(server: RestServer) -> socket.socket:
    sock = socket.create_connection(address(server))
    sock.settimeout(WAIT)
    return sock


def read_until_closed(sock: socket.socket, limit: float = WAIT) -> tuple[bytes, float]:
    """Everything the server sends until it closes; the seconds that took (raises if it never does)."""
    began = time.monotonic()
    sock.settimeout(limit)
    data = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            raise AssertionError(f"the server kept the connection open for {limit} s; got {data[:200]!r}")
        if not chunk:
            return data, time.monotonic() - began
        data += chunk


def read_responses(sock: socket.socket, count: int) -> bytes:
    """Read until ``count`` complete responses (Content-Length framed) have arrived."""
    data = b""
    while data.count(b"HTTP/1.1 ") < count or not _complete(data, count):
        chunk = sock.recv(65536)
        assert chunk, f"closed after {data!r}"
        data += chunk
    return data


def _complete(data: bytes, count: int) -> bool:
    rest = data
    for _ in range(count):
        head, sep, rest = rest.partition(b"\r\n\r\n")
        if not sep:
            return False
        length = next((int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                       if line.lower().startswith(b"content-length:")), 0)
        if len(rest) < length:
            return False
        rest = rest[length:]
    return True


@pytest.fixture
def server(tmp_path):
    with RestServer("--realm", "conn", "--state-root", str(tmp_path), "--keep-alive-timeout", "1") as running:
        yield running


def test_http_1_0_request_is_answered_then_closed(server):
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
        data, _ = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"ok")


def test_connection_close_is_honoured(server):
    with connect(server) as sock:
        sock.sendall(b"GET /sessions HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data, _ = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200") and b'"sessions"' in data


def test_idle_keep_alive_connection_is_closed_after_the_timeout(server):
    with connect(server) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data, waited = read_until_closed(sock)
    assert data.startswith(b"HTTP/1.1 200")
    assert waited < 10, waited  # --keep-alive-timeout 1; the default is 5 s
    with connect(server) as silent:  # a connection that never sends a request is idle too
        assert read_until_closed(silent)[0] == b""


@pytest.mark.parametrize("method, path", [
    ("GET", "/health"), ("GET", "/sessions"), ("GET", "/config"), ("HEAD", "/health"),
    ("POST", "/sessions/nope/interrupt"), ("DELETE", "/sessions/nope"), ("PATCH", "/config"),
    ("OPTIONS", "/sessions"), ("GET", "/models/catalog"),
])
def test_a_body_sent_late_does_not_hang_the_next_request(server, method, path):
    with connect(server) as sock:
        sock.sendall(f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     f"Content-Length: 2\r\n\r\n".encode())
        time.sleep(0.2)
        sock.sendall(b"{}" + b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = read_responses(sock, 2)
    second = data[data.rindex(b"HTTP/1.1 "):]
    assert second.startswith(b"HTTP/1.1 200") and second.endswith(b"ok"), data


def test_connections_over_the_cap_get_503_and_open_ones_are_served(tmp_path):
    with RestServer("--realm", "cap", "--state-root", str(tmp_path), "--max-connections", "4",
                    "--keep-alive-timeout", "30") as server:
        held = [connect(server) for _ in range(4)]
        try:
            time.sleep(0.3)
            with connect(server) as extra:
                refused, _ = read_until_closed(extra)
            assert refused.startswith(b"HTTP/1.1 503") and b"SERVER_BUSY" in refused
            held[0].sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_responses(held[0], 1).startswith(b"HTTP/1.1 200")
        finally:
            for sock in held:
                sock.close()
        deadline = time.monotonic() + WAIT
        while True:  # once the server has seen them go, new connections are served again
            with connect(server) as sock:
                sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                answer, _ = read_until_closed(sock)
            if answer.startswith(b"HTTP/1.1 200") or time.monotonic() > deadline:
                break
            assert answer.startswith(b"HTTP/1.1 503"), answer
            time.sleep(0.1)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert server.stderr().count("refusing new ones") == 1


def _few_descriptors() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (96, 96))


def test_out_of_descriptors_keeps_serving_open_connections_and_logs_once(tmp_path):
    with RestServer("--realm", "fds", "--state-root", str(tmp_path), "--max-connections", "1000",
                    "--keep-alive-timeout", "60", preexec_fn=_few_descriptors) as server:
        first = connect(server)
        first.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert read_responses(first, 1).startswith(b"HTTP/1.1 200")
        flood = []
        try:
            for _ in range(150):  # more than the server has descriptors for
                flood.append(connect(server))
            # Wait until the server ran out (not a fixed pause: a loaded machine may take longer to
            # accept 96 connections, and closing the flood first would leave nothing to log).
            deadline = time.monotonic() + WAIT
            while "cannot accept connections" not in server.stderr():
                assert time.monotonic() < deadline, server.stderr()[-3000:]
                time.sleep(0.05)
            first.sendall(b"GET /sessions HTTP/1.1\r\nHost: localhost\r\n\r\n")
            assert read_responses(first, 1).startswith(b"HTTP/1.1 200")
        finally:
            for sock in flood:
                sock.close()
            first.close()
        deadline = time.monotonic() + WAIT
        answer = b""
        while time.monotonic() < deadline:
            try:
                with connect(server) as sock:
                    sock.sendall(b"GET /health HTTP/1.0\r\n\r\n")
                    answer, _ = read_until_closed(sock)
            except OSError:
                answer = b""
            if answer.startswith(b"HTTP/1.1 200"):
                break
            time.sleep(0.2)
        assert answer.startswith(b"HTTP/1.1 200"), answer
        log = server.stderr()
        assert log.count("cannot accept connections") == 1, log[-3000:]
        assert "Traceback" not in log, log[-3000:]
        assert server.proc is not None and server.proc.poll() is None
