"""Fan-out of space events to Server-Sent-Event clients: one bounded queue per client.

Everything here runs on the asyncio loop (``publish`` is called by LiveState's listener there), so it
needs no locks. Each client has its own bounded queue; a client too slow to keep up fills
only its own queue, and then skips to a fresh snapshot of every space instead of blocking the others
or growing memory. Recent events stay in a bounded ring so a reconnecting client (``Last-Event-ID``)
gets just what it missed; when that is no longer there, it gets a full snapshot instead.

Event ids are one increasing sequence per process. It starts at the process's start time in
milliseconds, so an id from an earlier run (the browser keeps it across a server restart) is never
mistaken for one of this run's: it is too small for the ring and the client gets a snapshot.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

#: Per-client queue: a few minutes of a busy site's changes (about one per desk per few minutes)
#: before the client is treated as stuck and skips to a snapshot.
QUEUE_SIZE = 256
#: Recent events kept for Last-Event-ID resumption: covers a lobby screen's reconnect after a
#: network blip of a minute or two on a 100-space site.
RING_SIZE = 2048


@dataclass(slots=True, frozen=True)
class StreamEvent:
    id: int
    #: The JSON document sent as ``data:``, serialised once for every client.
    data: str
    event: str = "space"


class _Signal(enum.Enum):
    RESYNC = "resync"
    CLOSE = "close"
    #: From :meth:`Subscription.next` after the idle time without an event: time for a keep-alive.
    PING = "ping"


PING = _Signal.PING


class _Mailbox:
    """One client's bounded FIFO, awaited without a task per item (asyncio.Queue's ``wait_for`` would
    make one per wait, for every client and every event)."""

    __slots__ = ("_items", "maxsize", "_waiter")

    def __init__(self, maxsize: int) -> None:
        self._items: deque[StreamEvent | _Signal] = deque()
        self.maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None

    def qsize(self) -> int:
        return len(self._items)

    def full(self) -> bool:
        return len(self._items) >= self.maxsize

    def put(self, item: StreamEvent | _Signal) -> None:
        self._items.append(item)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def clear(self) -> None:
        self._items.clear()

    async def get(self, timeout: float | None = None) -> StreamEvent | _Signal | None:
        """The oldest item; None when ``timeout`` seconds pass without one."""
        if not self._items:
            loop = asyncio.get_running_loop()
            waiter = self._waiter = loop.create_future()
            timer = loop.call_later(timeout, _wake, waiter) if timeout is not None else None
            try:
                await waiter
            finally:
                self._waiter = None
                if timer is not None:
                    timer.cancel()
            if not self._items:
                return None
        return self._items.popleft()


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


class Broadcaster:
    """Publishes events to every subscribed client, in order, without letting one slow client hold
    up the others. ``snapshot()`` gives the current state as one JSON document per space."""

    def __init__(
        self,
        snapshot: Callable[[], list[str]],
        *,
        queue_size: int = QUEUE_SIZE,
        ring_size: int = RING_SIZE,
        first_id: int | None = None,
    ) -> None:
        self._snapshot = snapshot
        self.queue_size = queue_size
        self.head = int(time.time() * 1000) if first_id is None else first_id
        self._ring: deque[StreamEvent] = deque(maxlen=ring_size)
        self._clients: set[Subscription] = set()
        self.closed = False
        self.published = 0
        self.resyncs = 0
        self.resumed = 0
        self.snapshots = 0

    @property
    def clients(self) -> int:
        return len(self._clients)

    def snapshot_events(self) -> list[StreamEvent]:
        """Every space's current state, each carrying the current position of the stream."""
        self.snapshots += 1
        return [StreamEvent(self.head, data) for data in self._snapshot()]

    def publish(self, data: str, event: str = "space") -> StreamEvent:
        self.head += 1
        ev = StreamEvent(self.head, data, event)
        self._ring.append(ev)
        self.published += 1
        for client in list(self._clients):
            client.offer(ev)
        return ev

    def subscribe(self, last_event_id: str | None = None) -> Subscription:
        """A new client: first what it missed (if the ring still holds it) or a snapshot, then live."""
        if self.closed:
            sub = Subscription(self, [], self.head)
            sub.offer(_Signal.CLOSE)
            return sub
        last = _parse_id(last_event_id)
        if last is not None and self._can_resume(last):
            self.resumed += 1
            backlog = [e for e in self._ring if e.id > last]
            sub = Subscription(self, backlog, last)
        else:
            sub = Subscription(self, self.snapshot_events(), self.head)
        self._clients.add(sub)
        return sub

    def _can_resume(self, last: int) -> bool:
        if last > self.head:
            return False
        oldest = self._ring[0].id if self._ring else self.head + 1
        return last >= oldest - 1

    def unsubscribe(self, sub: Subscription) -> None:
        self._clients.discard(sub)

    def close(self) -> None:
        """End every stream now (server shutdown); later subscribers end at once too."""
        if self.closed:
            return
        self.closed = True
        for client in list(self._clients):
            client.offer(_Signal.CLOSE)
        log.info("event stream closed for %d clients", len(self._clients))


