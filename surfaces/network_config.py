"""Config writes from network surfaces (REST, MCP): the key-redirect check and the write as one step.

:func:`meerkat.config.endpoints.refuse_key_redirects` judges a write against the
config it replaces. Reading the config, checking, then writing leaves a gap: a write
landing in between (the operator moving a provider off an endpoint, another client
removing a base URL) changes what the checked write replaces, and the network write
would then put back an endpoint nobody allowed. So the write is a compare-and-swap on
the generation that was checked; when another write wins the race the check runs again
on the new config (a client that named its own ``expected_generation`` gets the
conflict instead, as it asked).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from meerkat.config.endpoints import refuse_key_redirects
from meerkat.errors import ConfigGenerationConflict

if TYPE_CHECKING:
    from actors import SessionService
    from actors.service import ConfigView

__all__ = ["write_config_checked", "MAX_ATTEMPTS"]

#: Checked writes tried before a conflict is reported (each lost race means another write landed).
MAX_ATTEMPTS = 8


async def write_config_checked(service: "SessionService", document: Any, *, patch: bool,
                               expected_generation: int | None, surface: str) -> "ConfigView":
    """Set (or merge-``patch``) the config from a network ``surface``, refusing key redirects.

    The redirect check sees exactly the generation the write replaces.
    """
    for attempt in range(1, MAX_ATTEMPTS + 1):
        current = await service.get_config()
        if expected_generation is not None and expected_generation != current.generation:
            raise ConfigGenerationConflict(expected_generation, current.generation)
        refuse_key_redirects(current.config, document, patch=patch, surface=surface)
        write = service.patch_config if patch else service.set_config
        try:
            return await write(document, expected_generation=current.generation)
        except ConfigGenerationConflict:
            if expected_generation is not None or attempt == MAX_ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")
