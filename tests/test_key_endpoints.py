"""API keys go only where the operator decided: network clients cannot redirect them.

A fake vendor on loopback plays the credential sink: after each attempt to point a
provider at it through REST or MCP, a real Claude turn runs, and the sink must have
received nothing (the operator's endpoint, from the environment, gets the turn).
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from mcp import Client

from meerkat.config.endpoints import refuse_key_redirects
from meerkat.errors import InvalidParams
from meerkat.testing import Reply, open_fake_provider_server

from cli_process import Cli
from test_rest_server import RestServer, hermetic_environ

SECRET = "sk-ant-secret-never-to-the-sink"
RKAT_MCP = str(Path(sys.executable).with_name("rkat-mcp"))


def operator_env(legit_url: str) -> dict[str, str]:
    return {**hermetic_environ(), "ANTHROPIC_API_KEY": SECRET, "RKAT_ANTHROPIC_BASE_URL": legit_url}


def redirect_attempts(sink: str) -> list[tuple[str, dict]]:
    """(method, body) pairs for /config that would send the key to ``sink``."""
    return [
        ("PATCH", {"patch": {"providers": {"anthropic": {"base_url": sink}}}}),
        ("PATCH", {"providers": {"anthropic": {"base_url": sink + "/"}}}),
        ("PUT", {"config": {"providers": {"anthropic": {"base_url": sink}}}}),
        ("PATCH", {"patch": {"self_hosted": {"servers": {"evil": {"base_url": sink}},
                                             "models": {"claude-sonnet-4-6": {"server": "evil"}}}}}),
    ]


async def test_rest_clients_cannot_point_a_provider_key_elsewhere(tmp_path):
    async with open_fake_provider_server(default=Reply(text="legit")) as legit, \
            open_fake_provider_server(default=Reply(text="stolen")) as sink:
        with RestServer("--realm", "keys", "--state-root", str(tmp_path), env=operator_env(legit.url)) as server:
            async with server.client() as http:
                before = (await http.get("/config")).json()
                for method, body in redirect_attempts(sink.url):
                    refused = await http.request(method, "/config", json=body)
                    assert refused.status_code == 400, refused.text
                    error = refused.json()
                    assert error["code"] == "INVALID_PARAMS" and "API key" in error["error"], error
                    assert "base_url" in error["details"]["key"]
                    turn = await http.post("/sessions", json={"prompt": "hi", "model": "claude-sonnet-4-6"})
                    assert turn.status_code == 200, turn.text
                    assert turn.json()["text"] == "legit"
                    assert sink.requests == [], "the sink received a request"
                after = (await http.get("/config")).json()
                assert after["generation"] == before["generation"] and after["config"] == before["config"]
                # Every other key stays writable, and a base URL can always go back to the vendor's.
                ok = await http.patch("/config", json={"patch": {"agent": {"max_tokens_per_turn": 1000},
                                                                 "providers": {"anthropic": None}}})
                assert ok.status_code == 200, ok.text
    assert all(SECRET in json.dumps(request.headers) for request in legit.requests)
    assert legit.requests


def test_config_written_on_this_machine_may_choose_the_endpoint(tmp_path):
    rkat = Cli(tmp_path / "state", tmp_path)
    rkat("--realm", "local", "config", "patch", "--json",
         json.dumps({"providers": {"anthropic": {"base_url": "http://127.0.0.1:9/proxy"}}}))
    shown = rkat("--realm", "local", "config", "get", "--format", "json").json()
    assert shown["providers"]["anthropic"]["base_url"] == "http://127.0.0.1:9/proxy"


def test_operator_allowlist_and_unchanged_values():
    current = {"providers": {"anthropic": {"base_url": "http://proxy.corp:8000"}}}
    patch = {"providers": {"openai": {"base_url": "http://gw.corp/v1"}}}
    with pytest.raises(InvalidParams, match="providers.openai.base_url"):
        refuse_key_redirects(current, patch, patch=True, surface="x", environ={})
    refuse_key_redirects(current, patch, patch=True, surface="x",
                         environ={"RKAT_ALLOWED_BASE_URLS": "http://other, http://gw.corp/v1/"})
    refuse_key_redirects(current, current, patch=False, surface="x", environ={})  # a GET-then-PUT round trip
    refuse_key_redirects(current, {"providers": {"anthropic": {"base_url": "https://api.anthropic.com"}}},
                         patch=True, surface="x", environ={})


class McpHttpServer:
    def __init__(self, state_root: Path, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen([RKAT_MCP, "--realm", "keys", "--state-root", str(state_root),
                                      "--http", "127.0.0.1:0"], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        urls: queue.Queue[str] = queue.Queue()

        def drain() -> None:
            for line in self.proc.stderr:
                if "listening on " in line:
                    urls.put(line.rsplit("listening on ", 1)[1].strip())
        threading.Thread(target=drain, daemon=True).start()
        self.url = urls.get(timeout=60)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.proc.stderr.close()


async def test_mcp_clients_cannot_point_a_provider_key_elsewhere(tmp_path):
    async with open_fake_provider_server(default=Reply(text="legit")) as legit, \
            open_fake_provider_server(default=Reply(text="stolen")) as sink:
        server = McpHttpServer(tmp_path, operator_env(legit.url))
        try:
            async with Client(server.url) as client:
                for method, body in redirect_attempts(sink.url):
                    document = body.get("patch", body.get("config", body))
                    action = "set" if method == "PUT" else "patch"
                    result = await client.call_tool("meerkat_config", {"action": action, action if action == "patch"
                                                                       else "config": document})
                    assert result.is_error, result.content[0].text
                    error = json.loads(result.content[0].text)
                    assert error["code"] == "INVALID_PARAMS" and "API key" in error["error"], error
                    run = await client.call_tool("meerkat_run", {"prompt": "hi", "model": "claude-sonnet-4-6"})
                    assert not run.is_error, run.content[0].text
                    assert sink.requests == []
        finally:
            server.stop()
    assert legit.requests and all(SECRET in json.dumps(r.headers) for r in legit.requests)
