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
import os
import subprocess

import pytest

from fake_vendor import vendor_env
from rpc_process import RKAT_RPC, write_wrapper
from test_sdk_published import DRIVERS, ensure_sdk_venv

SCENARIOS = 8


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[int, dict]:
    import sys

    python = ensure_sdk_venv()
    work = tmp_path_factory.mktemp("published_history")
    vendor_log = work / "vendor.jsonl"
    vendor = subprocess.Popen([sys.executable, "-m", "meerkat.testing", "--port", "0", "--reply", "Fake answer.",
                               "--record-to", str(vendor_log)], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
    try:
        url = vendor.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), vendor.stderr.read()
        env = {k: v for k, v in os.environ.items()
               if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL") and k != "MEERKAT_BIN_PATH"}
        env.update({
            "WORK": str(work),
            "REAL_BIN": RKAT_RPC,
            "PROXY_TARGET": RKAT_RPC,
            "PROXY_BIN": str(write_wrapper(work / "bin" / "proxy", DRIVERS / "recording_proxy.py")),
            "RKAT_STATE_ROOT": str(work / "fresh-realms"),
            "HOME": str(work / "home"),
            "VENDOR_LOG": str(vendor_log),
            "VENDOR_ENV": json.dumps(vendor_env(url)),
        })
        done = subprocess.run([str(python), str(DRIVERS / "published_history.py")], capture_output=True,
                              text=True, env=env, cwd=work, timeout=540)
    finally:
        vendor.terminate()
        vendor.wait(timeout=30)
        vendor.stdout.close()
        vendor.stderr.close()
    results = {}
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        results[entry["scenario"]] = entry
    assert len(results) == SCENARIOS, f"driver exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    return results


@pytest.mark.parametrize("scenario", range(1, SCENARIOS + 1))
def test_published_sdk_history_scenario(report, scenario):
    entry = report[scenario]
    assert entry["ok"], f"scenario {scenario} ({entry['name']}) failed:\n{entry.get('error')}"
