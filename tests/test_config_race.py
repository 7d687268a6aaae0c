"""OS processes patching one realm config (files, or PostgreSQL as separate hosts): the generation CAS loses no update."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from meerkat.config import ConfigEnvelope, FileConfigStore

PATCHES_PER_PROCESS = 100
REPO_ROOT = Path(__file__).resolve().parents[1]

# Each worker waits for a "go" file so both really run at once, then does a
# read-modify-write cycle per key: get, think briefly, patch with
# expected_generation, and on a conflict read again and retry. It prints how many
# conflicts it saw (informational: the interleaving is up to the scheduler).
WORKER = textwrap.dedent(
    """
    import random, sys, time
    from pathlib import Path
    from meerkat.config import FileConfigStore
    from meerkat.errors import ConfigGenerationConflict

    realm, proc, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
    deadline = time.monotonic() + 20
    while not go.exists():
        if time.monotonic() > deadline:
            sys.exit("never got the go signal")
        time.sleep(0.001)
    if str(sys.argv[1]).startswith("postgresql://"):  # a realm in PostgreSQL: each worker is a host
        from meerkat.config.postgres_store import PostgresConfigStore
        from meerkat.store.postgres_db import PostgresDatabase
        store = PostgresConfigStore(PostgresDatabase(sys.argv[1]), realm_id="race")
    else:
        store = FileConfigStore(realm)
    conflicts = 0
    for i in range(count):
        while True:
            current = store.get().generation
            time.sleep(random.random() / 1000)  # think time: widens the read-modify-write window
            try:
                store.patch({"agent": {"provider_params": {f"p{proc}_{i}": i}}}, expected_generation=current)
                break
            except ConfigGenerationConflict:
                conflicts += 1
    print(conflicts)
    """
)


def race(realm: str, go: Path, processes: int) -> None:
    """Start ``processes`` workers on one realm at once and wait for them all."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))}
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, realm, str(proc), str(PATCHES_PER_PROCESS), str(go)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for proc in range(processes)
    ]
    time.sleep(0.3 * processes)  # let the interpreters finish importing before the start signal
    go.touch()
    for worker in workers:
        out, err = worker.communicate(timeout=120)
        assert worker.returncode == 0, err
        assert int(out.strip()) >= 0


def check_final(final: ConfigEnvelope, processes: int) -> None:
    assert final.generation == processes * PATCHES_PER_PROCESS
    expected = {f"p{proc}_{i}": i for proc in range(processes) for i in range(PATCHES_PER_PROCESS)}
    assert final.config.agent.provider_params == expected


def test_two_processes_lose_no_update(tmp_path: Path) -> None:
    realm = tmp_path / "realm"
    race(str(realm), tmp_path / "go", 2)
    check_final(FileConfigStore(realm).get(), 2)


def test_four_hosts_on_one_postgres_realm_lose_no_update(tmp_path: Path, postgres_url: str) -> None:
    from meerkat.config.postgres_store import PostgresConfigStore
    from meerkat.store.postgres_db import PostgresDatabase

    race(postgres_url, tmp_path / "go", 4)
    database = PostgresDatabase(postgres_url)
    try:
        check_final(PostgresConfigStore(database, realm_id="race").get(), 4)
        # Another realm in the same database is untouched.
        assert PostgresConfigStore(database, realm_id="other").get().generation == 0
    finally:
        database.close()
