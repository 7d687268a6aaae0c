"""The Prometheus observer in-process: actor lifecycle, dropped events, label bounds, retries and provider errors."""

from __future__ import annotations

import pytest
import trio
from prometheus_client.parser import text_string_to_metric_families

from helpers import running_service
from meerkat.errors import ProviderError
from meerkat.testing import HttpError, Reply
from provider_cases import CASES, FAST_RETRY, provider_service
from meerkat import observability
from meerkat.observability import Observer, TurnProbe
from meerkat.observability.metrics import MAX_MODELS, PrometheusObserver


def sample(observer: PrometheusObserver, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(observer.render().decode()):
        for s in family.samples:
            if s.name == name and s.labels == labels:
                return s.value
    return 0.0


async def test_actors_live_then_hibernated(tmp_path):
    observer = observability.install(PrometheusObserver())
    try:
        async with running_service(tmp_path, "sqlite", idle_timeout=0.05) as service:
            created = await service.create_session("hello", model="mock")
            assert sample(observer, "rkat_session_actors", state="live") == 1
            with trio.fail_after(10):
                while sample(observer, "rkat_session_actors", state="live") != 0:
                    await trio.sleep(0.02)
            assert sample(observer, "rkat_session_actor_hibernations_total") == 1
            assert sample(observer, "rkat_session_actors", state="hibernated") == 1
            await service.read_session(created.session_id)  # wakes it from the store
            assert sample(observer, "rkat_session_actor_starts_total") == 2
            assert sample(observer, "rkat_session_actors", state="live") == 1
            assert sample(observer, "rkat_session_actors", state="hibernated") == 0
    finally:
        observability.uninstall(observer)


async def test_a_slow_subscriber_drops_events_and_they_are_counted(tmp_path):
    observer = observability.install(PrometheusObserver())
    try:
        async with running_service(tmp_path, "memory", subscriber_capacity=4) as service:
            created = await service.create_session("first", model="mock")
            subscription = await service.subscribe(created.session_id)
            assert sample(observer, "rkat_event_subscribers") == 1
            await service.start_turn(created.session_id, "many words", provider_params={"reply_words": 40})
            dropped = subscription.statistics().dropped
            assert dropped > 0 and sample(observer, "rkat_events_dropped_total") == dropped
            await subscription.aclose()
            assert sample(observer, "rkat_event_subscribers") == 0
    finally:
        observability.uninstall(observer)


def test_model_labels_are_bounded():
    observer = PrometheusObserver()
    names = [observer.model_label(f"model-{i}") for i in range(MAX_MODELS + 5)]
    assert names[:MAX_MODELS] == [f"model-{i}" for i in range(MAX_MODELS)]
    assert set(names[MAX_MODELS:]) == {"other"} and observer.model_label("model-0") == "model-0"


async def test_retries_and_provider_errors_by_class_through_a_real_client(tmp_path, monkeypatch):
    """The anthropic client against a fake vendor: a 429 and a 500 retried, then a 401 that fails the turn."""
    case = CASES["anthropic"]
    observer = observability.install(PrometheusObserver())
    try:
        retry = {**FAST_RETRY, "max_retries": 2}
        async with provider_service(case, tmp_path, monkeypatch, retry=retry) as (service, server):
            server.script(HttpError(429, "slow down", retry_after=0.01), HttpError(500, "boom"), Reply(text="made it"))
            created = await service.create_session("go", model=case.model)
            assert created.text == "made it"
            server.script(HttpError(401, "bad key"))
            with pytest.raises(ProviderError):
                await service.start_turn(created.session_id, "again")
    finally:
        observability.uninstall(observer)
    labels = {"provider": "anthropic"}
    assert sample(observer, "rkat_provider_retries_total", **labels, kind="rate_limited") == 1
    assert sample(observer, "rkat_provider_retries_total", **labels, kind="retryable_provider_error") == 1
    assert sample(observer, "rkat_provider_errors_total", **labels, error_class="llm_auth_error") == 1
    assert sample(observer, "rkat_model_calls_total", **labels, model=case.model) == 4  # 3 attempts, then 1
    assert sample(observer, "rkat_turns_ended_total", **labels, model=case.model, status="completed") == 1
    assert sample(observer, "rkat_turns_ended_total", **labels, model=case.model, status="failed") == 1
    assert sample(observer, "rkat_tokens_total", **labels, model=case.model, kind="output") > 0


class _FailingProbe(TurnProbe):
    def event(self, payload: object) -> None:
        raise RuntimeError("probe bug")


class _FailingProbes(Observer):
    def turn(self, info: object) -> TurnProbe:
        return _FailingProbe()


class _FailingHook(Observer):
    def store_operation(self, operation: str, seconds: float, ok: bool) -> None:
        raise RuntimeError("hook bug")


async def test_a_failing_observer_never_breaks_a_turn_or_the_others(tmp_path, caplog):
    metrics = observability.install(PrometheusObserver())
    probes = observability.install(_FailingProbes())
    hook = observability.install(_FailingHook())
    try:
        async with running_service(tmp_path, "sqlite") as service:
            result = await service.create_session("still works", model="mock")
            assert result.text == "Mock reply to: still works"
            assert hook not in observability.installed()  # its hook failed: taken out
            assert probes in observability.installed()  # a failing probe only stops watching its turn
            again = await service.start_turn(result.session_id, "and again")
            assert again.text == "Mock reply to: and again"
    finally:
        for observer in (metrics, probes, hook):
            observability.uninstall(observer)
    assert sample(metrics, "rkat_turns_ended_total", provider="mock", model="mock", status="completed") == 2
    assert sample(metrics, "rkat_model_calls_total", provider="mock", model="mock") == 2
    assert "probe bug" in caplog.text and "hook bug" in caplog.text


def test_hibernated_sessions_are_remembered_up_to_a_bound(monkeypatch):
    """A host that served many sessions keeps a bounded number of sleeping ids; the gauge stays exact within it."""
    from meerkat.observability import metrics

    monkeypatch.setattr(metrics, "MAX_ASLEEP_TRACKED", 3)
    observer = PrometheusObserver()
    ids = [f"s{i}" for i in range(5)]
    for session_id in ids:
        observer.actor_started(session_id)
        observer.actor_stopped(session_id, hibernated=True)
    assert len(observer._asleep) == 3  # s0 and s1 were forgotten
    assert sample(observer, "rkat_session_actors", state="hibernated") == 3
    assert sample(observer, "rkat_session_actor_hibernations_total") == 5
    observer.actor_started("s0")  # forgotten: waking it does not count down
    assert sample(observer, "rkat_session_actors", state="hibernated") == 3
    observer.actor_started("s4")
    assert sample(observer, "rkat_session_actors", state="hibernated") == 2
    assert sample(observer, "rkat_session_actors", state="live") == 2
    observer.actor_stopped("s4", hibernated=True)
    observer.actor_stopped("s0", hibernated=True)
    assert list(observer._asleep) == ["s3", "s4", "s0"]  # s2, asleep longest, is forgotten
    assert sample(observer, "rkat_session_actors", state="hibernated") == 3
