"""The per-session event bus: sequence numbers, a replay ring and bounded fan-out.

Each session actor owns one :class:`EventBus`. Publishing assigns the next
``seq``, wraps the payload in its envelope once, keeps it in a bounded ring (for
subscribers resuming from a cursor) and offers it to every subscriber without
ever waiting. A subscriber whose queue is full loses its oldest queued events and
reads a ``stream_truncated`` marker (seq 0) counting them before the newest ones,
so a slow reader never slows the turn and still sees how the run ended.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Iterable

import trio

from meerkat import observability
from meerkat.events import TERMINAL_EVENT_TYPES, AgentEvent, EventEnvelope, lag_marker, make_envelope

__all__ = ["EventBus", "Subscription", "BusStatistics", "SubscriptionStatistics"]


#: Queued events a subscriber takes before it yields to the scheduler anyway.
_YIELD_EVERY = 64


class _Gap:
    """Stands in a subscriber's queue where events were dropped."""

    __slots__ = ("dropped",)

    def __init__(self, dropped: int) -> None:
        self.dropped = dropped


@dataclass(frozen=True, slots=True)
class SubscriptionStatistics:
    """One subscriber's queue depth, capacity and losses."""

    queued: int
    capacity: int
    delivered: int
    dropped: int
    closed: bool


class Subscription:
    """An async iterator of envelopes from one session, live from its starting point.

    Use it as ``async with`` (or call :meth:`close`) to detach it from the bus.
    Iteration ends when the session closes the stream (archive, shutdown) or,
    for a per-run subscription, after that run's terminal event.
    """

    def __init__(self, bus: "EventBus", capacity: int, until_terminal: bool, relay: bool = False) -> None:
        self._bus = bus
        #: Carries events to another process (not a reader of this one).
        self.relay = relay
        self._capacity = capacity
        self._queue: deque[EventEnvelope | _Gap] = deque()
        self._waiter: trio.Event | None = None
        self._closed = False
        self._until_terminal = until_terminal
        self._delivered = 0
        self._dropped = 0
        self._since_yield = 0
        #: How many queued items, from the front, are a replay (never dropped, not in the capacity).
        self._replayed = 0

    # -- bus side --

    def _offer(self, envelope: EventEnvelope, replay: bool = False) -> None:
        queue = self._queue
        if replay:
            # A replay is queued whole, as subscribe() queues a cursor's: it is what the session
            # already had, not a live stream outrunning the reader. What is queued up to it is kept
            # out of the capacity, so later live events do not push it out either.
            queue.append(envelope)
            self._replayed = len(queue)
        else:
            head = self._replayed  # the oldest live event, or the marker in front of the live ones
            first_live = queue[head] if len(queue) > head else None
            gap = first_live if isinstance(first_live, _Gap) else None
            if len(queue) - head - (gap is not None) >= self._capacity:
                # Full: drop the oldest live event, so the reader keeps the newest ones (the
                # run's terminal event included) behind one marker in front of them.
                self._dropped += 1
                observability.events_dropped(1)
                if gap is not None:
                    del queue[head + 1]
                    gap.dropped += 1
                else:
                    queue[head] = _Gap(1)
            queue.append(envelope)
        if self._until_terminal and envelope.type in TERMINAL_EVENT_TYPES:
            self._end()
        self._wake()

    def _wake(self) -> None:
        if self._waiter is not None:
            self._waiter.set()
            self._waiter = None

    def _end(self) -> None:
        self._closed = True
        self._bus._detach(self)
        self._wake()

    # -- reader side --

    def receive_nowait(self) -> EventEnvelope:
        """The next envelope if one is queued; trio.WouldBlock, or trio.EndOfChannel at the end."""
        if self._queue:
            item = self._queue.popleft()
            self._replayed = max(0, self._replayed - 1)
            self._delivered += 1
            if isinstance(item, _Gap):
                return lag_marker(self._bus.session_id, item.dropped)
            return item
        if self._closed:
            raise trio.EndOfChannel()
        raise trio.WouldBlock()

    async def receive(self) -> EventEnvelope:
        """The next envelope; raises trio.EndOfChannel when the stream has ended.

        When events are already queued it hands them over without a trip through
        the scheduler (a burst of deltas costs one wake-up, not one per event),
        but yields every ``_YIELD_EVERY`` events so a busy stream cannot starve others.
        """
        try:
            envelope = self.receive_nowait()
        except trio.WouldBlock:
            while True:
                self._waiter = trio.Event()
                await self._waiter.wait()
                try:
                    envelope = self.receive_nowait()
                except trio.WouldBlock:
                    continue
                self._since_yield = 0
                return envelope
        self._since_yield += 1
        if self._since_yield >= _YIELD_EVERY:
            self._since_yield = 0
            await trio.lowlevel.checkpoint()
        else:
            await trio.lowlevel.checkpoint_if_cancelled()
        return envelope

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> EventEnvelope:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    @property
    def starts_with_gap(self) -> bool:
        """Whether the next item is a gap marker (the ring did not hold every event asked for)."""
        return bool(self._queue) and isinstance(self._queue[0], _Gap)

    def fill_gap(self, logged: list[EventEnvelope]) -> None:
        """Put ``logged`` (events read from the durable log) where the ring's gap marker is.

        A subscription resumed from a cursor the ring no longer covers starts with
        a gap; the log has those events. Called without a checkpoint between the
        read and the merge, so live events queued meanwhile keep their place after
        them (those the log also holds are not repeated).
        """
        queue = self._queue
        if not logged or not queue or not isinstance(queue[0], _Gap):
            return
        last = logged[-1].seq
        old, replayed = list(queue), self._replayed  # the gap and the ring's replay lead the queue

        def kept(items: list[EventEnvelope | _Gap]) -> list[EventEnvelope | _Gap]:
            return [item for item in items if isinstance(item, _Gap) or item.seq == 0 or item.seq > last]

        front, rest = kept(old[1:replayed]), kept(old[max(replayed, 1):])
        queue.clear()
        queue.extend(logged)
        queue.extend(front)
        queue.extend(rest)
        # The log's events and the ring's replay stay out of the capacity: live events
        # arriving before the reader has caught up must not push them out.
        self._replayed = len(logged) + len(front)
        self._wake()

    def close(self) -> None:
        """Detach from the bus; queued events can still be read, then iteration ends."""
        if not self._closed:
            self._end()

    async def aclose(self) -> None:
        """Async spelling of :meth:`close`."""
        self.close()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.close()

    def statistics(self) -> SubscriptionStatistics:
        """Queue depth and losses."""
        return SubscriptionStatistics(
            queued=len(self._queue), capacity=self._capacity, delivered=self._delivered,
            dropped=self._dropped, closed=self._closed,
        )


