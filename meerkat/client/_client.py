"""MeerkatClient: drive an ``rkat-rpc`` child from Python, under asyncio or trio.

::

    async with MeerkatClient() as client:
        session = await client.create_session("What is the capital of France?")
        print(session.text)
        result = await session.turn("Now explain it in more detail")

``connect()`` starts ``rkat-rpc`` (found on ``PATH``, via ``$MEERKAT_BIN_PATH`` or
``rkat_path``; never downloaded) with the realm options given, checks its contract
version and registers the tools declared so far. ``close()`` ends it.
"""

from __future__ import annotations

import logging
import os
import re

import anyio
from typing import Any, Callable

from meerkat.dburl import DATABASE_URL_ENV
from meerkat.errors import ErrorCode, InvalidParams, MeerkatError, error_from_code
from meerkat.views import HistoryPage, RunResult

from ._history import HistoryCalls
from ._live import LiveCalls
from ._binary import DEFAULT_BINARY, find_rkat_rpc
from ._errors import ClientClosed, ConnectTimeout, ProtocolError, VersionMismatch
from ._session import Session
from ._stream import EventStream
from ._tools import CallbackTools, Handler
from ._transport import Connection
from ._types import Capability, SessionDetails, SessionInfo, decode, decode_run_result

__all__ = ["MeerkatClient", "CONTRACT_VERSION", "connect_argv"]

log = logging.getLogger("meerkat.client")

#: The contract this SDK speaks; any server reporting 0.9.x is accepted.
CONTRACT_VERSION = "0.9.6"

#: Options of a new session or a turn, and the wire fields they become.
_TURN_OPTIONS = ("model", "provider", "system_prompt", "max_tokens", "provider_params", "additional_instructions")
_CREATE_OPTIONS = _TURN_OPTIONS + ("labels", "budget_max_tokens")


def connect_argv(*, realm_id: str | None = None, instance_id: str | None = None, realm_backend: str | None = None,
                 isolated: bool = False, state_root: str | os.PathLike[str] | None = None,
                 context_root: str | os.PathLike[str] | None = None,
                 user_config_root: str | os.PathLike[str] | None = None) -> list[str]:
    """``rkat-rpc`` arguments for these realm options, in the published SDK's order."""
    if realm_id and isolated:
        raise InvalidParams("realm_id and isolated=True cannot be used together")
    argv: list[str] = []
    if isolated:
        argv.append("--isolated")
    for flag, value in (("--realm", realm_id), ("--instance", instance_id), ("--realm-backend", realm_backend),
                        ("--state-root", state_root), ("--context-root", context_root),
                        ("--user-config-root", user_config_root)):
        if value:
            argv += [flag, os.fspath(value)]
    return argv


def _compatible(version: Any) -> bool:
    if not isinstance(version, str):
        return False
    core = re.split(r"[-+]", version, maxsplit=1)[0]
    try:
        parts = [int(p) for p in core.split(".")]
    except ValueError:
        return False
    return len(parts) >= 2 and parts[0] == 0 and parts[1] == 9


