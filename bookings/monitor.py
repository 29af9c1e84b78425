"""Live no-shows: the API watches the spaces' live states and decides each booking at start + grace.

The rule (:func:`decide`), from the states the space had since the booking began:

- ``used``: it was occupied at some moment since the start;
- ``unknown``: its state at the start is not known, it was ``unknown`` at some moment since, or one
  of its sensors reports itself offline now: missing data is never a no-show;
- ``no_show``: otherwise: known, and free the whole time.

The states come from :class:`tila.api.live.LiveState` (each change with the aggregator's ``since``,
the moment the state began), so a booking that began before the API started is still judged from
the retained states. A decision is kept in the bookings database (once per booking and its times:
a restart does not decide it again, a booking moved to new times is), and a no-show is announced as
the webhook event ``booking.no_show``, queued before the decision is kept (at least once). Everything here runs on the API's event loop; the database and the webhook
outbox are called through ``asyncio.to_thread``.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..sensors.site import Site
from .compare import DEFAULT_GRACE
from .db import BookingDb, Detected
from .model import Booking

log = logging.getLogger(__name__)

EVENT = "booking.no_show"
#: Seconds between looks at the database for bookings that begin soon; an import or a booking
#: made through the API is looked at at once.
REFRESH = 60.0
#: State changes kept per space: the longest look back a decision needs is grace plus the refresh.
KEEP = 6 * 3600.0
#: Seconds after the monitor's start in which a space with no state seen yet is not decided: the
#: broker's retained states arrive only once the API has connected (tila.mqtt retries after 1, 2 and
#: 4 s), after the first look at the database. Past this, no state is missing data: ``unknown``.
SETTLE = 10.0

Emit = Callable[[str, dict[str, Any]], None]


def decide(history: Sequence[tuple[float, str]], start: float, now: float, offline: bool = False) -> str:
    """``used``, ``no_show`` or ``unknown`` from a space's (time, state) changes in time order."""
    i = bisect.bisect_right(history, (start, "\uffff"))
    at_start = [history[i - 1][1]] if i > 0 else []
    since = [s for t, s in history[i:] if t <= now]
    states = at_start + since
    if "occupied" in states:
        return "used"
    if not at_start or "unknown" in states or offline:
        return "unknown"
    return "no_show"


def event_data(bk: Booking, grace: timedelta, detected_at: datetime) -> dict[str, Any]:
    """The ``booking.no_show`` webhook payload: the booking's id, space and times, nothing personal."""
    return {
        "uid": bk.uid,
        "space": bk.space,
        "start": bk.start.isoformat(),
        "end": bk.end.isoformat(),
        "grace_minutes": grace.total_seconds() / 60,
        "detected_at": detected_at.isoformat(),
    }


