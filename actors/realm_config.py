"""Config generations of a realm supervisor: the current config, re-read when another process changes it.

A mixin of :class:`actors.realm.RealmSupervisor`. Writes go through the
supervisor's mailbox one at a time (one writer per process; the config store's
file lock makes ``expected_generation`` a compare-and-swap across processes).
Other processes' writes are noticed by the state file's stat: before a session or
turn uses the config, and every ``config_poll_interval`` in the background. A
``postgres`` realm's config lives in the database, where no stat is cheap: it
is re-read every ``config_poll_interval`` in a worker thread, at once when the
coordinator hears that another host wrote it, and before a new session is made.
"""

from __future__ import annotations

import logging
import os
from functools import partial
from typing import Any, Callable, TypeVar

import trio

from meerkat.config import Config, ConfigEnvelope, ConfigStore
from meerkat.errors import MeerkatError, StoreError
from meerkat.realm import RealmHandle

from .coordination import Coordinator
from .messages import PatchConfig, SetConfig
from .options import HostOptions

__all__ = ["ConfigGenerations"]

log = logging.getLogger("rkat.realm")
T = TypeVar("T")


class ConfigGenerations:
    """Mixin: the realm's config as this process knows it."""

    # State the supervisor provides (see RealmSupervisor.__init__).
    realm: RealmHandle
    config_store: ConfigStore
    options: HostOptions
    shared: bool
    coordinator: Coordinator
    _config: ConfigEnvelope | None = None
    _config_stamp: tuple[int, int, int] | None = None
    _config_poke: trio.Event | None = None

    @property
    def _config_in_files(self) -> bool:
        """Whether the config is the realm's files (a ``stat`` tells of other processes' writes)."""
        return self.realm.backend not in ("memory", "postgres")

    def notice_config_change(self) -> None:
        """Another process wrote the config: re-read it now (in the background)."""
        if self._config_poke is not None:
            self._config_poke.set()

    def current_config(self) -> Config:
        """The realm config, re-read first if another process changed it since (one ``stat`` tells).

        The re-read happens on the event loop: a small file, read only right
        after a change, so the next turn or session uses the new config at once.
        """
        assert self._config is not None
        if self.shared:
            stamp = self._stamp()
            if stamp != self._config_stamp:
                try:
                    self._config, self._config_stamp = self.config_store.get(), stamp
                except MeerkatError as exc:
                    log.warning("could not reload config: %s", exc)
        return self._config.config

    async def config_for_new_session(self) -> Config:
        """The config a new session starts from: as of now, even when another host just wrote it.

        Files tell with a ``stat`` (:meth:`current_config`); a database has no cheap
        stat, so the config is read again, in a worker thread (one query per new session).
        """
        if self.realm.backend == "postgres":
            try:
                return (await self._refresh_config()).config
            except MeerkatError as exc:
                log.warning("could not reload config: %s", exc)
        return self.current_config()

    def _stamp(self) -> tuple[int, int, int] | None:
        if not self._config_in_files:
            return None
        try:
            # Writes replace the file (a new inode), so equal stamps mean no write since.
            st = os.stat(self.realm.paths.root / "config_state.json")
            return (st.st_ino, st.st_mtime_ns, st.st_size)
        except OSError:
            return (0, 0, 0)

    async def _refresh_config(self) -> ConfigEnvelope:
        stamp = self._stamp()
        envelope = await self._config_io(self.config_store.get)
        self._config, self._config_stamp = envelope, stamp
        return envelope

    async def _watch_config(self) -> None:
        self._config_poke = trio.Event()
        while True:
            with trio.move_on_after(self.options.config_poll_interval):
                await self._config_poke.wait()
            self._config_poke = trio.Event()  # a write noticed from now on gets its own re-read
            if not self._config_in_files or self._stamp() != self._config_stamp:
                try:
                    await self._refresh_config()
                except MeerkatError as exc:
                    log.warning("could not reload config: %s", exc)

    async def _config_io(self, fn: Callable[..., T], *args: Any) -> T:
        if self.realm.backend == "memory":
            return fn(*args)
        return await trio.to_thread.run_sync(partial(fn, *args))

    async def _write_config(self, message: SetConfig | PatchConfig) -> None:
        try:
            if isinstance(message, SetConfig):
                envelope = await self._config_io(self.config_store.set, message.config, message.expected_generation)
            else:
                envelope = await self._config_io(self.config_store.patch, message.patch, message.expected_generation)
            # No stamp: another process may write between our write and a stat, and a stamp of
            # its file would pass our envelope off as current. The next use re-reads once.
            self._config, self._config_stamp = envelope, None
            try:  # before answering: the writer's next request may go to another host
                await self.coordinator.config_written()
            except Exception:  # the write stands; others see it at their next poll
                log.exception("could not announce a config write")
            message.reply.send(envelope)
        except MeerkatError as exc:
            message.reply.fail(exc)
        except Exception as exc:
            log.exception("config write failed")
            message.reply.fail(StoreError(f"config write failed: {exc}"))
