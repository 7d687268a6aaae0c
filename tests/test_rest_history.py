"""``rkat-rest`` history routes through httpx2 against a real server process: forks, revisions,
the system prompt, instructions and export; every answer checked against the OpenAPI document."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx2
import pytest

from test_rest_server import RestServer, assert_documented

REALM = "rest-history"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-history")
    with RestServer("--realm", REALM, "--state-root", str(root)) as running:
        yield running


class Api:
    def __init__(self, client: httpx2.AsyncClient, document: dict) -> None:
        self.client = client
        self.document = document

    async def __call__(self, method: str, path: str, status: int = 200, **kwargs: Any) -> httpx2.Response:
        reply = await self.client.request(method, path, **kwargs)
        assert reply.status_code == status, (method, path, reply.status_code, reply.text)
        assert_documented(self.document, method, path, reply)
        return reply


async def session_with_two_turns(api: Api, **fields: Any) -> str:
    created = (await api("POST", "/sessions", json={"prompt": "first question", **fields})).json()
    sid = created["session_id"]
    await api("POST", f"/sessions/{sid}/messages", json={"prompt": "second question"})
    return sid


async def rows(api: Api, sid: str) -> list[dict]:
    return (await api("GET", f"/sessions/{sid}/history")).json()["messages"]


async def test_fork_rewrite_restore_over_rest(server):
    async with httpx2.AsyncClient(base_url=server.url) as client:
        api = Api(client, server.openapi())
        sid = await session_with_two_turns(api, labels={"app": "rest"})
        original = await rows(api, sid)
        fork = (await api("POST", f"/sessions/{sid}/fork", 201, json={"message_index": 2})).json()
        assert fork["message_count"] == 2 and fork["source_session_id"] == sid
        assert await rows(api, fork["session_id"]) == original[:2]
        assert (await api("GET", f"/sessions/{fork['session_id']}")).json()["labels"] == {"app": "rest"}
        await api("POST", f"/sessions/{fork['session_id']}/messages", json={"prompt": "on the fork"})
        assert await rows(api, sid) == original
        whole = (await api("POST", f"/sessions/{sid}/fork", 201, json={})).json()
        assert whole["message_count"] == 4
        await api("POST", f"/sessions/{sid}/fork", 400, json={"message_index": 99})
        await api("POST", f"/sessions/{sid}/fork", 400, json={"mesage_index": 1})
        await api("POST", "/sessions/01936f8a-7b2c-7000-8000-000000000099/fork", 404, json={})
        # A replacement needs the index of the message it replaces: the error names the missing field.
        missing = await api("POST", f"/sessions/{sid}/fork", 400, json={
            "replacement": {"type": "message", "message": {"role": "user", "content": "instead"}}})
        assert "missing field `message_index`" in missing.text, missing.text
        # A fork at 0 is an empty session of the same model that takes turns of its own.
        empty = (await api("POST", f"/sessions/{sid}/fork", 201, json={"message_index": 0})).json()
        assert empty["message_count"] == 0 and await rows(api, empty["session_id"]) == []
        await api("POST", f"/sessions/{empty['session_id']}/messages", json={"prompt": "from scratch"})
        assert [r["role"] for r in await rows(api, empty["session_id"])] == ["user", "block_assistant"]

        rewrite = (await api("POST", f"/sessions/{sid}/revisions", json={
            "selection": {"type": "message_range", "start": 2, "end": 4}, "replacement": [],
            "reason": {"kind": "prune"}})).json()
        assert (rewrite["revision"], rewrite["message_count"]) == ("r1", 2)
        listing = (await api("GET", f"/sessions/{sid}/revisions")).json()
        assert listing["head_revision"] == "r1" and [e["revision"] for e in listing["entries"]] == ["r1"]
        old = (await api("GET", f"/sessions/{sid}/revisions/r0")).json()
        assert old["messages"] == original and old["message_count"] == 4
        await api("GET", f"/sessions/{sid}/revisions/r42", 400)
        restored = (await api("POST", f"/sessions/{sid}/revisions/r0/restore")).json()
        assert restored["revision"] == "r2" and await rows(api, sid) == original
        await api("POST", f"/sessions/{sid}/revisions", 400, json={
            "selection": {"type": "message_range", "start": 0, "end": 1}, "replacement": [],
            "expected_parent_revision": "r0"})


async def test_system_prompt_instructions_and_export_over_rest(server):
    async with httpx2.AsyncClient(base_url=server.url) as client:
        api = Api(client, server.openapi())
        sid = (await api("POST", "/sessions", json={"prompt": "hi", "system_prompt": "Be terse."})).json()[
            "session_id"]
        update = (await api("PUT", f"/sessions/{sid}/system_prompt", json={"content": "Be a pirate."})).json()
        assert (update["status"], update["version"], update["message_index"]) == ("applied", 1, 0)
        seen = (await api("POST", f"/sessions/{sid}/messages", json={"prompt": "mock:system"})).json()
        assert "pirate" in seen["text"] and "terse" not in seen["text"], seen["text"]
        again = (await api("PUT", f"/sessions/{sid}/system_prompt", json={"content": "Be a pirate."})).json()
        assert again["status"] == "duplicate" and again["commit"] is None
        await api("PUT", f"/sessions/{sid}/system_prompt", 400, json={"content": 3})

        body = "Sign every answer with -- R."
        activation = {"revision": {"namespace": "app", "key": "sig", "revision_id": "1",
                                   "content_sha256": hashlib.sha256(body.encode()).hexdigest()},
                      "activation_id": "sig-1", "expectation": {"kind": "absent"}, "body": body}
        receipt = (await api("POST", f"/sessions/{sid}/instructions", json=activation)).json()
        assert receipt["disposition"] == "applied"
        assert (await api("POST", f"/sessions/{sid}/instructions", json=activation)).json()["disposition"] == \
            "duplicate"
        page = (await api("GET", f"/sessions/{sid}/instructions", params={"namespace": "app", "key": "sig"})).json()
        assert [r["identity"]["activation_id"] for r in page["records"]] == ["sig-1"]
        assert page["key_state"]["next_expectation"] == {"kind": "effective", "activation_id": "sig-1"}

        atif = (await api("GET", f"/sessions/{sid}/export")).json()
        assert atif["schema_version"] == "ATIF-v1.4" and atif["session_id"] == sid
        assert [s["source"] for s in atif["steps"]][:3] == ["system", "user", "agent"]
        markdown = await api("GET", f"/sessions/{sid}/export", params={"format": "markdown"})
        assert markdown.headers["content-type"].startswith("text/markdown") and "Be a pirate." in markdown.text
        plain = (await api("GET", f"/sessions/{sid}/export", params={"format": "json"})).json()
        assert plain["message_count"] == len(plain["messages"])
        await api("GET", f"/sessions/{sid}/export", 400, params={"format": "pdf"})