class Subscription:
    """One client's view of the stream: :meth:`next` (or iterate :meth:`events`), and :meth:`close`
    when done, whatever happened."""

    def __init__(self, hub: Broadcaster, backlog: list[StreamEvent], last_id: int) -> None:
        self._hub = hub
        #: Events due before anything queued: the backlog, or a snapshot after a resync.
        self._pending: deque[StreamEvent] = deque(backlog)
        self.last_id = last_id
        self._queue = _Mailbox(hub.queue_size)
        self._ended = False
        self.resyncs = 0

    def offer(self, item: StreamEvent | _Signal) -> None:
        """Queue without ever waiting: a full queue is emptied and replaced by one resync."""
        if isinstance(item, StreamEvent):
            if not self._queue.full():
                self._queue.put(item)
                return
            self.resyncs += 1
            self._hub.resyncs += 1
            log.info(
                "an event-stream client fell %d events behind: it skips to a snapshot", self._queue.qsize()
            )
            item = _Signal.RESYNC
        self._queue.clear()
        self._queue.put(item)

    def end(self) -> None:
        """End this stream (its client has gone): :meth:`next` answers None from now on."""
        self.offer(_Signal.CLOSE)

    def ready(self) -> bool:
        """Whether :meth:`next` would answer without waiting."""
        return bool(self._pending) or self._ended or self._queue.qsize() > 0

    async def next(self, idle: float | None = None) -> StreamEvent | _Signal | None:
        """The next event, in order; :data:`PING` after ``idle`` seconds without one; None once the
        stream has ended (the broadcaster closed, or :meth:`end`)."""
        while True:
            if self._pending:
                return self._pending.popleft()
            if self._ended:
                return None
            item = await self._queue.get(idle)
            if item is None:
                return PING
            if item is _Signal.CLOSE:
                self._ended = True
                return None
            if item is _Signal.RESYNC:
                self._pending.extend(self._hub.snapshot_events())
                self.last_id = self._hub.head
                continue
            assert isinstance(item, StreamEvent)
            if item.id <= self.last_id:  # already covered by a snapshot sent after a resync
                continue
            self.last_id = item.id
            return item

    async def events(self) -> AsyncIterator[StreamEvent]:
        """Backlog, then live events in order, until the broadcaster closes or the caller stops."""
        try:
            while True:
                ev = await self.next()
                if ev is None:
                    return
                assert isinstance(ev, StreamEvent)
                yield ev
        finally:
            self.close()

    def close(self) -> None:
        self._ended = True
        self._hub.unsubscribe(self)


def _parse_id(value: str | None) -> int | None:
    if value is None:
        return None
    value = value.strip()
    if not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    return int(value)
