"""The cross-process link to a running turn: its live events and its interrupt.

Several processes may serve one realm (a REST daemon, an SDK's ``rkat-rpc``, the
CLI). The store tells them which process owns a running turn (its lease); this
link lets the others reach that turn. A process that runs turns on a disk-backed
realm serves the link on a loopback TCP port chosen by the OS, and writes the
address and a random token into each run record it begins. Anyone able to read
the store (the same trust boundary as the transcripts themselves) can therefore
follow a run's events as they happen or interrupt it; anyone else can't, since
the token is checked first.

The protocol is one JSON line in, JSON lines out:

* ``{"token", "op": "follow", "session_id", "run_id", "after_seq"}``: the owner answers
  with the session's events after ``after_seq`` (replayed from its ring, then live),
  one encoded envelope per line, and closes after the next terminal event (at once
  after the replay when ``run_id`` no longer runs there).
* ``{"token", "op": "interrupt", "session_id", "run_id"}``: the owner interrupts
  the run if it still runs it, and answers ``{"interrupted": bool}`` once the run
  has ended (committed as interrupted).
* ``{"token", "op": "push", "session_id"}`` followed by envelope lines: the other
  direction. A process starting a turn sends its events to each process that
  follows the session (see :mod:`actors.watchers`), which republishes them.
"""

from __future__ import annotations

import hmac
import logging
import secrets
from typing import AsyncGenerator, AsyncIterator, Literal

import msgspec
import trio

from meerkat import observability
from meerkat.events import TERMINAL_EVENT_TYPES, EventEnvelope, decode_envelope, encode_envelope
from meerkat.store import RunRecord

from .bus import Subscription
from .coordination import CoordinationHost
from .messages import Interrupt
from .watchers import Watcher

__all__ = ["LiveServer", "follow_run", "interrupt_run", "push_events", "LIVE_HOST"]

log = logging.getLogger("rkat.live")

#: The link only ever listens on loopback: processes sharing a realm share a machine.
LIVE_HOST = "127.0.0.1"
#: A request is one short line; anything longer is not a peer of ours.
MAX_REQUEST_BYTES = 4096
#: How long a peer may take to send its request line.
REQUEST_TIMEOUT = 5.0
#: Envelopes sent in one write when they are already queued.
BATCH = 256
#: Longest a peer may take to accept one batch of pushed events before it is dropped.
SEND_TIMEOUT = 5.0