def _options(allowed: tuple[str, ...], options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise TypeError(f"unexpected option(s) {', '.join(unknown)}; accepted: {', '.join(allowed)}")
    return {k: v for k, v in options.items() if v is not None}


#: Seconds to wait for ``rkat-rpc`` to start and answer the handshake.
DEFAULT_CONNECT_TIMEOUT = 30.0


class MeerkatClient(HistoryCalls, LiveCalls):
    """A connection to one realm served by an ``rkat-rpc`` child process."""

    def __init__(self, rkat_path: str = DEFAULT_BINARY, *, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT) -> None:
        if not connect_timeout > 0:
            raise InvalidParams(f"connect_timeout must be > 0 seconds, got {connect_timeout!r}")
        self._rkat_path = rkat_path
        #: Seconds ``connect()`` waits for the server's handshake before giving up.
        self.connect_timeout = connect_timeout
        self._tools = CallbackTools()
        self._conn: Connection | None = None
        self.capabilities: list[Capability] = []
        """What the server reported at connect."""
        self.server_info: dict[str, Any] = {}
        self.contract_version: str | None = None
        self.tool_registration_errors: list[MeerkatError] = []
        """Failures of tools declared while connected (registered in the background)."""

    # -- lifecycle ------------------------------------------------------------------

    async def connect(self, *, realm_id: str | None = None, instance_id: str | None = None,
                      realm_backend: str | None = None, isolated: bool = False,
                      state_root: str | os.PathLike[str] | None = None,
                      context_root: str | os.PathLike[str] | None = None,
                      user_config_root: str | os.PathLike[str] | None = None,
                      database_url: str | None = None) -> "MeerkatClient":
        """Start ``rkat-rpc`` on a realm and shake hands.

        Without ``realm_id`` the server uses a fresh realm that ends with it.
        ``realm_backend`` is ``sqlite`` (default), ``jsonl``, ``memory`` or ``postgres``;
        ``database_url`` is a postgres realm's database (else the child inherits
        ``$RKAT_DATABASE_URL``). It reaches the child through its environment, not its
        command line, which other users of the machine can read.
        ``context_root`` is a project directory: a ``realm_id`` the ``rkat`` CLI
        keeps there (``<project>/.rkat/realms``) is served from there when no
        state root is given. ``user_config_root`` is accepted as the published
        SDK's is; this host keeps all config in the realm.
        """
        if self._conn is not None:
            raise InvalidParams("already connected; close() first")
        args = connect_argv(realm_id=realm_id, instance_id=instance_id, realm_backend=realm_backend,
                            isolated=isolated, state_root=state_root, context_root=context_root,
                            user_config_root=user_config_root)
        argv = [find_rkat_rpc(self._rkat_path), *args]
        env = None if database_url is None else {**os.environ, DATABASE_URL_ENV: database_url}
        try:
            with anyio.fail_after(self.connect_timeout):
                await self._handshake(argv, env)
        except TimeoutError:
            await self.close()
            raise ConnectTimeout(
                f"{argv[0]} did not answer the handshake within {self.connect_timeout:g} s; is it this "
                f"package's rkat-rpc? (MeerkatClient(connect_timeout=...) allows a slower start)",
                details={"binary": argv[0], "connect_timeout": self.connect_timeout}) from None
        return self

    async def _handshake(self, argv: list[str], env: dict[str, str] | None) -> None:
        self._conn = await Connection.open(argv, self._on_server_request, env=env)
        try:
            init = await self._conn.request("initialize", {})
            version = init.get("contract_version") if isinstance(init, dict) else None
            if not _compatible(version):
                raise VersionMismatch(f"rkat-rpc speaks contract {version!r}; this SDK speaks {CONTRACT_VERSION}")
            self.contract_version = version
            self.server_info = init.get("server_info") or {}
            caps = await self._conn.request("capabilities/get", {})
            self.capabilities = decode(caps.get("capabilities", []) if isinstance(caps, dict) else caps,
                                       list[Capability], "capabilities")
            if self._tools:
                await self._conn.request("tools/register", {"tools": self._tools.to_wire()})
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """End the child (pending calls fail with ClientClosed). Safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None:
            await conn.close()

    async def __aenter__(self) -> "MeerkatClient":
        if self._conn is None:
            await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def has_capability(self, capability_id: str) -> bool:
        """True when the server reported ``capability_id`` as available."""
        return any(c.id == capability_id and c.available for c in self.capabilities)

    # -- plumbing ------------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None:
            raise ClientClosed("not connected: call connect() or use `async with MeerkatClient()`")
        return self._conn

    async def _call(self, method: str, params: dict[str, Any]) -> Any:
        result = await self._connection().request(method, params)
        if not isinstance(result, dict):
            raise ProtocolError(f"{method}: expected an object result, got {type(result).__name__}")
        return result

    async def _on_server_request(self, method: str, params: Any) -> Any:
        if method == "tool/execute":
            return await self._tools.execute(params)
        raise error_from_code(ErrorCode.METHOD_NOT_FOUND, f"Method not supported: {method}")

    def _turn_params(self, session_id: str, prompt: Any, options: dict[str, Any], *,
                     streaming: bool) -> dict[str, Any]:
        params = {"session_id": session_id, "prompt": prompt, **_options(_TURN_OPTIONS, options)}
        if not streaming:
            params["session_events"] = False
        return params

    async def _turn(self, session_id: str, prompt: Any, options: dict[str, Any]) -> RunResult:
        return decode_run_result(await self._call("turn/start", self._turn_params(session_id, prompt, options,
                                                                                   streaming=False)))

    async def _interrupt(self, session_id: str) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("turn/interrupt", {"session_id": session_id})
        return result

    # -- tools ---------------------------------------------------------------------------

    def tool(self, name: str, *, description: str = "",
             input_schema: dict[str, Any] | None = None) -> Callable[[Handler], Handler]:
        """Declare a callback tool; the decorated function answers the model's calls.

        ::

            @client.tool("search", description="Search the docs",
                         input_schema={"type": "object", "properties": {"q": {"type": "string"}}})
            async def search(arguments: dict) -> str:
                return f"results for {arguments['q']}"

        A handler declaring a ``dedupe_key`` parameter also gets the call's
        :class:`ToolCallDedupeKey`. Declared while connected, the tool is registered
        at once (before any later call reaches the server).
        """

        def decorate(handler: Handler) -> Handler:
            tool = self._tools.declare(name, description, input_schema, handler)
            if self._conn is not None:
                pending = self._conn.send_request("tools/register", {"tools": [tool.to_wire()]})
                self._conn.spawn(self._watch_registration, name, pending)
            return handler

        return decorate

    async def _watch_registration(self, name: str, pending: Any) -> None:
        await pending.done.wait()
        if pending.error is not None:
            log.error("registering tool %s failed: %s", name, pending.error)
            self.tool_registration_errors.append(pending.error)

    # -- sessions ------------------------------------------------------------------------

    async def create_session(self, prompt: Any, **options: Any) -> Session:
        """Create a session and run its first turn.

        Options: ``model``, ``provider``, ``system_prompt``, ``max_tokens``,
        ``provider_params``, ``labels``, ``budget_max_tokens``, ``additional_instructions`` (a list of
        strings the model gets after the system prompt for this turn only).
        """
        params = {"prompt": prompt, **_options(_CREATE_OPTIONS, options), "session_events": False}
        result = decode_run_result(await self._call("session/create", params))
        return Session(self, result.session_id, result)

    def create_session_streaming(self, prompt: Any, **options: Any) -> EventStream:
        """Create a session and stream its first turn live (see :class:`EventStream`)."""
        # The session is created first (settings only), so its first turn streams live like any other.
        create = {"prompt": prompt, **_options(_CREATE_OPTIONS, options), "initial_turn": "deferred"}

        async def start(stream: EventStream) -> str:
            created = await self._call("session/create", create)
            session_id = created.get("session_id")
            if not isinstance(session_id, str) or not session_id:
                raise ProtocolError("session/create returned no session_id")
            stream._follow_and_start(session_id, {"session_id": session_id, "prompt": prompt})
            return session_id

        return EventStream(self, start)

    async def list_sessions(self, *, labels: dict[str, str] | None = None, limit: int | None = None,
                            offset: int | None = None) -> list[SessionInfo]:
        """Live sessions, most recently updated first; ``labels`` keeps those having every pair."""
        params = {k: v for k, v in (("labels", labels), ("limit", limit), ("offset", offset)) if v is not None}
        result = await self._call("session/list", params)
        return decode(result.get("sessions"), list[SessionInfo], "session list")

    async def read_session(self, session_id: str) -> SessionDetails:
        """One session's state (SessionNotFound if unknown or archived)."""
        return decode(await self._call("session/read", {"session_id": session_id}), SessionDetails, "session")

    async def read_session_history(self, session_id: str, *, offset: int = 0,
                                   limit: int | None = None) -> HistoryPage:
        """A page of a session's transcript, oldest first (default 100 rows)."""
        params: dict[str, Any] = {"session_id": session_id, "offset": offset}
        if limit is not None:
            params["limit"] = limit
        return decode(await self._call("session/history", params), HistoryPage, "history page")

    # -- config and models -----------------------------------------------------------------

    async def get_config(self) -> dict[str, Any]:
        """``{"config", "generation", "realm_id", ...}`` of the connected realm."""
        result: dict[str, Any] = await self._call("config/get", {})
        return result

    async def set_config(self, config: dict[str, Any], *, expected_generation: int | None = None) -> dict[str, Any]:
        """Replace the config; with ``expected_generation`` only if nobody wrote since
        (else :class:`meerkat.errors.ConfigGenerationConflict`)."""
        params: dict[str, Any] = {"config": config}
        if expected_generation is not None:
            params["expected_generation"] = expected_generation
        result: dict[str, Any] = await self._call("config/set", params)
        return result

    async def patch_config(self, patch: dict[str, Any], *,
                           expected_generation: int | None = None) -> dict[str, Any]:
        """Merge-patch the config (RFC 7396: ``None`` deletes a key), optionally compare-and-swap."""
        params: dict[str, Any] = {"patch": patch}
        if expected_generation is not None:
            params["expected_generation"] = expected_generation
        result: dict[str, Any] = await self._call("config/patch", params)
        return result

    async def get_models_catalog(self) -> dict[str, Any]:
        """``{"contract_version", "providers": [{"provider", "default_model_id", "models"}]}``."""
        result: dict[str, Any] = await self._call("models/catalog", {})
        return result
