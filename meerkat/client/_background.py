"""A task group that outlives the task that opened it.

A client is opened by ``await client.connect()`` and closed by ``await
client.close()``, maybe in different tasks and under different cancel scopes,
so its reader tasks cannot live in a task group of the caller's. They live in
one detached task instead: a trio system task, or an asyncio task, hosting an
anyio task group until :meth:`Background.aclose`. Everything started here is
guarded: an exception is logged and reported, never let loose in the host
program's event loop.
"""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable, Coroutine

import anyio
import sniffio

__all__ = ["Background"]

log = logging.getLogger("meerkat.client")

_asyncio_tasks: set[Any] = set()  # strong references: asyncio keeps only weak ones


def _spawn_detached(fn: Callable[[], Coroutine[Any, Any, None]]) -> None:
    if sniffio.current_async_library() == "trio":
        import trio

        trio.lowlevel.spawn_system_task(fn, name="meerkat.client background")
    else:
        import asyncio

        task: asyncio.Task[None] = asyncio.get_running_loop().create_task(fn())
        _asyncio_tasks.add(task)
        task.add_done_callback(_asyncio_tasks.discard)


class Background:
    """Start with :meth:`open`; :meth:`start_soon` runs guarded tasks until :meth:`aclose`."""

    def __init__(self) -> None:
        self._group: anyio.abc.TaskGroup | None = None
        self._ready = anyio.Event()
        self._stop = anyio.Event()
        self._stopped = anyio.Event()

    @classmethod
    async def open(cls) -> "Background":
        """A running background group."""
        self = cls()
        _spawn_detached(self._host)
        await self._ready.wait()
        return self

    async def _host(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                self._group = group
                self._ready.set()
                await self._stop.wait()
                group.cancel_scope.cancel()
        except Exception:  # pragma: no cover - every child is guarded
            log.exception("meerkat client background group failed")
        finally:
            self._group = None
            self._ready.set()
            self._stopped.set()

    def start_soon(self, fn: Callable[..., Awaitable[Any]], *args: Any,
                   on_error: Callable[[BaseException], None] | None = None) -> None:
        """Run ``fn(*args)`` in the background; an exception goes to ``on_error`` (or the log)."""
        if self._group is None:
            return

        async def guarded() -> None:
            try:
                await fn(*args)
            except Exception as exc:
                if on_error is not None:
                    on_error(exc)
                else:
                    log.exception("meerkat client background task failed")

        self._group.start_soon(guarded)

    async def aclose(self) -> None:
        """Cancel every background task and wait until they have ended."""
        self._stop.set()
        with anyio.CancelScope(shield=True):
            await self._stopped.wait()
