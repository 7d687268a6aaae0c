"""The published ``meerkat-sdk`` 0.9.6, unchanged, against our ``rkat-rpc``: its live-session API.

Subscriptions (also to turns of another process), the durable event log and its
cursors (after a restart; a pruned cursor is the typed stale-cursor error),
run-fenced stop (also across processes), injected context and additional
instructions reaching the model, external events and the bounded inbox,
discovery, archived history. The scenarios run in one driver process
(``sdk_drivers/published_live.py``) and each is reported here as its own test.
"""

from __future__ import annotations

import pytest

from test_sdk_published import run_published_driver

SCENARIOS = 10


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[int, dict]:
    return run_published_driver("published_live.py", tmp_path_factory.mktemp("published_live"), SCENARIOS)


@pytest.mark.parametrize("scenario", range(1, SCENARIOS + 1))
def test_published_sdk_live_scenario(report, scenario):
    entry = report[scenario]
    assert entry["ok"], f"scenario {scenario} ({entry['name']}) failed:\n{entry.get('error')}"
