"""OpenTelemetry traces of turns: span tree and GenAI attributes, captured with the SDK's in-memory exporter.

The last tests run a real ``rkat-rest`` with tracing turned on by the
environment, exporting OTLP/HTTP to a small collector in the test, and check a
``traceparent`` header becomes the run span's parent.
"""

from __future__ import annotations

import http.server
import json
import subprocess
import sys
import threading

import httpx2
import pytest
import trio
from mcp import Client, StdioServerParameters
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from helpers import running_service
from meerkat import observability
from meerkat.errors import ProviderError, RequestCancelled
from meerkat.observability.otel import TracingObserver
from meerkat.testing import HttpError, Reply
from provider_cases import CASES, FAST_RETRY, provider_service
from rpc_process import RpcProcess, child_env
from test_mcp import RKAT_MCP, server_env
from test_rest_server import RestServer


@pytest.fixture
def exporter():
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    observer = observability.install(TracingObserver(provider.get_tracer("test")))
    memory.observer = observer  # type: ignore[attr-defined]
    yield memory
    observability.uninstall(observer)
    provider.shutdown()


def by_name(spans, prefix: str):
    return [s for s in spans if s.name.startswith(prefix)]


async def test_a_turn_with_two_tool_calls(tmp_path, exporter):
    async with running_service(tmp_path, "memory") as service:
        result = await service.create_session("tool:datetime and tool:datetime", model="mock")
    assert result.tool_calls == 2
    spans = exporter.get_finished_spans()
    [run] = by_name(spans, "invoke_agent")
    chats = sorted(by_name(spans, "chat "), key=lambda s: s.start_time)
    tools = by_name(spans, "execute_tool ")
    assert run.name == "invoke_agent rkat" and run.parent is None
    assert dict(run.attributes) == {
        "gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "rkat", "gen_ai.provider.name": "mock",
        "rkat.provider": "mock",
        "gen_ai.request.model": "mock", "gen_ai.conversation.id": result.session_id,
        "rkat.run.id": run.attributes["rkat.run.id"], "rkat.realm.id": "test-realm", "rkat.run.status": "completed",
        "gen_ai.usage.input_tokens": result.run_usage.input_tokens,
        "gen_ai.usage.output_tokens": result.run_usage.output_tokens}
    assert run.status.status_code == StatusCode.UNSET
    assert [c.name for c in chats] == ["chat mock", "chat mock"] and len(tools) == 2
    for span in [*chats, *tools]:
        assert span.parent.span_id == run.context.span_id and span.context.trace_id == run.context.trace_id
    first, second = chats
    assert first.attributes["gen_ai.operation.name"] == "chat"
    assert first.attributes["gen_ai.response.finish_reasons"] == ("tool_calls",)
    assert second.attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert first.attributes["gen_ai.usage.input_tokens"] + second.attributes["gen_ai.usage.input_tokens"] == \
        result.run_usage.input_tokens
    # The first model call ends when it asks for the tools, before they run.
    assert first.end_time <= min(t.start_time for t in tools) and max(t.end_time for t in tools) <= second.start_time
    assert {t.attributes["gen_ai.tool.name"] for t in tools} == {"datetime"}
    assert len({t.attributes["gen_ai.tool.call.id"] for t in tools}) == 2
    assert all(t.attributes["gen_ai.operation.name"] == "execute_tool" for t in tools)
    # No prompt or completion text unless asked for.
    assert not any(k.startswith(("gen_ai.input", "gen_ai.output")) or k == "gen_ai.tool.call.arguments"
                   for s in spans for k in s.attributes)