@dataclass(frozen=True, slots=True)
class BusStatistics:
    """The bus: last seq, ring fill and subscribers."""

    last_seq: int
    ring_size: int
    ring_used: int
    subscribers: int
    published: int


class EventBus:
    """Sequence numbers, replay ring and fan-out for one session."""

    def __init__(self, session_id: str, *, last_seq: int = 0, ring_size: int = 1024,
                 subscriber_capacity: int = 256) -> None:
        self.session_id = session_id
        self.last_seq = last_seq
        self._ring: deque[EventEnvelope] = deque(maxlen=ring_size)
        self._ring_size = ring_size
        self._subscriber_capacity = subscriber_capacity
        self._subscribers: list[Subscription] = []
        self._published = 0
        self._closed = False

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are attached."""
        return len(self._subscribers)

    @property
    def reader_count(self) -> int:
        """How many subscribers read in this process (relays to other processes left out)."""
        return self.readers_besides(None)

    def readers_besides(self, subscription: "Subscription | None") -> int:
        """:attr:`reader_count`, leaving ``subscription`` out."""
        return sum(1 for s in self._subscribers if not s.relay and s is not subscription)

    def publish(self, payload: AgentEvent) -> EventEnvelope:
        """Assign the next seq, keep the event in the ring, offer it to every subscriber."""
        self.last_seq += 1
        envelope = make_envelope(self.session_id, self.last_seq, payload)
        self._deliver(envelope)
        return envelope

    def publish_envelope(self, envelope: EventEnvelope, *, replay: bool = False,
                         except_for: "Subscription | None" = None) -> None:
        """Publish an event another process numbered (a turn it runs on this session).

        Its ``seq`` is kept, so every process's subscribers see one numbering;
        callers only pass envelopes newer than :attr:`last_seq`. ``replay``: the
        other process published it before this one followed the turn (a backlog);
        subscribers queue it past their capacity, as they queue a cursor's replay,
        rather than drop older events for it behind a ``stream_truncated`` marker.
        ``except_for``: a subscriber not offered it (a turn's own stream, which
        starts with that turn).
        """
        self.last_seq = envelope.seq
        self._deliver(envelope, replay, except_for)

    def publish_missing(self, count: int, *, except_for: "Subscription | None" = None) -> None:
        """Tell every subscriber ``count`` events were never seen here (a ``stream_truncated`` marker)."""
        marker = lag_marker(self.session_id, count)
        for subscriber in tuple(self._subscribers):
            if subscriber is not except_for:
                subscriber._offer(marker)

    def _deliver(self, envelope: EventEnvelope, replay: bool = False,
                 except_for: "Subscription | None" = None) -> None:
        self._ring.append(envelope)
        self._published += 1
        for subscriber in tuple(self._subscribers):
            if subscriber is not except_for:
                subscriber._offer(envelope, replay)

    def subscribe(self, *, after_seq: int | None = None, capacity: int | None = None,
                  until_terminal: bool = False, relay: bool = False) -> Subscription:
        """A new subscription: live from now, or replaying what the ring holds after ``after_seq``.

        If the ring no longer holds every event after ``after_seq``, the stream
        starts with a ``stream_truncated`` marker counting the missing events.
        """
        subscription = Subscription(self, capacity or self._subscriber_capacity, until_terminal, relay)
        if after_seq is not None and after_seq < self.last_seq:
            oldest = self._ring[0].seq if self._ring else self.last_seq + 1
            missing = max(0, oldest - after_seq - 1)
            if missing:
                subscription._queue.append(_Gap(missing))
            for envelope in self._replay_after(after_seq):
                subscription._queue.append(envelope)
            # A replay is what the session already had: queued whole, outside the capacity,
            # so live events arriving before it is read do not push it out.
            subscription._replayed = len(subscription._queue)
        if self._closed:
            subscription._closed = True
        else:
            self._subscribers.append(subscription)
            observability.subscribers_changed(1)
        return subscription

    def _replay_after(self, after_seq: int) -> Iterable[EventEnvelope]:
        return [e for e in self._ring if e.seq > after_seq]

    def _detach(self, subscription: Subscription) -> None:
        try:
            self._subscribers.remove(subscription)
        except ValueError:
            return
        observability.subscribers_changed(-1)

    def close(self) -> None:
        """End every subscription (the session is archived or its actor stops)."""
        self._closed = True
        for subscriber in tuple(self._subscribers):
            subscriber._end()

    def statistics(self) -> BusStatistics:
        """Seq, ring fill and subscriber count."""
        return BusStatistics(last_seq=self.last_seq, ring_size=self._ring_size, ring_used=len(self._ring),
                             subscribers=len(self._subscribers), published=self._published)
