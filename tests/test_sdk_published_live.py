"""The published ``meerkat-sdk`` 0.9.6, unchanged, against our ``rkat-rpc``: its live-session API.

Subscriptions (also to turns of another process), the durable event log and its
cursors (after a restart; a pruned cursor is the typed stale-cursor error),
run-fenced stop (also across processes), injected context and additional
instructions reaching the model, external events and the bounded inbox,
discovery, archived history. The scenarios run in one driver process
(``sdk_drivers/published_live.py``) and each is reported here as its own test.
"""

from __future__ import annotations

import json
import os
import subprocess

import pytest

from rpc_process import RKAT_RPC, write_wrapper
from test_sdk_published import DRIVERS, ensure_sdk_venv

SCENARIOS = 10


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[int, dict]:
    python = ensure_sdk_venv()
    work = tmp_path_factory.mktemp("published_live")
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL") and k != "MEERKAT_BIN_PATH"}
    env.update({
        "WORK": str(work),
        "REAL_BIN": RKAT_RPC,
        "PROXY_TARGET": RKAT_RPC,
        "PROXY_BIN": str(write_wrapper(work / "bin" / "proxy", DRIVERS / "recording_proxy.py")),
        "RKAT_STATE_ROOT": str(work / "fresh-realms"),
        "HOME": str(work / "home"),
    })
    done = subprocess.run([str(python), str(DRIVERS / "published_live.py")], capture_output=True,
                          text=True, env=env, cwd=work, timeout=540)
    results = {}
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        results[entry["scenario"]] = entry
    assert len(results) == SCENARIOS, f"driver exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    return results


@pytest.mark.parametrize("scenario", range(1, SCENARIOS + 1))
def test_published_sdk_live_scenario(report, scenario):
    entry = report[scenario]
    assert entry["ok"], f"scenario {scenario} ({entry['name']}) failed:\n{entry.get('error')}"
