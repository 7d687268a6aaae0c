"""``rkat doctor``: the realm, state root, keys (never shown), base URLs, reachability and versions."""

from __future__ import annotations

import http.server
import socket
import threading

from cli_process import Cli


def test_doctor_reports_without_creating_or_revealing_anything(tmp_path):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    with socket.create_server(("127.0.0.1", 0)) as probe:
        closed_port = probe.getsockname()[1]
    try:
        env = {"ANTHROPIC_API_KEY": "sk-ant-secret-value", "ANTHROPIC_BASE_URL": f"http://127.0.0.1:{server.server_port}",
               "OPENAI_API_KEY": "sk-openai-secret", "OPENAI_BASE_URL": f"http://127.0.0.1:{closed_port}/v1"}
        rkat = Cli(tmp_path / "state", tmp_path, env=env)
        fresh = rkat("doctor", "--format", "json").json()
        assert fresh["realm"]["exists"] is False and not (tmp_path / "state").exists()  # nothing created
        assert fresh["realm"]["realm_id"].startswith("ws-") and fresh["realm"]["state_root"] == str(tmp_path / "state")
        anthropic, openai = fresh["providers"]["anthropic"], fresh["providers"]["openai"]
        assert anthropic["key"] == "set (ANTHROPIC_API_KEY)" and anthropic["reachable"].startswith("answers (HTTP 501")
        assert openai["base_url"] == f"http://127.0.0.1:{closed_port}/v1" and openai["reachable"].startswith("unreachable")
        assert fresh["providers"]["gemini"]["key"].startswith("not set (") and "reachable" not in fresh["providers"]["gemini"]
        assert fresh["versions"]["rkat"] == "0.1.0" and fresh["versions"]["python"].startswith("3.")

        rkat("run", "--model", "mock", "hello")
        realm_dir = tmp_path / "state" / fresh["realm"]["realm_id"]
        (realm_dir / "config.toml").write_text('[agent]\nmodel = "mock"\nmax_turnz = 3\n')
        text = rkat("doctor", "--no-probe").out
        assert "exists       yes" in text and "store        ok" in text
        assert "UNKNOWN KEYS agent.max_turnz" in text
        assert "secret" not in text and "answers" not in text
    finally:
        server.shutdown()
        server.server_close()


def test_doctor_store_check_is_the_health_check_and_reports_an_emptied_database(tmp_path):
    """One store check for every surface (actors.store_health, deep): an emptied database is
    a failure naming the file, where a bare quick_check of the empty file says "ok"."""
    rkat = Cli(tmp_path / "state", tmp_path)
    rkat("run", "--model", "mock", "hello")
    realm_id = rkat("doctor", "--no-probe", "--format", "json").json()["realm"]["realm_id"]
    database = tmp_path / "state" / realm_id / "sessions.sqlite3"
    healthy = rkat("doctor", "--no-probe", "--format", "json").json()["realm"]["store"]
    assert healthy == f"ok ({database})", healthy
    database.write_bytes(b"")
    damaged = rkat("doctor", "--no-probe", "--format", "json", expect=None).json()["realm"]["store"]
    assert damaged.startswith("FAILED: ") and f"{database}" in damaged and "empty (zero bytes)" in damaged, damaged
