"""Shared fixtures: a running SessionService on each backend, on a temp state root."""

from __future__ import annotations

from typing import AsyncIterator

import pytest

from actors import SessionService
from helpers import running_service

BACKENDS = ["memory", "sqlite", "jsonl"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    """Each store backend in turn."""
    return request.param


@pytest.fixture
async def service(tmp_path, backend) -> AsyncIterator[SessionService]:
    """A service on each backend."""
    async with running_service(tmp_path, backend) as svc:
        yield svc
