"""A client of ``rkat-rpc`` that stops reading stdout costs bounded memory.

Event notifications (``session/stream_event`` of a standalone subscription) are
queued for the writer only while fewer than ``max_queued_event_lines`` wait; past
that the forwarder waits, the subscription's own bounded buffer fills, and the
client sees the gap as a ``stream_truncated`` marker once it reads again.
"""

from __future__ import annotations

import json

import trio
import trio.testing

from actors import HostOptions, open_service
from surfaces.rpc.server import RpcConnection

WORDS = 3000
QUEUE_LIMIT = 64
CAPACITY = 128


class StalledOutput(trio.abc.SendStream):
    """stdout of a client that does not read until ``reading`` is set."""

    def __init__(self) -> None:
        self.reading = trio.Event()
        self.data = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.reading.wait()
        self.data += data

    async def wait_send_all_might_not_block(self) -> None:
        await self.reading.wait()

    async def aclose(self) -> None:
        pass


async def test_a_client_that_stops_reading_gets_a_truncation_marker_not_an_unbounded_queue():
    options = HostOptions(subscriber_capacity=CAPACITY)
    async with open_service(backend="memory", options=options) as service:
        session_id = (await service.create_session(provider="mock", run_immediately=False)).session_id
        output = StalledOutput()
        connection = RpcConnection(service, output, max_queued_event_lines=QUEUE_LIMIT)
        to_server, from_client = trio.testing.memory_stream_one_way_pair()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(connection.serve, from_client)
            await to_server.send_all(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "session/stream_open",
                                                 "params": {"session_id": session_id}}).encode() + b"\n")
            with trio.fail_after(10):
                while not connection._methods.live._streams:  # the subscription is open
                    await trio.sleep(0.01)
            with trio.fail_after(30):
                await service.start_turn(session_id, "go", provider_params={"reply_words": WORDS})
            await trio.sleep(0.2)  # let the forwarder take what it can
            queued = connection._outbox.statistics().current_buffer_used
            assert queued <= QUEUE_LIMIT + 2, f"{queued} lines queued for a client that is not reading"

            output.reading.set()  # the client reads again: it sees the gap, then the end of the turn
            await to_server.send_all(json.dumps({"jsonrpc": "2.0", "id": 2, "method": "session/stream_close",
                                                 "params": {"stream_id": next(iter(connection._methods.live._streams))}
                                                 }).encode() + b"\n")
            await to_server.aclose()
        lines = [json.loads(line) for line in output.data.splitlines()]
    events = [m["params"]["event"] for m in lines if m.get("method") == "session/stream_event"]
    kinds = [event["payload"]["type"] if "payload" in event else event.get("type") for event in events]
    assert "stream_truncated" in kinds, kinds[:5]
    assert kinds[-1] == "run_completed", kinds[-5:]
    assert sum(kind == "text_delta" for kind in kinds) < WORDS
    sequences = [m["params"]["sequence"] for m in lines if m.get("method") == "session/stream_event"]
    assert sequences == list(range(1, len(sequences) + 1))
    assert any(m.get("method") == "session/stream_end" for m in lines)
