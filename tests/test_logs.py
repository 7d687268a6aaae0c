"""Operator logs: ``--log-format json`` / ``--log-level`` on the servers and on ``rkat``."""

from __future__ import annotations

import io
import json
import logging
import subprocess

import trio

from cli_process import RKAT, cli_env
from meerkat import observability
from meerkat.observability.logs import JsonFormatter
from test_rest_server import RestServer


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def test_rkat_logs_each_turn_as_json_lines(tmp_path):
    done = subprocess.run([RKAT, "--state-root", str(tmp_path), "--realm", "logs", "--log-level", "info",
                           "--log-format", "json", "run", "--json", "hello"], capture_output=True, text=True,
                          env=cli_env(), cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    lines = json_lines(done.stderr)
    assert lines and all(line["program"] == "rkat" and line["level"] for line in lines)
    started = next(line for line in lines if line.get("event") == "run_started")
    ended = next(line for line in lines if line.get("event") == "run_completed")
    for line in (started, ended):
        assert line["session_id"] == result["session_id"] and line["realm_id"] == "logs"
        assert line["logger"] == "rkat.turns" and line["time"].endswith("Z")
    assert started["run_id"] == ended["run_id"] and ended["status"] == "completed"
    assert ended["output_tokens"] == result["usage"]["output_tokens"]


def test_rkat_default_stderr_is_unchanged_and_bad_values_are_usage_errors(tmp_path):
    quiet = subprocess.run([RKAT, "--state-root", str(tmp_path), "run", "hello"], capture_output=True, text=True,
                           env=cli_env(), cwd=tmp_path, timeout=60)
    assert quiet.returncode == 0 and "rkat.turns" not in quiet.stderr and "{" not in quiet.stderr
    bad = subprocess.run([RKAT, "--log-format", "yaml", "run", "hello"], capture_output=True, text=True,
                         env=cli_env(), cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "'yaml' is not one of 'text', 'json'" in bad.stderr


async def test_rkat_rest_json_logs_name_session_run_and_realm(tmp_path):
    server = RestServer("--realm", "logged", "--state-root", str(tmp_path), "--log-format", "json",
                        "--log-level", "info")
    with server:
        async with server.client() as client:
            ok = (await client.post("/sessions", json={"prompt": "hi", "model": "mock"})).json()
            failed = await client.post(f"/sessions/{ok['session_id']}/messages",
                                       json={"prompt": "x", "provider_params": {"fail": "vendor down"}})
            assert failed.status_code >= 400
        server.stop()
        stderr = server.stderr()
    assert stderr.strip() and all(line.startswith("{") for line in stderr.splitlines()), stderr
    lines = json_lines(stderr)
    assert lines and all(line["program"] == "rkat-rest" for line in lines)
    shutting = next(line for line in lines if line["logger"] == "stderr")  # its own notes are JSON too
    assert shutting["message"].startswith("shutting down") and shutting["level"] == "info"
    events = [(line.get("event"), line.get("session_id"), line.get("realm_id")) for line in lines if "event" in line]
    sid = ok["session_id"]
    assert events == [("run_started", sid, "logged"), ("run_completed", sid, "logged"),
                      ("run_started", sid, "logged"), ("run_failed", sid, "logged")]
    failure = lines[[line.get("event") for line in lines].index("run_failed")]
    assert failure["level"] == "warning" and "vendor down" in failure["message"] and failure["error_class"]


async def test_lines_logged_inside_a_turn_carry_its_ids():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter("test"))
    log = logging.getLogger("test.inside-turn")
    log.addHandler(handler)
    log.propagate = False

    async def turn_task() -> None:
        observability.set_log_context(session_id="s-1", run_id="r-1", realm_id="realm-x")
        log.warning("provider slow")

    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(turn_task)
        log.warning("outside any turn")
    finally:
        log.removeHandler(handler)
    inside, outside = json_lines(out.getvalue())
    assert (inside["session_id"], inside["run_id"], inside["realm_id"]) == ("s-1", "r-1", "realm-x")
    assert inside["message"] == "provider slow" and inside["level"] == "warning"
    assert "session_id" not in outside