class NoShowMonitor:
    def __init__(
        self,
        site: Site,
        live: Any,
        db: BookingDb,
        grace: timedelta = DEFAULT_GRACE,
        emit: Emit | None = None,
        *,
        refresh: float = REFRESH,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.site, self.live, self.db, self.grace = site, live, db, grace
        self.emit = emit
        self.refresh = refresh
        self.clock = clock
        self.decisions: Counter[str] = Counter()
        self._history: dict[str, list[tuple[float, str]]] = {}
        self._timers: dict[str, tuple[Booking, asyncio.TimerHandle]] = {}
        #: Bookings decided (as they were then: a booking moved since is not among them).
        self._done: set[Booking] = set()
        #: Uids whose decision is under way (not planned again meanwhile).
        self._deciding: set[str] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._wake: asyncio.Event | None = None
        self._remove: Callable[[], None] | None = None
        self._pending: set[asyncio.Task[None]] = set()
        self._started = 0.0

    # ------------------------------------------------------------------------------ life cycle

    def start(self) -> None:
        """Start watching (call on the event loop)."""
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._started = self.clock()
        self._remove = self.live.add_listener(self._on_change)
        for space in self.site.spaces:
            now = self.live.space(space.id)
            if now.since is not None or now.state != "unknown":
                self._note(space.id)
        self._task = self._loop.create_task(self._run(), name="tila-noshow-monitor")

    async def stop(self) -> None:
        if self._remove is not None:
            self._remove()
            self._remove = None
        for _, handle in self._timers.values():
            handle.cancel()
        self._timers.clear()
        tasks = [t for t in (self._task, *self._pending) if t is not None]
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        self._task = None
        self._loop = None

    def poke(self) -> None:
        """Look at the database again now (thread-safe): bookings were added, imported or deleted."""
        loop, wake = self._loop, self._wake
        if loop is None or wake is None:
            return
        with contextlib.suppress(RuntimeError):  # the loop closed during shutdown
            loop.call_soon_threadsafe(wake.set)

    # -------------------------------------------------------------------------------- states

    def _on_change(self, space_id: str) -> None:
        self._note(space_id)

    def _note(self, space_id: str) -> None:
        now = self.clock()
        s = self.live.space(space_id)
        # The aggregator's since is when the state began; a clock ahead of ours is clamped to now.
        t = min(s.since.timestamp(), now) if s.since is not None else now
        history = self._history.setdefault(space_id, [])
        bisect.insort(history, (t, s.state))
        # Keep what a decision can still need, and the last state before that.
        cut = bisect.bisect_left(history, (now - KEEP, ""))
        if cut > 1:
            del history[: cut - 1]

    def history(self, space_id: str) -> list[tuple[float, str]]:
        return list(self._history.get(space_id, ()))

    def _offline(self, space_id: str) -> bool:
        return any(self.live.sensor(s.id).online is False for s in self.site.sensors_of(space_id))

    # ------------------------------------------------------------------------------ planning

    async def _run(self) -> None:
        assert self._wake is not None
        while True:
            self._wake.clear()
            try:
                await self._plan()
            except Exception as exc:  # the database away for a moment: try again at the next look
                log.warning("no-show monitor: cannot read bookings: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.refresh)

    async def _plan(self) -> None:
        loop = self._loop
        assert loop is not None
        now = self.clock()
        lo = datetime.fromtimestamp(now, UTC)
        hi = datetime.fromtimestamp(now + self.refresh + self.grace.total_seconds() + 1, UTC)
        # Running bookings (decided late if the API was down at their start + grace) and the ones
        # beginning before the next look.
        bookings = await asyncio.to_thread(self.db.query, lo, hi)
        # Only bookings still in view need remembering as decided.
        self._done &= set(bookings)
        fresh = [b for b in bookings if b not in self._done]
        # The database keeps a decision only while its booking keeps its times (BookingDb.replace).
        decided = await asyncio.to_thread(self.db.decided, [b.uid for b in fresh])
        self._done |= {b for b in fresh if b.uid in decided}
        wanted = {b.uid: b for b in fresh if b.uid not in decided}
        for uid, (bk, handle) in list(self._timers.items()):
            if wanted.get(uid) != bk:  # deleted, or moved: planned again below if still wanted
                handle.cancel()
                del self._timers[uid]
        for uid, bk in wanted.items():
            if uid in self._timers or uid in self._deciding:
                continue
            at = min(bk.start.timestamp() + self.grace.total_seconds(), bk.end.timestamp())
            handle = loop.call_later(max(0.0, at - now), self._fire, bk)
            self._timers[uid] = (bk, handle)

    def _fire(self, bk: Booking) -> None:
        self._timers.pop(bk.uid, None)
        assert self._loop is not None
        self._deciding.add(bk.uid)
        task = self._loop.create_task(self._decide(bk))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _decide(self, bk: Booking) -> None:
        try:
            current = await asyncio.to_thread(self.db.get, bk.uid)
            if current != bk:
                return  # deleted or changed since it was planned; the next look plans it again
            now = self.clock()
            settled = self._started + SETTLE
            if not self._history.get(bk.space) and now < settled and self._loop is not None:
                # The API has just started and this space's retained state is not in yet.
                handle = self._loop.call_later(min(1.0, settled - now), self._fire, bk)
                self._timers[bk.uid] = (bk, handle)
                return
            outcome = decide(
                self._history.get(bk.space, []), bk.start.timestamp(), now, self._offline(bk.space)
            )
            at = datetime.fromtimestamp(now, UTC)
            d = Detected(bk.uid, bk.space, bk.start, bk.end, outcome, at, self.grace.total_seconds())
            if outcome == "no_show" and self.emit is not None:
                # Queued before the decision is kept: a failure or a stop in between decides and
                # announces it again at the next look (at least once), never not at all.
                await asyncio.to_thread(self.emit, EVENT, event_data(bk, self.grace, at))
            if not await asyncio.to_thread(self.db.record, d):
                return
            self._done.add(bk)
            self.decisions[outcome] += 1
            log.info("booking %s of %s: %s", bk.uid[:64], bk.space, outcome)
        except Exception as exc:  # a database or outbox failure must not stop the monitor
            log.warning("no-show monitor: booking %s not decided: %s", bk.uid[:64], exc)
        finally:
            self._deciding.discard(bk.uid)


@dataclass(slots=True)
class Bookings:
    """What the API holds for bookings (``ctx.bookings``): the database, the grace, the monitor."""

    db: BookingDb
    grace: timedelta = DEFAULT_GRACE
    monitor: NoShowMonitor | None = None

    @classmethod
    def open(
        cls, data_dir: Path, site: Site, live: Any, grace: timedelta = DEFAULT_GRACE, emit: Emit | None = None
    ) -> Bookings:
        db = BookingDb.in_dir(data_dir)
        return cls(db, grace, NoShowMonitor(site, live, db, grace, emit))

    def changed(self) -> None:
        if self.monitor is not None:
            self.monitor.poke()
