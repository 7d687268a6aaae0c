"""The published ``meerkat-sdk`` 0.9.6, unchanged, on a PostgreSQL realm: the URL in ``RKAT_DATABASE_URL``,
each rkat-rpc a host of its own (``sdk_drivers/published_postgres.py``): following another host's turn,
the event log after a restart, ``stop_run`` across hosts, forks and rewrites seen everywhere."""

from __future__ import annotations

import psycopg
import pytest

from test_sdk_published import run_published_driver

SCENARIOS = 4


@pytest.fixture(scope="module")
def report(tmp_path_factory, postgres_server) -> dict[int, dict]:
    url = postgres_server.create_database()
    try:
        report = run_published_driver("published_postgres.py", tmp_path_factory.mktemp("published_postgres"),
                                      SCENARIOS, {"RKAT_DATABASE_URL": url})
        with psycopg.connect(url) as conn:  # the realms live in the database, not in files
            realms = {row[0] for row in conn.execute("SELECT realm_id FROM rkat.realms")}
        assert realms == {"l2", "l3", "l6", "h7"}, realms
        return report
    finally:
        postgres_server.drop_database(url.rsplit("/", 1)[1])


@pytest.mark.parametrize("scenario", range(1, SCENARIOS + 1))
def test_published_sdk_on_a_postgres_realm(report, scenario):
    entry = report[scenario]
    assert entry["ok"], f"scenario {scenario} ({entry['name']}) failed:\n{entry.get('error')}"
