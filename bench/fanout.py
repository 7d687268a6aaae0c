"""Text deltas per second delivered through a session's event bus to its subscribers.

One session (memory backend, so the store is out of the picture), one turn whose
mock reply is ``reply_words`` filler words with no delay: one ``text_delta``
event per word (100,000, the mock's limit, with one subscriber; 50,000 with ten, which is already
500,000 deliveries, to stay within a few seconds). K subscribers (1, then 10), each from ``service.subscribe``
before the turn starts, count ``text_delta`` envelopes until ``run_completed``.
Rate = text deltas a subscriber received / wall time from ``start_turn`` to the
last subscriber seeing ``run_completed``. Drops are reported: a subscriber whose
queue is full loses events and gets a ``stream_truncated`` marker instead.

With no token delay the mock hands over 16 words per scheduler turn (one
"network read", ``_WORDS_PER_READ`` in ``meerkat/providers/mock.py``), and
``Subscription.receive`` hands a reader what is already queued without a trip
through the scheduler (yielding every 64 events, ``_YIELD_EVERY`` in
``actors/bus.py``): a burst of 16 deltas costs each reader one wake-up.

Each K runs twice: with the default ``subscriber_capacity`` (256) and with one
large enough to hold the whole turn, so the figures show both what a reader
gets by default and the bus's throughput with nothing dropped.

Baselines in the same run, the same number of items per consumer:

* ``channel, await send``: a producer ``await send.send(item)`` into K trio
  memory channels (buffer 256), K consumers ``async for`` (the idiomatic trio
  pipeline: one scheduler step per item per consumer; with K=10 the producer
  checkpoints 10 times per item).
* ``channel, bus shape``: the bus's own pacing with bare trio channels: per item
  ``send_nowait`` into K unbounded channels, one checkpoint per read of 16
  items; consumers take what is queued with ``receive_nowait`` (a checkpoint
  every 64) and ``await receive()`` only when empty. What the host adds on top
  of this is the turn loop, the envelopes and the bus.

``--ablate`` (an experiment, not a target figure) repeats the lossless turns
with the mock yielding after every word and/or envelope ids from ``new_uuid7``,
i.e. with the host's earlier pacing and event id, to size what each is worth.

Targets: >= 100,000 deltas/s to one subscriber, >= 30,000/s to each of 10.

    .venv/bin/python bench/fanout.py [--words N] [--words10 N] [--ablate]
"""

from __future__ import annotations

import argparse
import math

import _common  # noqa: F401  (puts the repo root on sys.path)
from _common import header, now, verdict

import trio

from actors import HostOptions, open_service
from actors import bus as bus_module
from meerkat.providers import mock as mock_module
from meerkat.providers.catalog import MOCK_PARAMS_SCHEMA

TARGETS = {1: 100_000.0, 10: 30_000.0}
DEFAULT_CAPACITY = HostOptions().subscriber_capacity
# The host's pacing, read from the host so the "bus shape" baseline follows it.
WORDS_PER_READ = getattr(mock_module, "_WORDS_PER_READ", 1)
YIELD_EVERY = getattr(bus_module, "_YIELD_EVERY", 1)
# The mock refuses longer replies (one request must not freeze the host), so this is
# the longest turn the bench can ask for.
MAX_WORDS = int(MOCK_PARAMS_SCHEMA["reply_words"]["maximum"])


async def host_fanout(words: int, k: int, capacity: int) -> dict:
    """One turn of ``words`` deltas to ``k`` subscribers; returns the figures."""
    options = HostOptions(idle_timeout=3600.0, subscriber_capacity=capacity, ring_size=1024)
    async with open_service(backend="memory", options=options) as service:
        sid = (await service.create_session(provider="mock", provider_params={"reply_words": words},
                                            max_tokens=words + 10, run_immediately=False)).session_id
        # warm-up turn (same session, short)
        await service.start_turn(sid, "warm up", provider_params={"reply_words": 200})
        subs = [await service.subscribe(sid) for _ in range(k)]
        deltas = [0] * k
        markers = [0] * k
        done_at = [0.0] * k
        turn_done = 0.0

        async def consume(i: int) -> None:
            sub = subs[i]
            async for envelope in sub:
                kind = envelope.type
                if kind == "text_delta":
                    deltas[i] += 1
                elif kind == "stream_truncated":
                    markers[i] += 1
                elif kind == "run_completed":
                    done_at[i] = now()
                    break
            sub.close()

        async def turn() -> None:
            nonlocal turn_done
            await service.start_turn(sid, "go", provider_params={"reply_words": words})
            turn_done = now()

        async with trio.open_nursery() as nursery:
            for i in range(k):
                nursery.start_soon(consume, i)
            await trio.sleep(0)
            t0 = now()
            nursery.start_soon(turn)
        wall = max(done_at) - t0
        dropped = [s.statistics().dropped for s in subs]
    return {
        "k": k, "capacity": capacity, "wall": wall, "turn_wall": turn_done - t0, "deltas": deltas,
        "dropped": dropped, "markers": markers,
        "rate_each": min(deltas) / wall, "rate_total": sum(deltas) / wall,
        "produced_rate": words / (turn_done - t0),
    }


