"""``--metrics HOST:PORT`` on the stdio servers: ``rkat-rpc`` and ``rkat-mcp`` as real processes.

Their stdout carries the protocol, so metrics get a listener of their own; the
tests scrape it with httpx2 and read it with Prometheus's text parser.
"""

from __future__ import annotations

import socket
import subprocess
import time

import httpx2
import trio
from mcp import Client, StdioServerParameters
from prometheus_client.parser import text_string_to_metric_families

from rpc_process import RKAT_RPC, RpcProcess, child_env
from test_mcp import RKAT_MCP, server_env
from test_rest_server import RestServer


def counter(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels == labels:
                return sample.value
    return 0.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def metrics_url(rpc: RpcProcess) -> str:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        for line in rpc.stderr.decode().splitlines():
            if line.startswith("rkat-rpc: metrics on "):
                return line.removeprefix("rkat-rpc: metrics on ")
        time.sleep(0.05)
    raise AssertionError(f"no metrics URL on stderr: {rpc.stderr.decode()}")


def test_rkat_rpc_serves_metrics_that_count_its_turns(tmp_path):
    rpc = RpcProcess("--metrics", "127.0.0.1:0", state_root=tmp_path)
    try:
        url = metrics_url(rpc)
        assert url.startswith("http://127.0.0.1:") and url.endswith("/metrics")
        before = httpx2.get(url).text
        assert counter(before, "rkat_turns_started_total", provider="mock", model="mock") == 0
        _, created = rpc.call("session/create", {"prompt": "hello", "model": "mock", "session_events": False})
        assert "result" in created, created
        _, failed = rpc.call("turn/start", {"session_id": created["result"]["session_id"], "prompt": "again",
                                            "provider_params": {"fail": "vendor down"}})
        assert "error" in failed, failed
        after = httpx2.get(url).text
        assert counter(after, "rkat_turns_started_total", provider="mock", model="mock") == 2
        assert counter(after, "rkat_turns_ended_total", provider="mock", model="mock", status="completed") == 1
        assert counter(after, "rkat_turns_ended_total", provider="mock", model="mock", status="failed") == 1
    finally:
        rpc.stop()


def test_a_bad_metrics_address_is_a_usage_error(tmp_path):
    bad = subprocess.run([RKAT_RPC, "--metrics", "nowhere"], capture_output=True, text=True,
                         env=child_env(tmp_path), timeout=60)
    assert bad.returncode == 2 and "expected HOST:PORT (e.g. 127.0.0.1:9464), got 'nowhere'" in bad.stderr
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = subprocess.run([RKAT_RPC, "--metrics", f"127.0.0.1:{port}"], capture_output=True, text=True,
                              env=child_env(tmp_path), timeout=60, stdin=subprocess.DEVNULL)
    assert busy.returncode == 2 and f"cannot serve metrics on 127.0.0.1:{port}" in busy.stderr


async def test_rkat_mcp_serves_metrics_that_count_its_turns(tmp_path):
    port = free_port()
    target = StdioServerParameters(command=RKAT_MCP, env=server_env(), args=[
        "--realm", "mcp-metrics", "--state-root", str(tmp_path), "--metrics", f"127.0.0.1:{port}"])
    async with Client(target) as client:
        url = f"http://127.0.0.1:{port}/metrics"
        async with httpx2.AsyncClient() as http:
            before = (await http.get(url)).text
            result = await client.call_tool("meerkat_run", {"prompt": "hello", "model": "mock"})
            assert not result.is_error
            with trio.fail_after(30):
                after = (await http.get(url)).text
        started = counter(after, "rkat_turns_started_total", provider="mock", model="mock")
        assert started - counter(before, "rkat_turns_started_total", provider="mock", model="mock") == 1
        assert counter(after, "rkat_turns_ended_total", provider="mock", model="mock", status="completed") == 1


async def test_cross_process_interrupts_and_lease_renewals_are_counted(tmp_path):
    """rkat-rest interrupts a turn that rkat-rpc runs on the same realm: each side counts its half."""
    lease = {"RKAT_LEASE_SECS": "1.5"}  # renewals every 0.5 s
    with RestServer("--realm", "shared", "--state-root", str(tmp_path), env=lease) as rest:
        rpc = RpcProcess("--realm", "shared", "--metrics", "127.0.0.1:0", state_root=tmp_path,
                         env=child_env(tmp_path, **lease))
        try:
            rpc_metrics = metrics_url(rpc)
            sid = rpc.result("session/create", {"prompt": "hi", "model": "mock", "session_events": False})["session_id"]
            turn = rpc.request("turn/start", {"session_id": sid, "prompt": "talk", "session_events": False,
                                              "provider_params": {"reply_words": 3000, "token_delay_ms": 10}})
            async with rest.client() as client:
                with trio.fail_after(30):
                    while not (await client.get(f"/sessions/{sid}")).json()["is_active"]:
                        await trio.sleep(0.05)
                    while counter(httpx2.get(rpc_metrics).text, "rkat_lease_renewals_total", outcome="ok") < 1:
                        await trio.sleep(0.1)
                stopped = await client.post(f"/sessions/{sid}/interrupt")
                assert stopped.json()["interrupted"] is True
                rest_text = (await client.get("/metrics")).text
            _, answer = await trio.to_thread.run_sync(rpc.until_response, turn)
            assert "error" in answer
            rpc_text = httpx2.get(rpc_metrics).text
        finally:
            rpc.stop()
    assert counter(rest_text, "rkat_cross_process_interrupts_total", direction="sent") == 1
    assert counter(rest_text, "rkat_turns_started_total", provider="mock", model="mock") == 0  # not its turn
    assert counter(rpc_text, "rkat_cross_process_interrupts_total", direction="received") == 1
    assert counter(rpc_text, "rkat_turns_ended_total", provider="mock", model="mock", status="interrupted") == 1
    assert counter(rpc_text, "rkat_lease_renewals_total", outcome="ok") >= 1
