"""The Prometheus observer in-process: actor lifecycle, dropped events, label bounds."""

from __future__ import annotations

import trio
from prometheus_client.parser import text_string_to_metric_families

from helpers import running_service
from meerkat import observability
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
            await service.read_session(created.session_id)  # wakes it from the store
            assert sample(observer, "rkat_session_actor_starts_total") == 2
            assert sample(observer, "rkat_session_actors", state="live") == 1
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