async def channel_await_send(n: int, k: int) -> float:
    """Wall seconds: producer awaits send into k channels (buffer 256), k consumers."""
    pairs = [trio.open_memory_channel[object](256) for _ in range(k)]
    item = object()

    async def producer() -> None:
        sends = [s for s, _ in pairs]
        for _ in range(n):
            for s in sends:
                await s.send(item)
        for s in sends:
            await s.aclose()

    async def consumer(r) -> None:
        count = 0
        async for _ in r:
            count += 1
        assert count == n

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _, r in pairs:
            nursery.start_soon(consumer, r)
        nursery.start_soon(producer)
    return now() - t0


async def channel_bus_shape(n: int, k: int) -> float:
    """Wall seconds: the bus's pacing on bare trio channels. The producer ``send_nowait``s
    into k unbounded channels and checkpoints once per WORDS_PER_READ items; each
    consumer takes queued items with ``receive_nowait`` (checkpointing every
    YIELD_EVERY) and awaits ``receive()`` only when its channel is empty."""
    pairs = [trio.open_memory_channel[object](math.inf) for _ in range(k)]
    item = object()

    async def producer() -> None:
        sends = [s for s, _ in pairs]
        checkpoint = trio.lowlevel.checkpoint
        for i in range(n):
            if i % WORDS_PER_READ == 0:
                await checkpoint()
            for s in sends:
                s.send_nowait(item)
        for s in sends:
            await s.aclose()

    async def consumer(r) -> None:
        count = since = 0
        checkpoint = trio.lowlevel.checkpoint
        while True:
            try:
                r.receive_nowait()
            except trio.WouldBlock:
                try:
                    await r.receive()
                except trio.EndOfChannel:
                    break
                since = 0
            except trio.EndOfChannel:
                break
            else:
                since += 1
                if since >= YIELD_EVERY:
                    since = 0
                    await checkpoint()
            count += 1
        assert count == n

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _, r in pairs:
            nursery.start_soon(consumer, r)
        nursery.start_soon(producer)
    return now() - t0


async def ablation(words_by_k: dict[int, int]) -> None:
    """Experiment (not a target figure): the lossless turns again with the mock yielding
    after every word and/or envelope ids minted by ``new_uuid7`` (the pacing and the id
    of the host before those were changed), to size what each change is worth."""
    import meerkat.events as events_module
    from meerkat.ids import new_event_id, new_uuid7

    print("\nexperiment (--ablate): deltas/s per subscriber, lossless capacity")
    try:
        for per_word, old_ids in ((False, False), (True, False), (False, True), (True, True)):
            mock_module._WORDS_PER_READ = 1 if per_word else WORDS_PER_READ  # type: ignore[attr-defined]
            events_module.new_event_id = new_uuid7 if old_ids else new_event_id  # type: ignore[attr-defined]
            label = " + ".join(x for x, on in (("mock yields every word", per_word),
                                               ("event ids from new_uuid7", old_ids)) if on) or "as is"
            rates = [(await host_fanout(words, k, words + 64))["rate_each"] for k, words in words_by_k.items()]
            print(f"  {label:<52} " + "  ".join(f"K={k}: {rate:>9,.0f}/s" for k, rate in zip(words_by_k, rates)))
    finally:
        mock_module._WORDS_PER_READ = WORDS_PER_READ  # type: ignore[attr-defined]
        events_module.new_event_id = new_event_id  # type: ignore[attr-defined]


