"""docs/deployment.md's example runs as printed: two rkat-rest replicas on one PostgreSQL realm, checked by
the page's own script (the test server's URL, password and free ports stand in for the page's)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from rpc_process import child_env
from test_rest_server import free_port

DOC = Path(__file__).resolve().parent.parent / "docs" / "deployment.md"


def _block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", DOC.read_text(), flags=re.S)
    return next(block for block in blocks if containing in block)


def test_two_replicas_serve_one_realm_as_the_page_shows(tmp_path, postgres_server):
    script = _block("bash", "rkat-rest --realm team")
    dbname = postgres_server.create_database().rsplit("/", 1)[1]
    port_a, port_b = free_port(), free_port()
    replaced = (script.replace("postgresql://rkat@127.0.0.1:5432/rkat", postgres_server.url(dbname, with_password=False))
                .replace("the database password", postgres_server.password)
                .replace("8081", str(port_a)).replace("8082", str(port_b)))
    assert replaced.count(str(port_a)) == 2 and postgres_server.password in replaced  # every stand-in was found
    (tmp_path / "check_replicas.py").write_text(_block("python", "def wait_healthy"))
    try:
        done = subprocess.run(["bash", "-c", replaced], cwd=tmp_path, env=child_env(tmp_path / "state"),
                              capture_output=True, text=True, timeout=120)
    finally:
        postgres_server.drop_database(dbname)
    assert done.returncode == 0, done.stderr
    assert sorted(line for line in done.stdout.splitlines() if "listening" in line) == \
        sorted(f"rkat-rest listening on http://0.0.0.0:{port}" for port in (port_a, port_b))
    lines = [line for line in done.stdout.splitlines() if "listening" not in line]
    assert lines[:2] == [f"http://127.0.0.1:{port_a} ok database reachable: True",
                         f"http://127.0.0.1:{port_b} ok database reachable: True"], done.stdout
    assert re.fullmatch(rf"http://127\.0\.0\.1:{port_b} reads session [0-9a-f-]{{36}} with 2 messages", lines[2])
    assert postgres_server.password not in done.stdout + done.stderr
