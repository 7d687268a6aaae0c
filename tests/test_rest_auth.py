"""Who may call ``rkat-rest``: bearer tokens when configured, loopback clients otherwise."""

from __future__ import annotations

import pytest

from test_rest_server import RestServer, assert_documented

TOKEN = "s3cret-token"


@pytest.fixture(scope="module")
def token_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("rest-auth")
    with RestServer("--realm", "guarded", "--state-root", str(root), "--auth-token", TOKEN) as running:
        yield running


async def test_token_is_required_everywhere_but_health(token_server):
    document = token_server.openapi()
    sample = {"{session_id}": "01936f8a-7b2c-7000-8000-000000000001", "{name}": "console.css"}
    operations = []
    public = set()
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            if operation.get("security") == []:
                public.add((method.upper(), path))
            for placeholder, value in sample.items():
                path = path.replace(placeholder, value)
            operations.append((method.upper(), path, operation.get("security") == []))
    # Only health and the console's page shell are public (the page asks for the token).
    assert public == {("GET", "/health"), ("GET", "/"), ("GET", "/console"), ("GET", "/console/assets/{name}")}
    async with token_server.client() as anonymous:
        assert (await anonymous.get("/health")).text == "ok"
        for method, path, is_public in operations:
            reply = await anonymous.request(method, path, json={"prompt": "hi"} if method == "POST" else None)
            if is_public:
                assert reply.status_code in (200, 302), (method, path, reply.status_code)
                continue
            assert reply.status_code == 401, (method, path)
            assert_documented(document, method, path, reply)
            assert reply.json()["code"] == "UNAUTHORIZED" and "bearer token" in reply.json()["error"]
            assert reply.headers["www-authenticate"].startswith("Bearer")
    async with token_server.client(headers={"Authorization": "Bearer wrong"}) as wrong:
        reply = await wrong.get("/sessions")
        assert reply.status_code == 401 and reply.json()["error"] == "invalid bearer token"
    async with token_server.client(headers={"Authorization": f"Basic {TOKEN}"}) as other_scheme:
        assert (await other_scheme.get("/sessions")).status_code == 401


async def test_with_the_token_everything_works(token_server):
    async with token_server.client(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
        created = (await client.post("/sessions", json={"prompt": "hi"})).json()
        sid = created["session_id"]
        kinds = []
        async with client.sse(f"/sessions/{sid}/events", params={"after": "0", "stop_after_run": "1"}) as source:
            async for event in source:
                kinds.append(event.event)
        assert kinds[0] == "session_loaded" and kinds[-2:] == ["run_completed", "done"]
        document = (await client.get("/openapi.json")).json()
        assert document["security"] == [{"bearer": []}]
        assert document["paths"]["/health"]["get"]["security"] == []


async def test_token_from_environment(tmp_path):
    with RestServer("--realm", "env-token", "--state-root", str(tmp_path), env={"RKAT_REST_TOKEN": "from-env"}) as srv:
        async with srv.client() as anonymous:
            assert (await anonymous.get("/config")).status_code == 401
        async with srv.client(headers={"Authorization": "Bearer from-env"}) as client:
            assert (await client.get("/config")).json()["realm_id"] == "env-token"


async def test_without_token_only_loopback_host_names_are_answered(tmp_path):
    """No token: no auth needed, but a foreign Host header (DNS rebinding) is refused."""
    with RestServer("--realm", "open", "--state-root", str(tmp_path)) as server:
        port = server.url.rsplit(":", 1)[1]
        async with server.client() as client:
            assert (await client.get("/sessions")).status_code == 200
            document = (await client.get("/openapi.json")).json()
            assert "security" not in document
            for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
                assert (await client.get("/sessions", headers={"Host": host})).status_code == 200, host
            rebound = await client.get("/sessions", headers={"Host": f"attacker.example:{port}"})
            assert rebound.status_code == 401 and "--auth-token" in rebound.json()["error"]
            assert_documented(document, "GET", "/sessions", rebound)
            assert (await client.get("/health", headers={"Host": "attacker.example"})).text == "ok"
