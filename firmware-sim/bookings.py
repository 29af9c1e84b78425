"""Simulated bookings of the site's rooms and event hall, agreeing with the behaviour model. Pure.

The bookable spaces are those of the kinds :data:`tila.bookings.compare.BOOKABLE_KINDS` (meeting
rooms and the event hall); each local day of each is booked from the behaviour model's plan
(:meth:`tila.sim.behaviour.Behaviour.plan`) as a room calendar at an office like the Lab plausibly
looks (shares assumed, not measured):

- a *meeting* is a stretch of the plan with somebody in the space; most meetings are booked first:
  a booking from the quarter hour before the first comes to the quarter hour after the last leaves
  (rounded outward, so whoever comes first arrives within the booking's first quarter hour), for
  the meeting's peak head count;
- about :data:`UNBOOKED_SHARE` of the meetings happen unbooked (a free room taken on the spot);
- about :data:`NO_SHOW_SHARE` of the bookings are no-shows: booked, and nobody comes. They lie
  where the plan has the space empty, with :data:`NO_SHOW_MARGIN` empty before and after, so both
  the comparison with the store (:func:`tila.bookings.compare.compare`) and the live monitor see a
  space that was known to be empty;
- now and then a small meeting holds a booking made for many more (:data:`OVERSIZE_CHANCE`): the
  12-seat room booked for ten, and two come.

A day's bookings depend only on the behaviour (the site and its seed), ``seed`` and the day, so any
range gives the same bookings for the days it covers. Nothing personal: a booking is a space, a
time, a head count and an opaque id.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from tila.bookings.compare import BOOKABLE_KINDS
from tila.bookings.model import Booking, ImportResult
from tila.sensors.site import Site, Space

from .behaviour import Behaviour, Step

#: The source the simulated bookings are written as (``BookingDb.replace`` replaces one source's).
SOURCE = "sim"
#: Share of meetings held without a booking (assumed; the comparison's "unbooked use").
UNBOOKED_SHARE = 0.10
#: Share of bookings nobody comes to (assumed, not measured: one booking in eight).
NO_SHOW_SHARE = 0.125
#: Chance that a small meeting (at most a third of the seats) holds a booking made for many more.
OVERSIZE_CHANCE = 0.2
#: Bookings are on quarter hours: the grain of room calendars, and of the store's buckets.
QUARTER = timedelta(minutes=15)
#: A no-show lies this far from any meeting of the plan: one bucket, so the comparison's grace
#: window sees the space empty, and time for the live state to settle before the booking starts.
NO_SHOW_MARGIN = timedelta(minutes=15)
#: How long a no-show booking is (minutes), and the local hours it may start in (office meetings).
NO_SHOW_MINUTES = (30, 45, 60, 60, 90)
NO_SHOW_HOURS = (8, 18)
#: Random places tried for each no-show before giving up (a full day has no room for one).
NO_SHOW_TRIES = 40


@dataclass(slots=True, frozen=True)
class Meeting:
    """A stretch of a space's plan with somebody in it: [start, end), and the most there at once."""

    start: datetime
    end: datetime
    peak: int


def meetings(steps: tuple[Step, ...] | list[Step]) -> list[Meeting]:
    """The occupied stretches of one space's planned steps, in time order."""
    out: list[Meeting] = []
    begin: datetime | None = None
    peak = 0
    for step in steps:
        if step.count > 0:
            if begin is None:
                begin, peak = step.time, 0
            peak = max(peak, step.count)
        elif begin is not None:
            out.append(Meeting(begin, step.time, peak))
            begin = None
    # A plan always ends empty (stays are clipped to opening hours): nothing is left open here.
    return out


def simulated_bookings(
    site: Site, behaviour: Behaviour, start: date, end: date, *, seed: int = 0, source: str = SOURCE
) -> list[Booking]:
    """The bookings of the bookable spaces on the site's local days ``start <= day < end``, in start
    order. Days without opening hours have none."""
    spaces = [s for s in site.spaces if s.kind in BOOKABLE_KINDS]
    out: list[Booking] = []
    day = start
    while day < end:
        hours = site.hours_on(day)
        if hours:
            plan = behaviour.plan(day)
            for space in spaces:
                out += _day(site, space, plan[space.id], day, hours, seed, source)
        day += timedelta(days=1)
    out.sort(key=lambda b: (b.start, b.space, b.uid))
    return out


