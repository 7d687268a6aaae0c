"""The key-redirect check and the config write are one compare-and-swap (issue 20, item 2).

A network write is judged against the config it replaces. Before, the surfaces read
the config, checked, and then wrote without naming the generation they checked: a
write landing in the gap changed what was replaced, so a network client could put
back a base URL that had just been removed (the key then went there).

Two writers race here: network client A removes a provider's base URL (always
allowed); network client B writes that same URL, which is allowed only while it is
still the config's value. Whatever the order, B may never be the write that leaves
the URL in place once A removed it.
"""

from __future__ import annotations

import json

import trio

from meerkat.errors import ConfigGenerationConflict, InvalidParams
from surfaces.network_config import write_config_checked

from helpers import running_service
from rpc_process import RpcProcess
from test_rest_server import RestServer, hermetic_environ

OPERATOR_URL = "http://127.0.0.1:9/operator-proxy"
ROUNDS = 40


async def test_racing_rest_writers_never_put_back_a_removed_endpoint(tmp_path):
    operator = RpcProcess("--realm", "race", state_root=tmp_path)  # local: may choose any endpoint
    try:
        operator.result("initialize", {})
        with RestServer("--realm", "race", "--state-root", str(tmp_path), env=hermetic_environ()) as server:
            async with server.client() as remover, server.client() as restorer:
                outcomes = {"restorer refused": 0, "restorer first": 0}
                for _ in range(ROUNDS):
                    operator.result("config/patch", {"patch": {"providers": {"anthropic": {"base_url": OPERATOR_URL}}}})
                    replies = {}

                    async def send(name, http, body):
                        replies[name] = await http.patch("/config", json={"patch": body})

                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(send, "restorer", restorer,
                                           {"providers": {"anthropic": {"base_url": OPERATOR_URL}}})
                        nursery.start_soon(send, "remover", remover, {"providers": {"anthropic": None}})
                    assert replies["remover"].status_code == 200, replies["remover"].text
                    final = (await remover.get("/config")).json()
                    assert "anthropic" not in final["config"]["providers"], \
                        f"a network write put the removed endpoint back: {json.dumps(final['config']['providers'])}"
                    if replies["restorer"].status_code == 200:
                        assert replies["restorer"].json()["generation"] < replies["remover"].json()["generation"]
                        outcomes["restorer first"] += 1
                    else:
                        assert replies["restorer"].status_code == 400, replies["restorer"].text
                        assert "API key" in replies["restorer"].json()["error"]
                        outcomes["restorer refused"] += 1
    finally:
        operator.stop()


class WriteInTheGap:
    """A service whose first config read is followed, before the caller resumes, by another write."""

    def __init__(self, service, other_write) -> None:
        self._service = service
        self._other_write = other_write
        self.reads = 0

    async def get_config(self):
        view = await self._service.get_config()
        self.reads += 1
        if self.reads == 1:
            await self._other_write()
        return view

    def __getattr__(self, name):
        return getattr(self._service, name)


async def test_a_write_landing_between_check_and_write_is_checked_again(tmp_path):
    async with running_service(tmp_path, "sqlite") as service:
        await service.patch_config({"providers": {"anthropic": {"base_url": OPERATOR_URL}}})  # the operator's
        racing = WriteInTheGap(service, lambda: service.patch_config({"providers": {"anthropic": None}}))
        try:
            await write_config_checked(racing, {"providers": {"anthropic": {"base_url": OPERATOR_URL}}},
                                       patch=True, expected_generation=None, surface="a test client")
        except InvalidParams as refused:
            assert refused.details["key"] == "providers.anthropic.base_url"
        else:
            raise AssertionError("the write was checked against a config it did not replace")
        assert racing.reads == 2  # the lost race made it check the new config
        assert "anthropic" not in (await service.get_config()).config["providers"]


async def test_a_client_naming_its_generation_gets_the_conflict(tmp_path):
    async with running_service(tmp_path, "sqlite") as service:
        start = (await service.get_config()).generation
        racing = WriteInTheGap(service, lambda: service.patch_config({"agent": {"max_turns": 7}}))
        try:
            await write_config_checked(racing, {"agent": {"max_turns": 9}}, patch=True,
                                       expected_generation=start, surface="a test client")
        except ConfigGenerationConflict as conflict:
            assert (conflict.expected, conflict.current) == (start, start + 1)
        else:
            raise AssertionError("a write at a stale generation succeeded")
        assert (await service.get_config()).config["agent"]["max_turns"] == 7
        # Without a generation of its own, a write that loses a race to an ordinary write is retried.
        racing = WriteInTheGap(service, lambda: service.patch_config({"agent": {"max_turns": 8}}))
        view = await write_config_checked(racing, {"agent": {"max_turns": 9}}, patch=True,
                                          expected_generation=None, surface="a test client")
        assert view.config["agent"]["max_turns"] == 9 and view.generation == start + 3
