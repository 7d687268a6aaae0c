"""``rkat-rest`` over HTTP against a bare hypercorn app in the same run.

Three figures, each as a ratio to a bare ASGI app on hypercorn's trio worker
(no framework, no host; the smallest server doing the same HTTP work):

* ``GET /sessions/{id}`` requests/s (baseline: a GET answering a JSON body of the same size);
* full mock turns/s, ``POST /sessions/{id}/messages`` on a sqlite realm, one session per
  connection (baseline: a POST that reads the JSON body and answers a run-result-sized body);
* SSE text deltas/s delivered to 1 and to 100 subscribers of one session, during one mock
  turn of ``reply_words`` words with no delay (baseline: the bare app pushes the same
  number of same-sized frames to the same number of streams, coalescing queued frames as
  rkat-rest does). Deltas a slow subscriber lost (``stream_truncated``) are reported and
  not counted.

Both servers run as subprocesses (one core each at most); the load comes from this
process over raw keep-alive HTTP/1.1 connections (a minimal client, so the client is
not the bottleneck), ``--connections`` at a time for ``--seconds`` per figure.

    .venv/bin/python bench/rest_throughput.py [--seconds S] [--connections C] [--words1 N] [--words100 N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now

import trio

REST_BIN = Path(sys.executable).with_name("rkat-rest")
_LENGTH = re.compile(rb"content-length:\s*(\d+)", re.I)


# -- a minimal keep-alive HTTP/1.1 client ---------------------------------------------


class Connection:
    """One keep-alive connection sending a request and reading a content-length response."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.buffer = b""

    @classmethod
    async def open(cls, port: int) -> "Connection":
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def request(self, raw: bytes) -> tuple[int, bytes]:
        await self.stream.send_all(raw)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += await self._read()
        head, _, rest = self.buffer.partition(b"\r\n\r\n")
        match = _LENGTH.search(head)
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            rest += await self._read()
        self.buffer = rest[length:]
        return int(head[9:12]), rest[:length]

    async def _read(self) -> bytes:
        data = await self.stream.receive_some(65536)
        if not data:
            raise ConnectionError("server closed the connection")
        return data


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


def post(path: str, body: dict) -> bytes:
    data = json.dumps(body).encode()
    return (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n").encode() + data


async def rate(port: int, requests: list[bytes], seconds: float) -> float:
    """Requests/s with one connection per entry of ``requests``, each repeating its request."""
    done = 0
    deadline = trio.current_time() + seconds

    async def worker(raw: bytes) -> None:
        nonlocal done
        conn = await Connection.open(port)
        try:
            while trio.current_time() < deadline:
                try:
                    status, body = await conn.request(raw)
                except ConnectionError:
                    # hypercorn closes a keep-alive connection after keep_alive_max_requests
                    # (1000 by default); a real client reconnects, and so do we.
                    await conn.stream.aclose()
                    conn = await Connection.open(port)
                    continue
                if status != 200:
                    raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
                done += 1
        finally:
            await conn.stream.aclose()

    start = now()
    async with trio.open_nursery() as nursery:
        for raw in requests:
            nursery.start_soon(worker, raw)
    return done / (now() - start)


class Counter:
    """Counts a pattern in a byte stream that arrives in pieces."""

    def __init__(self, pattern: bytes) -> None:
        self.pattern = pattern
        self.count = 0
        self._tail = b""

    def feed(self, data: bytes) -> None:
        window = self._tail + data
        self.count += window.count(self.pattern)
        self._tail = window[-(len(self.pattern) - 1):]


async def fanout(port: int, subscribe: bytes, ready: bytes, fire: bytes, end: bytes, delta: bytes,
                 subscribers: int) -> tuple[float, int]:
    """Deltas/s each subscriber received (mean) and the total delivered, from fire to the last end."""
    counts: list[int] = []
    all_ready = trio.Event()
    waiting = subscribers
    finished_at: list[float] = []

    async def subscriber() -> None:
        nonlocal waiting
        stream = await trio.open_tcp_stream("127.0.0.1", port)
        async with stream:
            await stream.send_all(subscribe)
            seen, ended, deltas = b"", Counter(end), Counter(delta)
            while ready not in seen:
                seen += await stream.receive_some(65536)
            waiting -= 1
            if not waiting:
                all_ready.set()
            deltas.feed(seen.partition(ready)[2])
            while not ended.count:
                data = await stream.receive_some(65536)
                if not data:
                    raise ConnectionError("stream closed early")
                deltas.feed(data)
                ended.feed(data)
            finished_at.append(now())
            counts.append(deltas.count)

    async with trio.open_nursery() as nursery:
        for _ in range(subscribers):
            nursery.start_soon(subscriber)
        await all_ready.wait()
        conn = await Connection.open(port)
        async with conn.stream:
            started = now()
            status, body = await conn.request(fire)
            if status != 200:
                raise RuntimeError(f"HTTP {status}: {body[:200]!r}")
    wall = max(finished_at) - started
    return sum(counts) / len(counts) / wall, sum(counts)


# -- the servers ----------------------------------------------------------------------


def start(argv: list[str], env: dict[str, str] | None = None) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env={**os.environ, **(env or {})})
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"server did not start: {line!r}")
    return proc, int(line.rsplit(":", 1)[1])


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    proc.wait(30)
    assert proc.stdout is not None
    proc.stdout.close()


