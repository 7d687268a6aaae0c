"""StoreIO: blocking store calls batched into few thread hops, never orphaned."""

from __future__ import annotations

import threading

import pytest
import trio

from actors.storeio import StoreIO


async def test_concurrent_calls_share_thread_hops_and_keep_their_results():
    io = StoreIO(workers=1)
    results = {}
    async with trio.open_nursery() as nursery:
        await nursery.start(io.run)

        async def one(i):
            results[i] = await io.call(lambda x: (x * 2, threading.get_ident()), i)

        async with trio.open_nursery() as calls:
            for i in range(200):
                calls.start_soon(one, i)
        nursery.cancel_scope.cancel()
    assert {i: r[0] for i, r in results.items()} == {i: i * 2 for i in range(200)}
    assert threading.get_ident() not in {r[1] for r in results.values()}  # ran off the event loop
    stats = io.statistics()
    assert stats.calls == 200 and stats.hops < 50


async def test_errors_reach_their_caller_only():
    io = StoreIO()

    def boom():
        raise ValueError("disk says no")

    async with trio.open_nursery() as nursery:
        await nursery.start(io.run)
        with pytest.raises(ValueError, match="disk says no"):
            await io.call(boom)
        assert await io.call(lambda: "fine") == "fine"
        nursery.cancel_scope.cancel()


async def test_a_cancelled_caller_still_sees_its_write_through():
    io = StoreIO()
    done = []
    gate = threading.Event()

    def slow_write():
        gate.wait(5)
        done.append("written")
        return "ok"

    async def open_gate_later():
        await trio.sleep(0.2)
        gate.set()

    async with trio.open_nursery() as nursery:
        await nursery.start(io.run)
        nursery.start_soon(open_gate_later)
        result = None
        with trio.move_on_after(0.05):
            result = await io.call(slow_write)  # waits for the write although the scope expires
        assert result == "ok" and done == ["written"]
        nursery.cancel_scope.cancel()


async def test_calls_made_during_shutdown_still_run():
    io = StoreIO()
    seen = []
    async with trio.open_nursery() as nursery:
        await nursery.start(io.run)
        nursery.cancel_scope.cancel()
        with trio.CancelScope(shield=True):
            seen.append(await io.call(lambda: "after cancel"))
    seen.append(await io.call(lambda: "after exit"))
    assert seen == ["after cancel", "after exit"]
