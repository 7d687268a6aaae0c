"""The published ``meerkat-sdk`` 0.9.6, unchanged, against our ``rkat-rpc``: its history API.

Forks (the fork's history is exactly the prefix; a turn on the fork leaves the
source unchanged), transcript rewrites and revisions (rewrite then restore gives
back the original rows), keyed system-prompt updates (the system prompt a fake
Anthropic server receives changes from the next call), instruction activations,
ATIF export, forks and rewrites seen by another process, busy sources. The
scenarios run in one driver process (``sdk_drivers/published_history.py``) and
each is reported here as its own test.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fake_vendor import vendor_env
from test_sdk_published import run_published_driver

SCENARIOS = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[int, dict]:
    work = tmp_path_factory.mktemp("published_history")
    vendor_log = work / "vendor.jsonl"
    vendor = subprocess.Popen([sys.executable, "-m", "meerkat.testing", "--port", "0", "--reply", "Fake answer.",
                               "--record-to", str(vendor_log)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = vendor.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), vendor.stderr.read()
        return run_published_driver("published_history.py", work, SCENARIOS, {
            "VENDOR_LOG": str(vendor_log),
            "VENDOR_ENV": json.dumps(vendor_env(url)),
        })
    finally:
        vendor.terminate()
        vendor.wait(timeout=30)
        vendor.stdout.close()
        vendor.stderr.close()


@pytest.mark.parametrize("scenario", range(1, SCENARIOS + 1))
def test_published_sdk_history_scenario(report, scenario):
    entry = report[scenario]
    assert entry["ok"], f"scenario {scenario} ({entry['name']}) failed:\n{entry.get('error')}"
