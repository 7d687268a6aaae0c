"""Shared fixtures: a running SessionService on each backend, on a temp state root; a real PostgreSQL server."""

from __future__ import annotations

from contextlib import ExitStack
from typing import AsyncIterator, Iterator

import pytest

from actors import SessionService
from helpers import running_service
from meerkat.testing.postgres import PostgresServer, PostgresUnavailable, running_postgres
from meerkat.testing.postgres_spares import SpareDatabases

BACKENDS = ["memory", "sqlite", "jsonl", "postgres"]


@pytest.fixture(params=BACKENDS)
def backend(request, monkeypatch) -> str:
    """Each store backend in turn; ``postgres`` on a fresh database of the test server (``$RKAT_DATABASE_URL``)."""
    if request.param == "postgres":
        monkeypatch.setenv("RKAT_DATABASE_URL", request.getfixturevalue("postgres_migrated_url"))
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


@pytest.fixture(scope="session")
def postgres_spares(postgres_server: PostgresServer) -> Iterator[SpareDatabases]:
    """Empty databases made ahead of the tests that need one (CREATE DATABASE takes ~0.25 s)."""
    spares = SpareDatabases(postgres_server)
    yield spares
    spares.close()


@pytest.fixture
def postgres_url(postgres_server: PostgresServer, postgres_spares: SpareDatabases) -> Iterator[str]:
    """The URL (with the password) of a fresh, empty database of its own for this test, dropped after it."""
    name = postgres_spares.take()
    yield postgres_server.url(name)
    postgres_spares.give_back(name)


@pytest.fixture(scope="session")
def postgres_migrated_spares(postgres_server: PostgresServer) -> Iterator[SpareDatabases]:
    """Databases copied from one whose ``rkat`` schema the store already migrated (saves ~0.15 s a test)."""
    from meerkat.store.postgres import PostgresStore

    PostgresStore(postgres_server.create_database("rkat_migrated"), realm_id="template").close()
    spares = SpareDatabases(postgres_server, template="rkat_migrated", prefix="test_migrated_")
    yield spares
    spares.close()


@pytest.fixture
def postgres_migrated_url(postgres_server: PostgresServer, postgres_migrated_spares: SpareDatabases) -> Iterator[str]:
    """Like ``postgres_url``, with the store's schema already in place: for tests of what the store does,
    not of how it migrates (those take ``postgres_url``)."""
    name = postgres_migrated_spares.take()
    yield postgres_server.url(name)
    postgres_migrated_spares.give_back(name)