async def main(words_by_k: dict[int, int], ablate: bool) -> None:
    header("fanout: text deltas/s to subscribers (mock reply_words, no delay, memory backend)")
    print(f"host pacing: the mock yields every {WORDS_PER_READ} words; a reader yields every {YIELD_EVERY} "
          f"queued events")
    await channel_bus_shape(1000, 1)  # warm-up
    results = []
    for k, words in words_by_k.items():
        base_await_s = await channel_await_send(words, k)
        base_shape_s = await channel_bus_shape(words, k)
        print(f"\nK={k} subscriber(s), {words:,} deltas each")
        print(f"  baseline channel, await send (buf 256): {words / base_await_s:>12,.0f} items/s per consumer "
              f"({base_await_s:.2f} s)")
        print(f"  baseline channel, bus shape:            {words / base_shape_s:>12,.0f} items/s per consumer "
              f"({base_shape_s:.2f} s)")
        for capacity in (DEFAULT_CAPACITY, words + 64):
            r = await host_fanout(words, k, capacity)
            ok = sum(r["dropped"]) == 0
            print(f"  host, subscriber_capacity={capacity:<7,}: {r['rate_each']:>12,.0f} deltas/s per subscriber "
                  f"(min over subscribers), {r['rate_total']:>10,.0f}/s total, wall {r['wall']:.2f} s "
                  f"(turn itself {r['turn_wall']:.2f} s)")
            print(f"      delivered per subscriber: min {min(r['deltas']):,} max {max(r['deltas']):,} of {words:,}; "
                  f"dropped {sum(r['dropped']):,} in {sum(r['markers'])} stream_truncated markers"
                  + ("" if ok else "  <- LOSSY"))
            print(f"      ratio host / channel(await send): {r['rate_each'] / (words / base_await_s):.2f}x, "
                  f"host / channel(bus shape): {r['rate_each'] / (words / base_shape_s):.2f}x")
            r["base_await"] = words / base_await_s
            r["base_shape"] = words / base_shape_s
            results.append(r)

    # What one delta costs, and the pieces of it that are easy to time in isolation.
    import timeit

    from meerkat.events import TextDelta, make_envelope
    from meerkat.ids import new_event_id, new_uuid7

    def per_call_us(fn) -> float:  # best of 5, so a noisy neighbour does not inflate it
        reps = 20_000
        return min(timeit.repeat(fn, number=reps, repeat=5)) / reps * 1e6

    event_id_us = per_call_us(new_event_id)
    uuid_us = per_call_us(new_uuid7)
    delta = TextDelta(delta="lorem ", assistant_message_id=None)
    env_us = per_call_us(lambda: make_envelope("s", 1, delta))
    words1 = words_by_k.get(1, MAX_WORDS)
    filler = mock_module._FILLER
    t0 = now()  # what the mock does before its first word: build the reply, split it into words
    mock_module._split_words(" ".join(filler[i % len(filler)] for i in range(words1)))
    split_s = now() - t0
    one = next(r for r in results if r["k"] == 1 and r["capacity"] != DEFAULT_CAPACITY)
    host_us, base_us = 1e6 / one["rate_each"], 1e6 / one["base_shape"]
    print(f"\nper delta, K=1: host {host_us:.2f} us vs bus-shape channel {base_us:.2f} us "
          f"(host adds {host_us - base_us:.2f} us); make_envelope {env_us:.2f} us, of which the event id "
          f"(new_event_id) {event_id_us:.2f} us (new_uuid7, used for session/run ids: {uuid_us:.2f} us)")
    print(f"the mock builds and splits a {words1:,}-word reply up front in {split_s * 1000:.0f} ms "
          f"({split_s / one['wall'] * 100:.0f}% of the K=1 wall, included in the figure)")

    if ablate:
        await ablation(words_by_k)

    print()
    for r in results:
        k = r["k"]
        if r["capacity"] == DEFAULT_CAPACITY:
            continue
        target = TARGETS[k]
        print(f"TARGET >= {target:,.0f} deltas/s to each of {k} (lossless, capacity {r['capacity']:,}): "
              f"{r['rate_each']:,.0f}/s ({r['rate_each'] / target:.2f}x of target)  "
              f"{verdict(r['rate_each'] >= target and sum(r['dropped']) == 0)}")
    for r in results:
        if r["capacity"] != DEFAULT_CAPACITY:
            continue
        dropped = sum(r["dropped"])
        loss = "no drops" if dropped == 0 else f"{dropped:,} dropped"
        print(f"  with the default capacity {DEFAULT_CAPACITY}, K={r['k']}: {r['rate_each']:,.0f} delivered/s each, "
              f"{loss}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--words", type=int, default=MAX_WORDS,
                        help=f"deltas in the turn with 1 subscriber (default and most: {MAX_WORDS}, the mock's limit)")
    parser.add_argument("--words10", type=int, default=50_000,
                        help="deltas in the turn with 10 subscribers (default 50000; 10x the deliveries)")
    parser.add_argument("--ablate", action="store_true",
                        help="also run the lossless turns with the mock yielding every word and/or event ids from "
                             "new_uuid7, to size each change (not a target figure)")
    args = parser.parse_args()
    for flag, value in (("--words", args.words), ("--words10", args.words10)):
        if not 0 < value <= MAX_WORDS:
            parser.error(f"{flag} must be between 1 and {MAX_WORDS} (the mock's reply_words limit), got {value}")
    trio.run(main, {1: args.words, 10: args.words10}, args.ablate)
