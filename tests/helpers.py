"""Helpers shared by the tests."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import AsyncIterator

from actors import HostOptions, SessionService, open_service


@asynccontextmanager
async def running_service(tmp_path, backend: str, realm_id: str = "test-realm", **options) -> AsyncIterator[SessionService]:
    """A service on ``backend`` rooted in ``tmp_path``."""
    async with open_service(realm_id, state_root=tmp_path, backend=backend,
                            options=HostOptions(**options) if options else None) as service:
        yield service
