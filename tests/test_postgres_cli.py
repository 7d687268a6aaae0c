"""The rkat CLI and the Python SDK on a postgres realm (the tests' real PostgreSQL server): two "hosts" with
their own state roots share the realm through the database, config included; rkat doctor reports the
database; no password reaches an output, a log or a file."""

from __future__ import annotations

from pathlib import Path

from mcp import StdioServerParameters

from cli_process import Cli
from meerkat.client import MeerkatClient
from rpc_process import child_env


def _files_text(root: Path) -> str:
    return "".join(path.read_text(errors="replace") for path in root.rglob("*") if path.is_file())


def test_two_hosts_share_sessions_and_config_through_the_database(tmp_path, postgres_url, postgres_server):
    host_a = Cli(tmp_path / "a", tmp_path)
    host_b = Cli(tmp_path / "b", tmp_path, env={"RKAT_DATABASE_URL": postgres_url})
    created = host_a("-r", "team", "--realm-backend", "postgres", "--database-url", postgres_url, "run",
                     "--format", "json", "hello from a")
    session_id = created.json()["session_id"]
    patched = host_a("-r", "team", "--database-url", postgres_url, "config", "patch", "--json",
                     '{"storage": {"postgres": {"pool_size": 6}}, "agent": {"max_turns": 7}}')
    listed = host_b("-r", "team", "session", "list", "--format", "json").json()["sessions"]
    assert [s["session_id"] for s in listed] == [session_id]
    config = host_b("-r", "team", "config", "get", "--format", "json", "--with-generation").json()
    assert config["config"]["agent"]["max_turns"] == 7 and config["config"]["storage"]["postgres"]["pool_size"] == 6
    assert config["backend"] == "postgres"
    # The state roots hold only the manifest caches: no config file, no session file, no password.
    for root in (tmp_path / "a", tmp_path / "b"):
        names = {path.name for path in root.rglob("*") if path.is_file()}
        assert "config.toml" not in names and "sessions.sqlite3" not in names, names
        assert postgres_server.password not in _files_text(root)
    for result in (created, patched):
        assert postgres_server.password not in result.out + result.err


def test_doctor_reports_the_database_without_its_password(tmp_path, postgres_url, postgres_server):
    rkat = Cli(tmp_path / "a", tmp_path, env={"RKAT_DATABASE_URL": postgres_url})
    rkat("-r", "team", "--realm-backend", "postgres", "run", "hi")
    rkat("-r", "team", "config", "patch", "--json", '{"agent": {"model": "mock"}}')
    report = rkat("-r", "team", "doctor", "--no-probe", "--format", "json")
    assert report.json()["default_model"] == "mock"  # the realm's config, read from the database
    database = report.json()["database"]
    dbname = postgres_url.rsplit("/", 1)[1]
    assert database["reachable"] is True and database["schema_version"] >= 1 and database["latency_ms"] >= 0
    assert database["url"] == f"postgresql://{postgres_server.user}@127.0.0.1:{postgres_server.port}/{dbname}"
    realm = report.json()["realm"]
    assert realm["backend"] == "postgres" and realm["exists"] is True
    assert realm["store"] == f"ok ({database['url']})"
    text = Cli(tmp_path / "elsewhere", tmp_path, env={"RKAT_DATABASE_URL": postgres_url})("-r", "team", "doctor",
                                                                                          "--no-probe")
    assert "Database" in text.out and "reachable      True" in text.out and "backend      postgres" in text.out
    assert "origin       explicit" in text.out and "exists       yes" in text.out  # from the database alone
    gone = postgres_url.replace(f":{postgres_server.port}/", ":1/")
    down = Cli(tmp_path / "a", tmp_path, env={"RKAT_DATABASE_URL": gone})("-r", "team", "doctor", "--no-probe",
                                                                          "--format", "json")
    assert down.json()["database"]["reachable"] is False and "cannot connect" in down.json()["database"]["problem"]
    assert down.json()["realm"]["store"].startswith("FAILED")
    for result in (report, text, down):
        assert postgres_server.password not in result.out + result.err


async def test_the_python_sdk_connects_to_a_postgres_realm_without_the_url_on_the_command_line(tmp_path,
                                                                                               postgres_url,
                                                                                               postgres_server,
                                                                                               monkeypatch):
    for name, value in child_env(tmp_path / "state").items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RKAT_DATABASE_URL", raising=False)
    client = MeerkatClient()
    await client.connect(realm_id="team", realm_backend="postgres", database_url=postgres_url)
    try:
        session = await client.create_session("hi", model="mock")
        health = await client.runtime_health()
        pid = client._conn._process.pid  # type: ignore[union-attr]  # the child's own command line is the point
        command_line = Path(f"/proc/{pid}/cmdline").read_bytes().decode()
        assert postgres_url not in command_line and postgres_server.password not in command_line
        assert "--realm-backend\0postgres" in command_line
    finally:
        await client.close()
    assert health["checks"]["database"] == "ok" and postgres_server.password not in str(health)
    # Another client (another "host", another realm in the same database) sees both realms there.
    other = MeerkatClient()
    monkeypatch.setenv("RKAT_STATE_ROOT", str(tmp_path / "other"))
    monkeypatch.setenv("RKAT_DATABASE_URL", postgres_url)
    await other.connect(realm_id="team")
    try:
        sessions = await other.list_sessions()
    finally:
        await other.close()
    assert [s.session_id for s in sessions] == [session.id]
    third = MeerkatClient()
    await third.connect(realm_id="ops", realm_backend="postgres")
    try:
        realms = [(r.realm_id, r.backend, r.current) for r in await third.list_realms()]
    finally:
        await third.close()
    assert realms == [("ops", "postgres", True), ("team", "postgres", False)]


async def test_rkat_mcp_serves_a_postgres_realm_the_cli_made(tmp_path, postgres_url, postgres_server):
    from test_mcp import RKAT_MCP, harness_factory, server_env

    Cli(tmp_path / "cli", tmp_path, env={"RKAT_DATABASE_URL": postgres_url})("-r", "team", "--realm-backend",
                                                                            "postgres", "run", "from the cli")
    env = {**server_env(), "RKAT_DATABASE_URL": postgres_url}
    target = StdioServerParameters(command=RKAT_MCP, args=["--realm", "team", "--state-root", str(tmp_path / "mcp")],
                                   env=env)
    async with harness_factory(target)() as mcp:
        ran = await mcp.run("from mcp")
        listed = await mcp.call("meerkat_sessions", {})
        config = await mcp.call("meerkat_config", {"action": "get"})
    assert len(listed["sessions"]) == 2 and ran["session_id"] in {s["session_id"] for s in listed["sessions"]}
    assert config["backend"] == "postgres" and postgres_server.password not in str(config)
