"""``rkat-rest`` as a process: start-up, listen address, tokens, graceful shutdown.

Also home of :class:`RestServer`, the real ``rkat-rest`` subprocess on a free
loopback port that every ``test_rest*`` module talks to with httpx2, and of
:func:`assert_documented`, which holds each answer a test gets against the
server's own ``GET /openapi.json``.
"""

from __future__ import annotations

import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import Callable

import httpx2
import jsonschema
import pytest
import trio

REST_BIN = Path(sys.executable).with_name("rkat-rest")
STARTUP_TIMEOUT = 60.0


def hermetic_environ() -> dict[str, str]:
    """This process's environment without what would make a test depend on its machine.

    A developer's provider keys or base URLs would send default-model turns to a
    real vendor, and their ``RKAT_REST_TOKEN`` would lock every token-less test out.
    """
    return {name: value for name, value in os.environ.items()
            if not name.endswith(("_API_KEY", "_BASE_URL")) and name != "RKAT_REST_TOKEN"}


class RestServer:
    """A real ``rkat-rest`` process; ``url`` is what it printed on start.

    ``with RestServer("--realm", "r", "--state-root", root) as server: ...``
    starts it with ``--port 0`` (unless ``port=`` is given) and reads the printed
    URL; leaving the block stops it with SIGTERM.
    """

    def __init__(self, *args: str, env: dict[str, str] | None = None, port: int | None = 0,
                 preexec_fn: "Callable[[], None] | None" = None) -> None:
        self.preexec_fn = preexec_fn
        self.args = [*args, *(("--port", str(port)) if port is not None else ())]
        self.env = {**hermetic_environ(), "PYTHONUNBUFFERED": "1", **(env or {})}
        self.url = ""
        self.returncode: int | None = None
        self._stderr = tempfile.TemporaryFile(mode="w+")
        self.proc: subprocess.Popen[str] | None = None
        self._document: dict | None = None
        token = next((args[i + 1] for i, arg in enumerate(args[:-1]) if arg == "--auth-token"), None)
        self._auth = {"Authorization": f"Bearer {token}"} if token else {}

    def __enter__(self) -> "RestServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.stop()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
        self._stderr.close()

    def start(self) -> None:
        """Launch and wait for the ``listening on`` line (raises with stderr if it never comes)."""
        self.proc = subprocess.Popen([str(REST_BIN), *self.args], stdout=subprocess.PIPE, stderr=self._stderr,
                                     text=True, env=self.env, preexec_fn=self.preexec_fn)
        line = self._read_line(STARTUP_TIMEOUT)
        prefix = "rkat-rest listening on "
        if not line.startswith(prefix):
            self.proc.kill()
            self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            raise RuntimeError(f"rkat-rest did not start: stdout={line!r} stderr={self.stderr()!r}")
        self.url = line[len(prefix):].strip()

    def _read_line(self, timeout: float) -> str:
        assert self.proc is not None and self.proc.stdout is not None
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        return self.proc.stdout.readline() if ready else ""

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> int:
        """Send ``sig`` and wait for the exit status."""
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.returncode = self.proc.wait(timeout)
        return self.returncode

    def stderr(self) -> str:
        """Everything the server wrote to stderr so far."""
        self._stderr.flush()
        self._stderr.seek(0)
        return self._stderr.read()

    def openapi(self) -> dict:
        """The server's ``GET /openapi.json`` (fetched once)."""
        if self._document is None:
            self._document = httpx2.get(f"{self.url}/openapi.json", headers=self._auth).json()
        return self._document

    def client(self, **kwargs: object) -> httpx2.AsyncClient:
        """An httpx2 client for this server (60 s timeouts: a stuck request fails the test, never hangs it)."""
        return httpx2.AsyncClient(base_url=self.url, timeout=httpx2.Timeout(60.0), **kwargs)


def documented_operation(document: dict, method: str, path: str) -> dict | None:
    """The operation ``method path`` reaches in the document (None: no such route or method)."""
    parts = path.split("?", 1)[0].strip("/").split("/")
    for template, item in document["paths"].items():
        pattern = template.strip("/").split("/")
        if len(pattern) == len(parts) and all(p == s or p.startswith("{") for p, s in zip(pattern, parts)):
            return item.get(method.lower())
    return None


def assert_documented(document: dict, method: str, path: str, reply: httpx2.Response) -> None:
    """``reply`` is what the document says ``method path`` answers.

    Its status is declared by the operation itself (a catch-all ``default`` does
    not count), its content type is the declared one, and a JSON body matches the
    declared schema. Answers off the document (no route, wrong method) must still
    be the Error shape.
    """
    operation = documented_operation(document, method, path)
    status = str(reply.status_code)
    if operation is None:
        response = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    else:
        assert status in operation["responses"], f"{method} {path} answered {status}, undeclared: {reply.text[:300]}"
        response = operation["responses"][status]
    content_type = reply.headers["content-type"].split(";")[0]
    assert content_type in response["content"], f"{method} {path} {status} sent {content_type}"
    if content_type == "application/json":
        assert_matches(document, response["content"][content_type]["schema"], reply.json())


def assert_matches(document: dict, schema: dict, value: object) -> None:
    """``value`` matches ``schema``, whose ``$ref`` point into the document's components."""
    jsonschema.Draft202012Validator({"components": document["components"], **schema}).validate(value)