def as_import(
    site: Site, bookings: list[Booking], start: date, end: date, source: str = SOURCE
) -> ImportResult:
    """``bookings`` of the local days ``start <= day < end`` as an import for ``BookingDb.replace``:
    its window is the local midnights, so a re-run replaces the same days' bookings."""
    return ImportResult(
        source, tuple(bookings), Counter(), start=_midnight(site, start), end=_midnight(site, end)
    )


# ------------------------------------------------------------------------------------- one day


def _day(
    site: Site,
    space: Space,
    steps: tuple[Step, ...],
    day: date,
    hours: tuple[tuple[int, int], ...],
    seed: int,
    source: str,
) -> list[Booking]:
    rng = random.Random(f"{seed}:{day.isoformat()}:bookings:{space.id}")
    met = meetings(steps)
    opens = [(_local(site, day, a), _local(site, day, b)) for a, b in hours]
    # [start, end, expected] of each booking, in start order.
    held: list[tuple[datetime, datetime, int]] = []
    for m in met:
        if rng.random() < UNBOOKED_SHARE:
            continue
        expected = m.peak
        if m.peak * 3 <= space.capacity and rng.random() < OVERSIZE_CHANCE:
            expected = max(2 * m.peak, round(space.capacity * rng.uniform(0.75, 1.0)))
        a, b = _floor(m.start), _ceil(m.end)
        # Within the opening hours the meeting is in, should they not begin on a quarter hour.
        for lo, hi in opens:
            if lo <= m.start < hi:
                a, b = max(a, _ceil(lo)), min(b, _floor(hi))
        if held and a < held[-1][1]:
            # Meetings a few minutes apart share a quarter hour: the later booking starts when the
            # earlier ends (its people are still there in its first quarter hour, so it is used).
            a = held[-1][1]
        if a < b:
            held.append((a, b, expected))

    # No-shows: about NO_SHOW_SHARE of all bookings, i.e. one for every (1/share - 1) used ones.
    wanted = sum(1 for _ in held if rng.random() < NO_SHOW_SHARE / (1 - NO_SHOW_SHARE))
    busy = [(m.start - NO_SHOW_MARGIN, m.end + NO_SHOW_MARGIN) for m in met] + [(a, b) for a, b, _ in held]
    empty: list[tuple[datetime, datetime, int]] = []
    for _ in range(wanted):
        for _try in range(NO_SHOW_TRIES):
            first = rng.randrange(NO_SHOW_HOURS[0] * 4, NO_SHOW_HOURS[1] * 4 + 1) * 15
            length = rng.choice(NO_SHOW_MINUTES)
            a, b = _local(site, day, first), _local(site, day, first + length)
            if not any(lo <= a and b <= hi for lo, hi in opens):
                continue
            if any(a < y and x < b for x, y in busy):
                continue
            expected = max(1, round(space.capacity * rng.betavariate(2.2, 2.0)))
            empty.append((a, b, expected))
            busy.append((a, b))
            break

    rows = sorted(held + empty)
    return [
        Booking(f"{source}-{seed}-{day.isoformat()}-{space.id}-{n}", space.id, a, b, source, expected)
        for n, (a, b, expected) in enumerate(rows)
    ]


# ----------------------------------------------------------------------------------- utilities


def _local(site: Site, day: date, minutes: int) -> datetime:
    """``minutes`` after local midnight on ``day`` by the wall clock (as opening hours are), in UTC."""
    days, minutes = divmod(minutes, 24 * 60)  # closing at midnight is 24:00
    wall = time(minutes // 60, minutes % 60)
    return datetime.combine(day + timedelta(days=days), wall, tzinfo=site.tz).astimezone(UTC)


def _midnight(site: Site, day: date) -> datetime:
    return datetime.combine(day, time(0), tzinfo=site.tz).astimezone(UTC)


def _floor(t: datetime) -> datetime:
    # On the epoch's quarter hours, as the store's buckets are: every UTC offset in use is a whole
    # number of quarter hours, so these are the local quarter hours too.
    s = QUARTER.total_seconds()
    return datetime.fromtimestamp(t.timestamp() // s * s, UTC)


def _ceil(t: datetime) -> datetime:
    f = _floor(t)
    return f if f == t else f + QUARTER
