"""The published ``meerkat-sdk`` 0.9.6, unchanged, against our ``rkat-rpc``: the 21 scenarios of rpc-wire.md.

Then, as users' code would, the rest of what the SDK can ask this host: every
create/turn option, ``match`` on typed events, ``collect()``, deferred sessions,
paging past the end, stale config writes, a hung and a huge callback tool,
``connect(context_root=...)``. The last scenario checks everything the server
wrote in all the others against the SDK's strict parsers.

The published package is also named ``meerkat``, so it lives in its own
virtualenv, ``.venv-sdk`` (``make test`` creates it; so does this module if it is
missing). The scenarios run in one driver process (``sdk_drivers/published_conformance.py``)
and each is reported here as its own test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rpc_process import RKAT_RPC, write_wrapper

ROOT = Path(__file__).resolve().parent.parent
DRIVERS = Path(__file__).resolve().parent / "sdk_drivers"
SDK_VENV = ROOT / ".venv-sdk"
SDK_PYTHON = SDK_VENV / "bin" / "python"
PUBLISHED = "meerkat-sdk==0.9.6"
SCENARIOS = 25  # the 21 of rpc-wire.md, then four of the SDK surface users touch beyond them


def ensure_sdk_venv() -> Path:
    """``.venv-sdk`` with the published SDK (the same steps as the Makefile's rule)."""
    probe = [str(SDK_PYTHON), "-c", "import importlib.metadata as m; print(m.version('meerkat-sdk'))"]
    if SDK_PYTHON.exists():
        done = subprocess.run(probe, capture_output=True, text=True, cwd="/")
        if done.returncode == 0 and done.stdout.strip() == "0.9.6":
            return SDK_PYTHON
    subprocess.run([sys.executable, "-m", "venv", str(SDK_VENV)], check=True)
    subprocess.run([str(SDK_PYTHON), "-m", "pip", "install", "--quiet", PUBLISHED], check=True)
    return SDK_PYTHON


def run_published_driver(driver: str, work: Path, scenarios: int, extra_env: dict[str, str] | None = None
                         ) -> dict[int, dict]:
    """Run ``sdk_drivers/<driver>`` with the published SDK against our rkat-rpc; its report by scenario.

    The driver sees no provider keys or base URLs of ours, an empty HOME and a fresh
    state root, and finds rkat-rpc through ``REAL_BIN`` / ``PROXY_BIN`` (a recording proxy).
    """
    python = ensure_sdk_venv()
    env = {k: v for k, v in os.environ.items()
           if not k.endswith("_API_KEY") and not k.endswith("_BASE_URL") and k != "MEERKAT_BIN_PATH"}
    env.update({
        "WORK": str(work),
        "REAL_BIN": RKAT_RPC,
        "PROXY_TARGET": RKAT_RPC,
        "PROXY_BIN": str(write_wrapper(work / "bin" / "proxy", DRIVERS / "recording_proxy.py")),
        "RKAT_STATE_ROOT": str(work / "fresh-realms"),
        "HOME": str(work / "home"),  # an empty home: nothing cached, so a download attempt would show
    })
    env.update(extra_env or {})
    done = subprocess.run([str(python), str(DRIVERS / driver)], capture_output=True,
                          text=True, env=env, cwd=work, timeout=540)
    results = {}
    for line in done.stdout.splitlines():
        entry = json.loads(line)
        results[entry["scenario"]] = entry
    assert len(results) == scenarios, f"driver exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    return results


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> dict[int, dict]:
    work = tmp_path_factory.mktemp("published")
    return run_published_driver("published_conformance.py", work, SCENARIOS, {
        "STUB_BIN": str(write_wrapper(work / "bin" / "stub", DRIVERS / "stub_rpc.py")),
        "PATH": "/usr/local/bin:/usr/bin:/bin",  # our venv is not on PATH unless a scenario puts it there
    })


@pytest.mark.parametrize("scenario", range(1, SCENARIOS + 1))
def test_published_sdk_scenario(report, scenario):
    entry = report[scenario]
    assert entry["ok"], f"scenario {scenario} ({entry['name']}) failed:\n{entry.get('error')}"
