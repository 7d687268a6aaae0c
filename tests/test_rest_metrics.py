"""``GET /metrics`` of a real ``rkat-rest``, read with Prometheus's own text parser.

Each test takes a snapshot, makes turns run, fail or get interrupted through
the REST routes, and checks the counters moved by exactly what it did.
"""

from __future__ import annotations

import httpx2
import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from test_rest_server import RestServer

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-metrics")
    with RestServer("--realm", "metrics", "--state-root", str(root)) as running:
        yield running


async def scrape(client: httpx2.AsyncClient) -> Samples:
    reply = await client.get("/metrics")
    assert reply.status_code == 200, reply.text
    assert reply.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(reply.text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum over every series of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


MOCK = {"provider": "mock", "model": "mock"}


async def test_metrics_move_as_turns_complete_fail_and_are_interrupted(server):
    async with server.client() as client:
        before = await scrape(client)
        created = await client.post("/sessions", json={"prompt": "count these words", "model": "mock"})
        assert created.status_code == 200
        sid = created.json()["session_id"]
        usage = created.json()["usage"]
        tools = await client.post(f"/sessions/{sid}/messages", json={"prompt": "tool:datetime"})
        assert tools.status_code == 200
        after_ok = await scrape(client)

        started = "rkat_turns_started_total"
        ended = "rkat_turns_ended_total"
        assert value(after_ok, started, **MOCK) - value(before, started, **MOCK) == 2
        assert value(after_ok, ended, **MOCK, status="completed") - value(before, ended, **MOCK,
                                                                          status="completed") == 2
        assert value(after_ok, "rkat_turn_duration_seconds_count", **MOCK, status="completed") - \
            value(before, "rkat_turn_duration_seconds_count", **MOCK, status="completed") == 2
        # The tool turn makes two model calls: the first only asks for the tool (no text, so no first
        # token), the second answers in text.
        assert value(after_ok, "rkat_model_calls_total", **MOCK) - value(before, "rkat_model_calls_total", **MOCK) == 3
        assert value(after_ok, "rkat_time_to_first_token_seconds_count", **MOCK) - \
            value(before, "rkat_time_to_first_token_seconds_count", **MOCK) == 2
        assert value(after_ok, "rkat_tool_calls_total", outcome="ok") - value(before, "rkat_tool_calls_total",
                                                                              outcome="ok") == 1
        first_in = value(after_ok, "rkat_tokens_total", **MOCK, kind="input") - value(before, "rkat_tokens_total",
                                                                                       **MOCK, kind="input")
        assert first_in > usage["input_tokens"]  # the first turn's tokens, and the tool turn's on top
        assert value(after_ok, "rkat_turns_running") == 0
        assert value(after_ok, "rkat_session_actors", state="live") >= 1
        assert total(after_ok, "rkat_store_operation_duration_seconds_count", operation="commit_run", outcome="ok") \
            - total(before, "rkat_store_operation_duration_seconds_count", operation="commit_run", outcome="ok") == 2

        failed = await client.post(f"/sessions/{sid}/messages", json={
            "prompt": "fail please", "provider_params": {"fail": "the vendor is down"}})
        assert failed.status_code >= 400
        after_fail = await scrape(client)
        assert value(after_fail, ended, **MOCK, status="failed") - value(after_ok, ended, **MOCK, status="failed") == 1
        assert total(after_fail, "rkat_provider_errors_total", provider="mock") - \
            total(after_ok, "rkat_provider_errors_total", provider="mock") == 1

        running_seen: list[float] = []

        async def long_turn() -> None:
            await client.post(f"/sessions/{sid}/messages", json={
                "prompt": "talk", "provider_params": {"reply_words": 1000, "token_delay_ms": 20}})

        async with trio.open_nursery() as nursery:
            async with client.sse(f"/sessions/{sid}/events", params={"stop_after_run": "true"}) as source:
                deltas = 0
                async for event in source:
                    if event.event == "session_loaded":
                        nursery.start_soon(long_turn)
                    elif event.event == "text_delta":
                        deltas += 1
                        if deltas == 3:
                            during = await scrape(client)
                            running_seen.append(value(during, "rkat_turns_running"))
                            running_seen.append(value(during, "rkat_event_subscribers"))
                            await client.post(f"/sessions/{sid}/interrupt")
        after_stop = await scrape(client)
        assert running_seen[0] == 1
        assert running_seen[1] >= 1  # this SSE stream (and the turn's own stream) are attached
        assert value(after_stop, ended, **MOCK, status="interrupted") - \
            value(after_fail, ended, **MOCK, status="interrupted") == 1
        assert value(after_stop, "rkat_turns_running") == 0
        # Interrupted output still counts: the words the user saw were generated.
        assert value(after_stop, "rkat_tokens_total", **MOCK, kind="output") >= \
            value(after_fail, "rkat_tokens_total", **MOCK, kind="output")


async def test_metrics_names_follow_prometheus_conventions(server):
    async with server.client() as client:
        await client.post("/sessions", json={"prompt": "hi"})
        reply = await client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(reply.text)}
    ours = {name: f for name, f in families.items() if name.startswith("rkat_")}
    assert {"rkat_turns_started", "rkat_turns_ended", "rkat_turn_duration_seconds", "rkat_tokens",
            "rkat_time_to_first_token_seconds", "rkat_provider_errors", "rkat_provider_retries",
            "rkat_session_actors", "rkat_event_subscribers", "rkat_events_dropped",
            "rkat_store_operation_duration_seconds", "rkat_lease_renewals", "rkat_cross_process_interrupts",
            } <= set(ours)
    for family in ours.values():
        for sample in family.samples:
            # Bounded label sets: never a session or run id.
            assert not {"session_id", "run_id", "session"} & set(sample.labels), sample
            # One series per label set: no *_created timestamps doubling them.
            assert not sample.name.endswith("_created"), sample
        if family.type == "counter":
            assert all(s.name.endswith("_total") for s in family.samples), family.name


async def test_metrics_need_the_token_like_the_api(tmp_path):
    with RestServer("--realm", "m", "--state-root", str(tmp_path), "--auth-token", "s3cret") as server:
        async with server.client() as client:
            denied = await client.get("/metrics")
            assert denied.status_code == 401 and denied.json()["code"] == "UNAUTHORIZED"
            allowed = await client.get("/metrics", headers={"Authorization": "Bearer s3cret"})
            assert allowed.status_code == 200 and "rkat_turns_started_total" in allowed.text
