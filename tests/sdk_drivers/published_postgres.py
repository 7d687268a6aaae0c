"""The published ``meerkat-sdk`` 0.9.6's multi-process scenarios on a PostgreSQL realm.

Run by ``tests/test_sdk_published_postgres.py`` with the interpreter of ``.venv-sdk``
and ``RKAT_DATABASE_URL`` in the environment (never on a command line: the SDK's
``connect()`` has no such argument, and its child inherits the environment). Each
rkat-rpc the SDK starts is a host of its own (``RKAT_HOST_ID``), so the processes
know each other only through the database: a subscription follows another host's
turn, the event log answers on any host (also after a restart), ``stop_run``
reaches the owning host, forks and rewrites are seen everywhere.
"""

import itertools
import os

os.environ["DRIVER_REALM_BACKEND"] = "postgres"

from meerkat import MeerkatClient  # noqa: E402
from published_common import run_scenarios  # noqa: E402
from published_history import h7_other_processes_see_forks_and_rewrites  # noqa: E402
from published_live import (l2_subscription_follows_another_process,  # noqa: E402
                            l3_event_log_cursors_survive_restart, l6_stop_run_across_processes)

_hosts = itertools.count(1)
_connect = MeerkatClient.connect


async def _connect_as_a_host_of_its_own(self, **kwargs):
    # The SDK starts rkat-rpc with this process's environment: a new host id per child.
    os.environ["RKAT_HOST_ID"] = f"sdk-host-{next(_hosts)}"
    return await _connect(self, **kwargs)


MeerkatClient.connect = _connect_as_a_host_of_its_own

SCENARIOS = [l2_subscription_follows_another_process, l3_event_log_cursors_survive_restart,
             l6_stop_run_across_processes, h7_other_processes_see_forks_and_rewrites]


if __name__ == "__main__":
    run_scenarios(SCENARIOS)