class LiveRequest(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """One request on the link."""

    token: str
    op: Literal["follow", "interrupt", "push"]
    session_id: str
    run_id: str | None = None
    after_seq: int = 0


class _InterruptAnswer(msgspec.Struct, kw_only=True):
    interrupted: bool


_decode_request = msgspec.json.Decoder(LiveRequest).decode
_decode_answer = msgspec.json.Decoder(_InterruptAnswer).decode
_encode = msgspec.json.Encoder().encode


class LiveServer:
    """Serves the link for one realm supervisor's running turns."""

    def __init__(self, supervisor: CoordinationHost) -> None:
        self._supervisor = supervisor
        self.token = secrets.token_urlsafe(24)
        #: ``host:port`` once listening.
        self.endpoint: str | None = None

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on a free loopback port and serve peers until cancelled."""
        listeners = await trio.open_tcp_listeners(0, host=LIVE_HOST)
        port = listeners[0].socket.getsockname()[1]
        self.endpoint = f"{LIVE_HOST}:{port}"
        task_status.started()
        await trio.serve_listeners(self._serve_peer, listeners)

    async def _serve_peer(self, stream: trio.SocketStream) -> None:
        async with stream:
            try:
                with trio.fail_after(REQUEST_TIMEOUT):
                    line, rest = await _read_line(stream)
                request = _decode_request(line)
                if not hmac.compare_digest(request.token.encode(), self.token.encode()):
                    return
                if request.op == "follow":
                    await self._follow(stream, request)
                elif request.op == "push":
                    await self._receive_push(stream, request, rest)
                else:
                    interrupted = await self._interrupt(request)
                    await stream.send_all(_encode(_InterruptAnswer(interrupted=interrupted)) + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError,
                    msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
                log.debug("live peer dropped: %r", exc)
            except Exception:  # a bug must cost this peer only, never the realm's other work
                log.exception("live link request failed")

    async def _follow(self, stream: trio.SocketStream, request: LiveRequest) -> None:
        actor = self._supervisor.live_actor(request.session_id)
        if actor is None:
            return
        subscription = actor.follow(request.after_seq)
        if subscription is None:
            return
        if actor.running_run_id != request.run_id:
            # The run ended here already: send what the ring kept after ``after_seq`` and stop,
            # rather than wait for some later turn's terminal event with the peer held open.
            subscription.close()
        async with subscription:
            await _send_batches(stream, subscription, None)

    async def _receive_push(self, stream: trio.SocketStream, request: LiveRequest, first: bytes) -> None:
        actor = self._supervisor.live_actor(request.session_id)
        if actor is None:  # nobody follows the session here any more
            return
        with actor.relaying():
            async for envelope in _envelopes(stream, first):
                if not actor.relay(envelope):
                    return
                if envelope.type in TERMINAL_EVENT_TYPES:
                    return

    async def _interrupt(self, request: LiveRequest) -> bool:
        actor = self._supervisor.live_actor(request.session_id)
        if actor is None or request.run_id is None or actor.running_run_id != request.run_id:
            return False
        message = Interrupt()
        observability.cross_process_interrupt("received")
        await self._supervisor.deliver(request.session_id, message)
        result = await message.reply.wait()
        return result.interrupted


async def _read_line(stream: trio.SocketStream, limit: int = MAX_REQUEST_BYTES) -> tuple[bytes, bytes]:
    """The first line, and whatever arrived after it."""
    buffer = bytearray()
    while b"\n" not in buffer:
        chunk = await stream.receive_some(65536)
        if not chunk:
            break
        buffer += chunk
        if buffer.find(b"\n") > limit or (b"\n" not in buffer and len(buffer) > limit):
            raise ValueError("request line too long")
    line, _, rest = bytes(buffer).partition(b"\n")
    return line, rest


async def _envelopes(stream: trio.SocketStream, pending: bytes = b"") -> AsyncIterator[EventEnvelope]:
    """Envelope lines from ``stream`` until it closes (``pending``: bytes already read)."""
    while True:
        lines = pending.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line:
                yield decode_envelope(line)
        chunk = await stream.receive_some(65536)
        if not chunk:
            return
        pending += chunk


async def _send_batches(stream: trio.SocketStream, subscription: Subscription, timeout: float | None) -> None:
    """Write the subscription's envelopes as lines, a queued burst per write, until it ends."""
    async for envelope in subscription:
        batch = [envelope]
        while len(batch) < BATCH:
            try:
                batch.append(subscription.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel):
                break
        data = b"".join(encode_envelope(e) + b"\n" for e in batch)
        if timeout is None:
            await stream.send_all(data)
        else:
            with trio.fail_after(timeout):
                await stream.send_all(data)


async def _connect(endpoint: str | None) -> trio.SocketStream | None:
    """A connection to a process's live link, or None if there is none or it can't be reached."""
    if not endpoint:
        return None
    host, _, port = endpoint.rpartition(":")
    if host != LIVE_HOST or not port.isdigit():
        return None  # only ever loopback: never let a file or store row send us elsewhere
    try:
        with trio.fail_after(REQUEST_TIMEOUT):
            return await trio.open_tcp_stream(host, int(port))
    except (OSError, trio.TooSlowError) as exc:
        log.debug("live link %s unreachable: %r", endpoint, exc)
        return None


async def follow_run(run: RunRecord, after_seq: int) -> AsyncGenerator[EventEnvelope, None]:
    """The session's events after ``after_seq`` as the run's owner publishes them.

    Ends after the next terminal event, or early when the owner goes away
    (nothing is raised: the caller learns how the run ended from the store).
    """
    stream = await _connect(run.live_endpoint)
    if stream is None:
        return
    async with stream:
        request = LiveRequest(token=run.live_token or "", op="follow", session_id=run.session_id,
                              run_id=run.run_id, after_seq=after_seq)
        try:
            await stream.send_all(_encode(request) + b"\n")
            async for envelope in _envelopes(stream):
                yield envelope
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError,
                msgspec.DecodeError, msgspec.ValidationError) as exc:
            log.debug("live link of run %s ended: %r", run.run_id, exc)


async def interrupt_run(run: RunRecord, timeout: float) -> bool | None:
    """Ask the run's owner to interrupt it: its answer, or None if the owner could not be reached."""
    stream = await _connect(run.live_endpoint)
    if stream is None:
        return None
    async with stream:
        request = LiveRequest(token=run.live_token or "", op="interrupt", session_id=run.session_id,
                              run_id=run.run_id)
        try:
            with trio.fail_after(timeout):
                await stream.send_all(_encode(request) + b"\n")
                line, _ = await _read_line(stream)
            return _decode_answer(line).interrupted if line else None
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError,
                msgspec.DecodeError, msgspec.ValidationError, ValueError) as exc:
            log.debug("interrupt of run %s over the live link failed: %r", run.run_id, exc)
            return None


async def push_events(watcher: Watcher, session_id: str, subscription: Subscription) -> None:
    """Send a turn's events to a process that follows the session, until the turn's terminal event.

    A watcher that is gone, refuses, or stalls for longer than a few seconds is
    dropped: it must never hold up the turn (the subscription only ever drops
    events when full, it never blocks the publisher).
    """
    async with subscription:
        stream = await _connect(watcher.endpoint)
        if stream is None:
            return
        async with stream:
            try:
                request = LiveRequest(token=watcher.token, op="push", session_id=session_id)
                with trio.fail_after(SEND_TIMEOUT):
                    await stream.send_all(_encode(request) + b"\n")
                await _send_batches(stream, subscription, SEND_TIMEOUT)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.TooSlowError, OSError) as exc:
                log.debug("push of session %s to %s ended: %r", session_id, watcher.owner, exc)
