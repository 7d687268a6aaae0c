"""``rkat-mcp`` as a command: its options, bad input on the wire, and a realm shared across restarts."""

from __future__ import annotations

import json
import socket
import subprocess

import trio
from mcp import Client, StdioServerParameters

from test_mcp import RKAT_MCP, server_env


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([RKAT_MCP, *args], capture_output=True, text=True, timeout=60, env=server_env(),
                          stdin=subprocess.DEVNULL)


def test_help_shows_transports_and_examples():
    shown = run_cli("--help")
    assert shown.returncode == 0
    for text in ("--http HOST:PORT", "--realm", "--realm-backend", "examples:", "meerkat_run"):
        assert text in shown.stdout


def test_bad_options_exit_2_saying_what_is_wrong():
    for args, complaint in ((["--http", "localhost"], "--http expects HOST:PORT"),
                            (["--http", "127.0.0.1:99999"], "--http expects HOST:PORT"),
                            (["--realm", "../x"], "realm"),
                            (["--realm", "a", "--isolated"], "--realm and --isolated")):
        refused = run_cli(*args)
        assert refused.returncode == 2, refused.stderr
        assert complaint in refused.stderr and "Traceback" not in refused.stderr


def test_a_taken_port_is_a_clear_error(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        refused = run_cli("--state-root", str(tmp_path), "--http", f"127.0.0.1:{port}")
    assert refused.returncode == 1
    assert "rkat-mcp: error:" in refused.stderr and "Traceback" not in refused.stderr


async def test_unreadable_stdio_lines_are_answered_and_the_server_keeps_serving(tmp_path):
    server = subprocess.Popen([RKAT_MCP, "--state-root", str(tmp_path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=server_env())
    lines = [
        "this is not json",
        json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "raw", "version": "1"}}}),
        json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
        '{"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {',
        json.dumps({"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                    "params": {"name": "meerkat_sessions", "arguments": {}}}),
    ]
    try:
        server.stdin.write("\n".join(lines) + "\n")
        server.stdin.flush()
        replies = []
        with trio.fail_after(30):
            while not replies or replies[-1].get("id") != 3:
                replies.append(json.loads(await trio.to_thread.run_sync(server.stdout.readline)))
    finally:
        server.stdin.close()
        server.wait(timeout=30)
        server.stdout.close()
        stderr = server.stderr.read()
        server.stderr.close()
    parse_errors = [r for r in replies if r.get("id") is None]
    assert len(parse_errors) == 2
    assert all(r["error"]["code"] == -32700 and "Parse error" in r["error"]["message"] for r in parse_errors)
    assert replies[-1]["result"]["structuredContent"] == {"sessions": []}
    assert "unreadable message on stdin" in stderr
    assert "serving a fresh realm; pass --realm" in stderr  # no --realm: the start says how to persist
    assert server.returncode == 0  # closing stdin is a clean stop


async def test_a_named_realm_keeps_sessions_across_restarts(tmp_path):
    params = StdioServerParameters(command=RKAT_MCP, env=server_env(), args=[
        "--realm", "keep", "--state-root", str(tmp_path), "--realm-backend", "jsonl", "--instance", "mcp-1"])
    async with Client(params) as first:
        created = json.loads((await first.call_tool("meerkat_run", {"prompt": "remember me"})).content[0].text)
    async with Client(params) as second:
        listed = (await second.call_tool("meerkat_sessions", {})).structured_content["sessions"]
        config = (await second.call_tool("meerkat_config", {"action": "get"})).structured_content
    assert [s["session_id"] for s in listed] == [created["session_id"]]
    assert config["realm_id"] == "keep" and config["backend"] == "jsonl" and config["instance_id"] == "mcp-1"
