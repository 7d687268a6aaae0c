"""Contract slips: a ``null`` config body is not an empty document, and ``rkat-rpc`` answers
every pending call when it is stopped with SIGTERM (as rkat-rest answers 499)."""

from __future__ import annotations

import signal
import time

import httpx2

from rpc_process import RpcProcess
from test_rest_server import RestServer


def test_null_config_bodies_are_refused_and_change_nothing(tmp_path):
    with RestServer("--realm", "slips", "--state-root", str(tmp_path)) as server:
        patched = httpx2.patch(f"{server.url}/config", json={"patch": {"agent": {"max_tokens_per_turn": 1234}}})
        assert patched.status_code == 200, patched.text
        for method in ("PUT", "PATCH"):
            reply = httpx2.request(method, f"{server.url}/config", content=b"null",
                                   headers={"Content-Type": "application/json"})
            assert reply.status_code == 400, reply.text
            assert reply.json()["code"] == "INVALID_PARAMS" and "null" in reply.json()["error"]
        after = httpx2.get(f"{server.url}/config").json()
        assert after["generation"] == patched.json()["generation"]
        assert after["config"]["agent"]["max_tokens_per_turn"] == 1234


def test_rpc_sigterm_answers_every_pending_call(tmp_path):
    rpc = RpcProcess("--realm", "slips", state_root=tmp_path)
    try:
        sessions = [rpc.result("session/create", {"prompt": "hello"})["session_id"] for _ in range(20)]
        pending = [rpc.request("turn/start", {"session_id": sid, "prompt": "a long one",
                                              "provider_params": {"reply_words": 3000, "token_delay_ms": 20}})
                   for sid in sessions]
        time.sleep(1.0)  # every turn is running
        rpc.proc.send_signal(signal.SIGTERM)
        answers = {}
        while len(answers) < len(pending):
            message = rpc.read(timeout=30)
            if "id" in message and message["id"] in pending:
                answers[message["id"]] = message
        assert rpc.proc.wait(timeout=30) == 0
        for message in answers.values():
            assert "error" in message, message
            assert message["error"]["data"]["error_code"] == "REQUEST_CANCELLED", message
    finally:
        rpc.stop()