def bare_server(get_bytes: int, post_bytes: int, frame_bytes: int) -> None:
    """The baseline: a bare ASGI app on hypercorn's trio worker (run in a child process)."""
    from collections import deque

    from hypercorn.config import Config
    from hypercorn.trio import serve

    get_body = b'{"x":"' + b"a" * max(0, get_bytes - 8) + b'"}'
    post_body = b'{"x":"' + b"a" * max(0, post_bytes - 8) + b'"}'
    frame = b"event: text_delta\ndata: " + b"a" * max(0, frame_bytes - 26) + b"\n\n"
    streams: list[tuple[deque, list[trio.Event]]] = []

    async def respond(send, body: bytes, content_type: bytes = b"application/json") -> None:
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})

    async def read_body(receive) -> bytes:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                return body

    async def events(send) -> None:
        queue: deque[bytes] = deque()
        waker = [trio.Event()]
        streams.append((queue, waker))
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        await send({"type": "http.response.body", "body": b"event: ready\ndata: {}\n\n", "more_body": True})
        while True:
            await waker[0].wait()
            waker[0] = trio.Event()
            batch = []
            while queue and len(batch) < 256:
                batch.append(queue.popleft())
            if queue:
                waker[0].set()
            chunk = b"".join(batch)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            if chunk.endswith(b"event: end\ndata: {}\n\n"):
                await send({"type": "http.response.body", "body": b""})
                return

    async def fire(words: int) -> None:
        for i in range(words):
            for queue, waker in streams:
                queue.append(frame)
                waker[0].set()
            if i % 16 == 15:  # the mock's pacing: one scheduler trip per 16 words
                await trio.lowlevel.checkpoint()
        for queue, waker in streams:
            queue.append(b"event: end\ndata: {}\n\n")
            waker[0].set()
        streams.clear()

    async def app(scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                await send({"type": message["type"] + ".complete"})
                if message["type"] == "lifespan.shutdown":
                    return
        path = scope["path"]
        if path == "/get":
            await respond(send, get_body)
        elif path == "/post":
            json.loads(await read_body(receive))
            await respond(send, post_body)
        elif path == "/events":
            await events(send)
        elif path == "/fire":
            await fire(int(scope["query_string"].decode().partition("=")[2]))
            await respond(send, b"{}")

    async def main() -> None:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        config.accesslog = None
        config.loglevel = "WARNING"
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(serve, app, config)
            print(f"bare listening on {binds[0]}", flush=True)

    trio.run(main)


# -- the run --------------------------------------------------------------------------


async def measure(args: argparse.Namespace, root: str) -> None:
    rest, rest_port = start([str(REST_BIN), "--realm", "bench", "--state-root", root, "--port", "0"])
    try:
        setup = await Connection.open(rest_port)
        sessions = []
        for _ in range(args.connections):
            status, body = await setup.request(post("/sessions", {"prompt": "hello", "model": "mock"}))
            sessions.append(json.loads(body)["session_id"])
        status, read_body = await setup.request(get(f"/sessions/{sessions[0]}"))
        turn_body = {"prompt": "hello", "provider_params": {"reply": "ok"}}
        status, turn_result = await setup.request(post(f"/sessions/{sessions[0]}/messages", turn_body))
        fan_sid = sessions[0]
        setup.stream.socket.close()

        sample_frame = b""
        conn = await trio.open_tcp_stream("127.0.0.1", rest_port)
        async with conn:  # one real text_delta frame, for the baseline's frame size
            await conn.send_all(get(f"/sessions/{fan_sid}/events?after=0"))
            while b"\n\n" not in sample_frame.partition(b"event: text_delta")[2]:
                sample_frame += await conn.receive_some(65536)
        frame_bytes = len(sample_frame.partition(b"event: text_delta")[2].partition(b"\n\n")[0]) + 19

        bare, bare_port = start([sys.executable, __file__, "--bare-server", str(len(read_body)),
                                 str(len(turn_result)), str(frame_bytes)])
        try:
            print(f"bodies: GET {len(read_body)} B, turn result {len(turn_result)} B, SSE frame ~{frame_bytes} B; "
                  f"{args.connections} connections, {args.seconds:.0f} s per figure")
            rows = []
            bare_get = await rate(bare_port, [get("/get")] * args.connections, args.seconds)
            rest_get = await rate(rest_port, [get(f"/sessions/{s}") for s in sessions], args.seconds)
            rows.append(("GET /sessions/{id}", "req/s", rest_get, bare_get))
            bare_post = await rate(bare_port, [post("/post", turn_body)] * args.connections, args.seconds)
            rest_turn = await rate(rest_port, [post(f"/sessions/{s}/messages", turn_body) for s in sessions],
                                   args.seconds)
            rows.append(("full mock turn (POST .../messages, sqlite)", "turns/s", rest_turn, bare_post))
            for subscribers, words in ((1, args.words1), (100, args.words100)):
                # max_tokens above the reply: the mock honours it (a word is a token).
                fire = post(f"/sessions/{fan_sid}/messages", {"prompt": "go", "max_tokens": words + 100,
                                                              "provider_params": {"reply_words": words}})
                rest_rate, rest_total = await fanout(
                    rest_port, get(f"/sessions/{fan_sid}/events"), b"session_loaded", fire, b"event: run_completed",
                    b"event: text_delta", subscribers)
                bare_rate, bare_total = await fanout(
                    bare_port, get("/events"), b"event: ready", get(f"/fire?n={words}"), b"event: end",
                    b"event: text_delta", subscribers)
                lost = words * subscribers - rest_total
                rows.append((f"SSE deltas to {subscribers} subscriber(s), {words:,} words", "deltas/s per sub",
                             rest_rate, bare_rate))
                print(f"  {subscribers} subscriber(s): rkat-rest delivered {rest_total:,} of {words * subscribers:,} "
                      f"deltas ({lost:,} lost to stream_truncated), bare {bare_total:,}; aggregate "
                      f"{rest_rate * subscribers:,.0f} vs {bare_rate * subscribers:,.0f} deltas/s")
        finally:
            stop(bare)
    finally:
        stop(rest)
    print(f"{'figure':<52} {'unit':<17} {'rkat-rest':>12} {'bare hypercorn':>15} {'ratio':>7}")
    for name, unit, rest_value, bare_value in rows:
        print(f"{name:<52} {unit:<17} {rest_value:>12,.0f} {bare_value:>15,.0f} {rest_value / bare_value:>6.2f}x")
    # No target in the issue: run_all.py repeats these lines in its summary.
    for name, unit, rest_value, bare_value in rows:
        print(f"RATIO {name}: {rest_value:,.0f} {unit} = {rest_value / bare_value:.2f}x bare hypercorn")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--bare-server":
        bare_server(*(int(a) for a in sys.argv[2:]))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per request-rate figure")
    parser.add_argument("--connections", type=int, default=10, help="concurrent connections (and sessions)")
    parser.add_argument("--words1", type=int, default=20_000, help="deltas of the 1-subscriber turn")
    parser.add_argument("--words100", type=int, default=2_000, help="deltas of the 100-subscriber turn")
    args = parser.parse_args()
    header("rest_throughput: rkat-rest vs a bare hypercorn app")
    with tempfile.TemporaryDirectory() as root:
        trio.run(measure, args, root)


if __name__ == "__main__":
    main()
