"""Shared fixtures: a running SessionService on each backend, on a temp state root; a real PostgreSQL server."""

from __future__ import annotations

import secrets
from contextlib import ExitStack
from typing import AsyncIterator, Iterator

import pytest

from actors import SessionService
from helpers import running_service
from meerkat.testing.postgres import PostgresServer, PostgresUnavailable, running_postgres

BACKENDS = ["memory", "sqlite", "jsonl", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    """Each store backend in turn; ``postgres`` on a fresh database of the test server (``$RKAT_DATABASE_URL``)."""
    if request.param == "postgres":
        monkeypatch.setenv("RKAT_DATABASE_URL", request.getfixturevalue("postgres_url"))
    return request.param


@pytest.fixture
async def service(tmp_path, backend) -> AsyncIterator[SessionService]:
    """A service on each backend."""
    async with running_service(tmp_path, backend) as svc:
        yield svc


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the test session, started when the first test asks for it.

    Never skipped: a machine without PostgreSQL fails these tests, saying how to get it.
    """
    with ExitStack() as stack:
        try:
            server = stack.enter_context(running_postgres())
        except PostgresUnavailable as exc:
            pytest.fail(f"cannot start the test PostgreSQL server: {exc}", pytrace=False)
        yield server


@pytest.fixture
def postgres_url(postgres_server: PostgresServer) -> Iterator[str]:
    """The URL (with the password) of a fresh, empty database of its own for this test, dropped after it."""
    name = f"test_{secrets.token_hex(6)}"
    url = postgres_server.create_database(name)
    yield url
    postgres_server.drop_database(name)
