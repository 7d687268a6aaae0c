"""Mailboxes and one-shot replies: how every actor receives its messages.

A :class:`Mailbox` is a bounded trio memory channel with counters; a
:class:`Reply` is a one-shot slot the actor fills once (a value or an error)
and the sender awaits. Both expose ``statistics()`` like trio's primitives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, TypeVar

import trio

__all__ = ["Reply", "Mailbox", "MailboxClosed", "MailboxStatistics"]

T = TypeVar("T")
M = TypeVar("M")


class MailboxClosed(Exception):
    """The actor behind this mailbox has stopped (e.g. hibernated); look it up again."""


class Reply(Generic[T]):
    """A one-shot answer. The first :meth:`send` or :meth:`fail` wins; later ones are ignored."""

    __slots__ = ("_event", "_value", "_error")

    def __init__(self) -> None:
        self._event = trio.Event()
        self._value: T | None = None
        self._error: BaseException | None = None

    @property
    def done(self) -> bool:
        """Whether the answer is in."""
        return self._event.is_set()

    def send(self, value: T) -> None:
        """Answer with a value."""
        if not self._event.is_set():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        """Answer with an error, raised in the waiter."""
        if not self._event.is_set():
            self._error = error
            self._event.set()

    async def wait(self) -> T:
        """Wait for the answer; raise the error if it is one."""
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]


@dataclass(frozen=True, slots=True)
class MailboxStatistics:
    """A snapshot of a mailbox: capacity, how many wait, and lifetime counters."""

    capacity: int
    queued: int
    delivered: int
    handled: int
    waiting_senders: int
    closed: bool


class Mailbox(Generic[M]):
    """A bounded queue of messages for one actor."""

    def __init__(self, capacity: int = 64) -> None:
        self._capacity = capacity
        self._send, self._receive = trio.open_memory_channel[M](capacity)
        self._delivered = 0
        self._handled = 0
        self._closed = False

    def post_nowait(self, message: M) -> None:
        """Deliver without waiting; raise trio.WouldBlock when full, MailboxClosed when closed."""
        if self._closed:
            raise MailboxClosed()
        self._send.send_nowait(message)
        self._delivered += 1

    async def post(self, message: M) -> None:
        """Deliver, waiting for room if the mailbox is full."""
        if self._closed:
            raise MailboxClosed()
        try:
            await self._send.send(message)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            raise MailboxClosed() from None
        self._delivered += 1

    async def receive(self) -> M:
        """The next message (for the owning actor only)."""
        message = await self._receive.receive()
        self._handled += 1
        return message

    def receive_nowait(self) -> M:
        """The next message if one is queued; trio.WouldBlock otherwise."""
        message = self._receive.receive_nowait()
        self._handled += 1
        return message

    def is_empty(self) -> bool:
        """No message is waiting."""
        return self._receive.statistics().current_buffer_used == 0

    def close(self) -> list[M]:
        """Refuse further messages and return those still queued (to be failed by the owner)."""
        self._closed = True
        leftovers: list[M] = []
        while True:
            try:
                leftovers.append(self._receive.receive_nowait())
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                break
        self._send.close()
        return leftovers

    def statistics(self) -> MailboxStatistics:
        """A snapshot for monitoring and tests."""
        stats = self._send.statistics()
        return MailboxStatistics(
            capacity=self._capacity,
            queued=stats.current_buffer_used,
            delivered=self._delivered,
            handled=self._handled,
            waiting_senders=stats.tasks_waiting_send,
            closed=self._closed,
        )
