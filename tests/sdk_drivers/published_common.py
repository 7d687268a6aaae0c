"""What the published-SDK drivers (``published_*.py``) share: their environment, clients, checks and main loop.

Each driver runs with the interpreter of ``.venv-sdk`` (this directory is first on
its ``sys.path``) and prints one JSON line per scenario, which its pytest module
reports as one test each. Environment: ``WORK`` (scratch), ``REAL_BIN`` (our
rkat-rpc), ``PROXY_BIN`` (the recording proxy in front of it).
"""

import asyncio
import json
import os
import sys
import traceback
from pathlib import Path

from meerkat import MeerkatClient, MeerkatError

WORK = Path(os.environ["WORK"])
REAL_BIN, PROXY_BIN = os.environ["REAL_BIN"], os.environ["PROXY_BIN"]
#: The recording proxy's log of every scenario that went through it.
LOGS = []


def realm(name, backend="sqlite"):
    """``connect()`` arguments for realm ``name`` under the scratch state root.

    ``DRIVER_REALM_BACKEND`` overrides the backend (``published_postgres.py`` runs
    the multi-process scenarios on a postgres realm, its URL in ``RKAT_DATABASE_URL``).
    """
    backend = os.environ.get("DRIVER_REALM_BACKEND", backend)
    return {"realm_id": name, "realm_backend": backend, "state_root": str(WORK / "state")}


def client():
    """A client that spawns our rkat-rpc directly."""
    return MeerkatClient(rkat_path=REAL_BIN)


def proxied(name):
    """A client whose rkat-rpc runs behind the recording proxy, logging to ``WORK/<name>.jsonl``."""
    log = WORK / f"{name}.jsonl"
    os.environ["PROXY_LOG"] = str(log)
    LOGS.append(log)
    return MeerkatClient(rkat_path=PROXY_BIN)


async def raises(code, awaitable):
    """Await ``awaitable``; it must fail with a MeerkatError of ``code`` (e.g. "-32602"), which is returned."""
    try:
        await awaitable
    except MeerkatError as exc:
        assert str(exc.code) == code, (exc.code, exc)
        return exc
    raise AssertionError(f"expected MeerkatError {code}")


async def _run_all(scenarios, timeout):
    for number, scenario in enumerate(scenarios, start=1):
        try:
            await asyncio.wait_for(scenario(), timeout=timeout)
        except BaseException as exc:  # report and go on: one line per scenario either way
            detail = "".join(traceback.format_exception(exc))[-3000:]
            print(json.dumps({"scenario": number, "name": scenario.__name__, "ok": False, "error": detail}),
                  flush=True)
        else:
            print(json.dumps({"scenario": number, "name": scenario.__name__, "ok": True}), flush=True)


def run_scenarios(scenarios, timeout=60):
    """Run each scenario in order (``timeout`` seconds each), print its JSON line, and exit 0."""
    asyncio.run(_run_all(scenarios, timeout))
    sys.exit(0)
