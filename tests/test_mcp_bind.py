"""``rkat-mcp --http`` follows rkat-rest's rule: off loopback a bearer token is required,
and the Host/Origin guard (DNS rebinding) stays on, with configurable allowed hosts."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx2
import pytest

RKAT_MCP = str(Path(sys.executable).with_name("rkat-mcp"))
INITIALIZE = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bind-test", "version": "1"}}}
ACCEPT = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


def environ() -> dict[str, str]:
    import os
    return {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "RKAT_MCP_TOKEN"}


class McpServer:
    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen([RKAT_MCP, "--realm", "bind", "--state-root", str(root), *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True, env=environ())
        urls: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            for line in self.proc.stderr:
                if "listening on " in line:
                    urls.put(line.rsplit("listening on ", 1)[1].strip())
        threading.Thread(target=drain, daemon=True).start()
        url = urls.get(timeout=60)
        self.port = int(url.rsplit(":", 1)[1].split("/")[0])
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stderr.close()


def test_off_loopback_without_a_token_is_refused(tmp_path):
    done = subprocess.run([RKAT_MCP, "--realm", "bind", "--state-root", str(tmp_path), "--http", "0.0.0.0:0"],
                          capture_output=True, text=True, timeout=60, env=environ(), stdin=subprocess.DEVNULL)
    assert done.returncode == 2
    assert "requires a token" in done.stderr and "RKAT_MCP_TOKEN" in done.stderr


@pytest.fixture
def exposed(tmp_path):
    server = McpServer(tmp_path, "--http", "0.0.0.0:0", "--auth-token", "s3cret", "--allowed-host", "agents.example")
    yield server
    server.stop()


def post(server: McpServer, **headers: str) -> httpx2.Response:
    return httpx2.post(server.url, json=INITIALIZE, headers={**ACCEPT, **headers}, timeout=30)


def test_off_loopback_every_request_needs_the_token(exposed):
    missing = post(exposed)
    assert missing.status_code == 401 and "bearer" in missing.json()["error"]
    assert post(exposed, Authorization="Bearer wrong").status_code == 401
    assert post(exposed, Authorization="Bearer s3cret").status_code == 200


def test_off_loopback_the_host_and_origin_guard_stays_on(exposed):
    auth = {"Authorization": "Bearer s3cret"}
    assert post(exposed, Host="evil.example", **auth).status_code in (400, 403, 421)
    assert post(exposed, Origin="http://evil.example", **auth).status_code in (400, 403)
    assert post(exposed, Host=f"agents.example:{exposed.port}", **auth).status_code == 200
    assert post(exposed, Host=f"agents.example:{exposed.port}", Origin="http://agents.example", **auth
                ).status_code == 200


def test_loopback_needs_no_token_but_checks_the_host(tmp_path):
    server = McpServer(tmp_path, "--http", "127.0.0.1:0")
    try:
        assert post(server).status_code == 200
        assert post(server, Host="evil.example").status_code in (400, 403, 421)
    finally:
        server.stop()


def test_one_client_cannot_hold_every_session(tmp_path):
    server = McpServer(tmp_path, "--http", "127.0.0.1:0", "--sessions-per-client", "3")
    try:
        opened = []
        for _ in range(3):
            reply = post(server)
            assert reply.status_code == 200, reply.text
            opened.append(reply.headers["mcp-session-id"])
        refused = post(server)
        assert refused.status_code == 429 and "too many open MCP sessions" in refused.json()["error"]["message"]
        for session_id in opened:  # the sessions it holds keep working
            ping = httpx2.post(server.url, json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
                               headers={**ACCEPT, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"},
                               timeout=30)
            assert ping.status_code == 200, ping.text
        closed = httpx2.delete(server.url, headers={"mcp-session-id": opened[0],
                                                    "mcp-protocol-version": "2025-06-18"}, timeout=30)
        assert closed.status_code in (200, 204), closed.text
        assert post(server).status_code == 200  # a closed one frees its place
    finally:
        server.stop()


def _ping(server: McpServer, session_id: str) -> httpx2.Response:
    return httpx2.post(server.url, json={"jsonrpc": "2.0", "id": 2, "method": "ping"},
                       headers={**ACCEPT, "mcp-session-id": session_id, "mcp-protocol-version": "2025-06-18"},
                       timeout=30)


def test_a_session_whose_client_never_comes_back_after_initialize_expires_soon(tmp_path):
    server = McpServer(tmp_path, "--http", "127.0.0.1:0", "--handshake-timeout", "1", "--sessions-per-client", "2")
    try:
        abandoned = post(server).headers["mcp-session-id"]
        used = post(server).headers["mcp-session-id"]
        initialized = httpx2.post(server.url, json={"jsonrpc": "2.0", "method": "notifications/initialized"},
                                  headers={**ACCEPT, "mcp-session-id": used, "mcp-protocol-version": "2025-06-18"},
                                  timeout=30)
        assert initialized.status_code == 202, initialized.text
        assert post(server).status_code == 429  # both places are taken
        deadline = time.monotonic() + 30  # closed after the short handshake timeout (1 s; slack for a loaded machine)
        while post(server).status_code == 429:  # (a request on the abandoned session would count as its use)
            assert time.monotonic() < deadline, "the session never used after initialize was not closed"
            time.sleep(0.2)
        assert _ping(server, abandoned).status_code == 404  # its place was freed by closing it
        assert _ping(server, used).status_code == 200  # a session in use keeps the long idle timeout
    finally:
        server.stop()


async def test_one_client_cannot_hold_every_event_stream(tmp_path):
    from mcp import Client

    server = McpServer(tmp_path, "--http", "127.0.0.1:0", "--streams-per-client", "2")
    try:
        async with Client(server.url) as client:
            async def call(name: str, arguments: dict) -> dict:
                result = await client.call_tool(name, arguments)
                return {"is_error": result.is_error, **json.loads(result.content[0].text)}

            session_id = (await call("meerkat_run", {"prompt": "hi", "model": "mock"}))["session_id"]
            streams = [await call("meerkat_event_stream_open", {"session_id": session_id}) for _ in range(2)]
            assert not any(s["is_error"] for s in streams), streams
            refused = await call("meerkat_event_stream_open", {"session_id": session_id})
            assert refused["is_error"] and refused["code"] == "INVALID_PARAMS", refused
            assert "too many open event streams for client 127.0.0.1" in refused["error"], refused
            closed = await call("meerkat_event_stream_close", {"stream_id": streams[0]["stream_id"]})
            assert not closed["is_error"], closed
            reopened = await call("meerkat_event_stream_open", {"session_id": session_id})  # its place is free
            assert not reopened["is_error"], reopened
    finally:
        server.stop()