def run_rest(*args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    """Run ``rkat-rest`` to completion (for flags that exit at once)."""
    return subprocess.run([str(REST_BIN), *args], capture_output=True, text=True, timeout=timeout,
                          env=hermetic_environ())


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# -- tests -----------------------------------------------------------------------


def test_help_lists_flags_and_examples():
    result = run_rest("--help")
    assert result.returncode == 0
    for text in ("--realm", "--isolated", "--instance", "--realm-backend", "--state-root", "--host", "--port",
                 "--auth-token", "examples:", "curl -N"):
        assert text in result.stdout


def test_bad_flags_are_usage_errors():
    assert run_rest("--port", "70000").returncode == 2
    combined = run_rest("--realm", "a", "--isolated")
    assert combined.returncode == 2 and "--isolated" in combined.stderr
    bad_realm = run_rest("--realm", "../x")
    assert bad_realm.returncode == 2 and "realm" in bad_realm.stderr


def test_non_loopback_address_requires_a_token(tmp_path):
    result = run_rest("--realm", "exposed", "--state-root", str(tmp_path), "--host", "0.0.0.0", "--port", "0")
    assert result.returncode != 0
    assert "requires a token" in result.stderr and "RKAT_REST_TOKEN" in result.stderr
    assert "listening" not in result.stdout


async def test_listen_address_falls_back_to_realm_config(tmp_path):
    root = str(tmp_path)
    with RestServer("--realm", "portable", "--state-root", root) as first:
        port = free_port()
        async with first.client() as client:
            reply = await client.patch("/config", json={"patch": {"rest": {"port": port}}})
            assert reply.status_code == 200, reply.text
            assert reply.json()["config"]["rest"] == {"host": "127.0.0.1", "port": port}
    with RestServer("--realm", "portable", "--state-root", root, port=None) as second:
        assert second.url == f"http://127.0.0.1:{port}"
        async with second.client() as client:
            assert (await client.get("/health")).text == "ok"


async def test_without_realm_serves_a_fresh_realm_and_says_so(tmp_path):
    with RestServer("--state-root", str(tmp_path)) as server:
        async with server.client() as client:
            realm_id = (await client.get("/config")).json()["realm_id"]
        assert realm_id.startswith("realm-")
        assert f"fresh throw-away realm {realm_id}" in server.stderr() and "--realm" in server.stderr()


async def test_sigterm_interrupts_running_turns_and_commits_them(tmp_path):
    """Shutdown answers the waiting request (499), ends open streams with done, keeps the partial turn."""
    root = str(tmp_path)
    slow = {"reply_words": 400, "token_delay_ms": 20}
    with RestServer("--realm", "graceful", "--state-root", root) as server:
        async with server.client() as client:
            sid = (await client.post("/sessions", json={"prompt": "first"})).json()["session_id"]
            outcome: dict[str, object] = {}

            async def long_turn() -> None:
                reply = await client.post(f"/sessions/{sid}/messages",
                                          json={"prompt": "keep talking", "provider_params": slow})
                outcome["turn"] = (reply.status_code, reply.json())

            async with trio.open_nursery() as nursery:
                async with client.sse(f"/sessions/{sid}/events") as source:
                    events = source.__aiter__()
                    async for event in events:
                        if event.event == "session_loaded":
                            nursery.start_soon(long_turn)
                        if event.event == "text_delta":
                            break
                    await trio.to_thread.run_sync(server.stop, signal.SIGTERM)
                    rest = [event.event async for event in events]
    assert server.returncode == 0, server.stderr()
    status, body = outcome["turn"]
    assert status == 499 and body["code"] == "REQUEST_CANCELLED"
    assert rest[-1] == "done" and "run_failed" in rest
    with RestServer("--realm", "graceful", "--state-root", root) as again:
        async with again.client() as client:
            history = (await client.get(f"/sessions/{sid}/history")).json()
            # The new process's ring is empty: resuming replays the durable event log, then goes live.
            resumed = []
            async with trio.open_nursery() as nursery:
                async with client.sse(f"/sessions/{sid}/events", headers={"Last-Event-ID": "1"},
                                      params={"stop_after_run": "true"}) as source:
                    async for event in source:
                        resumed.append(event)
                        if event.event == "session_loaded":
                            back = partial(client.post, f"/sessions/{sid}/messages", json={"prompt": "back"})
                            nursery.start_soon(back)
    last = history["messages"][-1]
    assert history["messages"][-2]["content"] == "keep talking"
    assert last["role"] == "block_assistant" and last["stop_reason"] == "cancelled"
    assert last["blocks"][0]["data"]["text"].startswith("lorem")
    frames = resumed[1:-1]
    assert "stream_truncated" not in [e.event for e in frames]  # nothing lost across the restart
    seqs = [int(e.id) for e in frames]
    assert seqs == list(range(2, 2 + len(seqs)))  # the first turn's events after seq 1, from the log
    # stop_after_run ends the stream at the first run end after the cursor: the first turn's, replayed.
    assert frames[-1].event == "run_completed" and resumed[-1].event == "done"

def test_sigint_stops_an_idle_server_cleanly(tmp_path):
    with RestServer("--realm", "idle", "--state-root", str(tmp_path)) as server:
        assert server.stop(signal.SIGINT) == 0
        assert "Traceback" not in server.stderr()