async def test_message_content_only_when_enabled(tmp_path, exporter):
    exporter.observer.capture_content = True
    async with running_service(tmp_path, "memory") as service:
        await service.create_session("what time is it? tool:datetime", model="mock")
    spans = exporter.get_finished_spans()
    [run] = by_name(spans, "invoke_agent")
    assert json.loads(run.attributes["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "what time is it? tool:datetime"}]}]
    [tool] = by_name(spans, "execute_tool")
    assert tool.attributes["gen_ai.tool.call.arguments"] == "{}"
    last_chat = sorted(by_name(spans, "chat "), key=lambda s: s.start_time)[-1]
    assert "Tool datetime returned" in last_chat.attributes["gen_ai.output.messages"]


async def test_an_interrupted_turn(tmp_path, exporter):
    async with running_service(tmp_path, "memory") as service:
        created = await service.create_session("first", run_immediately=False, model="mock")
        stream = await service.start_turn_streaming(created.session_id, "talk",
                                                    provider_params={"reply_words": 500, "token_delay_ms": 5})
        async for envelope in stream:
            if envelope.type == "text_delta":
                break
        await service.interrupt(created.session_id)
        with pytest.raises(RequestCancelled):
            await stream.result()
    [run] = by_name(exporter.get_finished_spans(), "invoke_agent")
    [chat] = by_name(exporter.get_finished_spans(), "chat ")
    assert run.attributes["rkat.run.status"] == "interrupted" and run.attributes["error.type"] == "cancelled"
    assert run.status.status_code == StatusCode.UNSET  # an interrupt is the user's wish, not a failure
    assert chat.attributes["error.type"] == "cancelled" and chat.parent.span_id == run.context.span_id


async def test_a_failed_provider_call(tmp_path, exporter):
    async with running_service(tmp_path, "memory") as service:
        created = await service.create_session("first", run_immediately=False, model="mock")
        with pytest.raises(ProviderError):
            await service.start_turn(created.session_id, "break", provider_params={"fail": "vendor down"})
    [run] = by_name(exporter.get_finished_spans(), "invoke_agent")
    [chat] = by_name(exporter.get_finished_spans(), "chat ")
    assert run.status.status_code == StatusCode.ERROR and "vendor down" in run.status.description
    assert run.attributes["rkat.run.status"] == "failed" and run.attributes["error.type"]
    assert chat.status.status_code == StatusCode.ERROR and chat.attributes["error.type"] == run.attributes["error.type"]


class Collector(http.server.ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: keeps every exported span."""

    def __init__(self) -> None:
        self.spans: list = []
        self.got = threading.Condition()
        collector = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = ExportTraceServiceRequest.FromString(body)
                with collector.got:
                    for resource in request.resource_spans:
                        for scope in resource.scope_spans:
                            collector.spans.extend(scope.spans)
                    collector.got.notify_all()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    def wait_for(self, name_prefix: str, timeout: float = 30.0) -> list:
        with self.got:
            self.got.wait_for(lambda: any(s.name.startswith(name_prefix) for s in self.spans), timeout)
            return list(self.spans)


async def test_rest_traceparent_becomes_the_parent_of_the_run(tmp_path):
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "50"}
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    try:
        with RestServer("--realm", "traced", "--state-root", str(tmp_path), env=env) as server:
            async with server.client() as client:  # one keep-alive connection for both requests
                reply = await client.post("/sessions", json={"prompt": "trace me", "model": "mock"},
                                          headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
                assert reply.status_code == 200
                untraced = await client.post("/sessions", json={"prompt": "no parent", "model": "mock"})
                assert untraced.status_code == 200
                assert untraced.headers.get("connection", "keep-alive").lower() != "close"
            spans = await trio.to_thread.run_sync(collector.wait_for, "invoke_agent")
    finally:
        collector.shutdown()
        collector.server_close()
    runs = [s for s in spans if s.name == "invoke_agent rkat"]
    traced = next(s for s in runs if s.trace_id.hex() == trace_id)
    assert traced.parent_span_id.hex() == parent_id
    attributes = {a.key: a.value for a in traced.attributes}
    assert attributes["gen_ai.conversation.id"].string_value == reply.json()["session_id"]
    chat = next(s for s in spans if s.name == "chat mock" and s.parent_span_id == traced.span_id)
    assert chat.trace_id == traced.trace_id
    others = [s for s in runs if s is not traced]
    assert all(s.trace_id.hex() != trace_id and not s.parent_span_id for s in others)


def test_no_tracing_or_metrics_code_is_loaded_when_off(tmp_path):
    code = ("import sys, trio\n"
            "from actors import open_service\n"
            "async def main():\n"
            f"    async with open_service('r', state_root={str(tmp_path)!r}, backend='memory') as service:\n"
            "        await service.create_session('hello', model='mock')\n"
            "trio.run(main)\n"
            "print(sorted(m for m in sys.modules if m.startswith(('opentelemetry', 'prometheus_client'))))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_rpc_meta_traceparent_becomes_the_parent_of_the_run(tmp_path):
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    trace_id, parent_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    env = child_env(tmp_path, OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{collector.server_address[1]}",
                    OTEL_BSP_SCHEDULE_DELAY="50")
    rpc = RpcProcess(state_root=tmp_path, env=env)
    try:
        created = rpc.result("session/create", {"prompt": "trace me", "model": "mock", "session_events": False,
                                                "_meta": {"traceparent": f"00-{trace_id}-{parent_id}-01"}})
        spans = collector.wait_for("invoke_agent")  # the batch processor exports every 50 ms
    finally:
        rpc.stop()
        collector.shutdown()
        collector.server_close()
    run = next(s for s in spans if s.name == "invoke_agent rkat")
    assert run.trace_id.hex() == trace_id and run.parent_span_id.hex() == parent_id
    assert {a.key: a.value.string_value for a in run.attributes}["gen_ai.conversation.id"] == created["session_id"]


async def test_a_retried_model_call_gives_one_chat_span_per_attempt(tmp_path, monkeypatch, exporter):
    case = CASES["openai"]
    async with provider_service(case, tmp_path, monkeypatch, retry={**FAST_RETRY, "max_retries": 2}) as (service, server):
        server.script(HttpError(429, "slow down", retry_after=0.01), Reply(text="made it"))
        created = await service.create_session("go", model=case.model)
    assert created.text == "made it"
    spans = exporter.get_finished_spans()
    [run] = by_name(spans, "invoke_agent")
    failed, answered = sorted(by_name(spans, "chat "), key=lambda s: s.start_time)
    assert failed.attributes["error.type"] == "rate_limited" and failed.status.status_code == StatusCode.ERROR
    assert "error.type" not in answered.attributes and answered.attributes["gen_ai.usage.output_tokens"] > 0
    assert run.attributes["gen_ai.provider.name"] == "openai" and run.status.status_code == StatusCode.UNSET
    assert failed.end_time <= answered.start_time


async def test_mcp_meta_traceparent_becomes_the_parent_of_the_run(tmp_path):
    collector = Collector()
    threading.Thread(target=collector.serve_forever, daemon=True).start()
    trace_id, parent_id = "5bf92f3577b34da6a3ce929d0e0e4737", "10f067aa0ba902b8"
    env = {**server_env(), "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_address[1]}",
           "OTEL_BSP_SCHEDULE_DELAY": "50"}
    target = StdioServerParameters(command=RKAT_MCP, env=env, args=["--realm", "mcp-traced", "--state-root",
                                                                    str(tmp_path)])
    try:
        async with Client(target) as client:
            result = await client.call_tool("meerkat_run", {"prompt": "trace me", "model": "mock"},
                                            meta={"traceparent": f"00-{trace_id}-{parent_id}-01"})
            assert not result.is_error
            spans = await trio.to_thread.run_sync(collector.wait_for, "invoke_agent")
    finally:
        collector.shutdown()
        collector.server_close()
    run = next(s for s in spans if s.name == "invoke_agent rkat")
    assert run.trace_id.hex() == trace_id and run.parent_span_id.hex() == parent_id
