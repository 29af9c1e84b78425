"""Who is where, when: the behaviour model of the simulated site. Pure: no clock, no I/O.

Each local day of the site is planned on its own from ``(seed, day, space)``, so a day looks the
same whatever moment a simulation starts at (and whatever range a history backfill covers). A plan
is, per space, the head count as a series of :class:`Step` s (the count from ``time`` on); every
space is empty outside the opening hours, and a day without opening hours (the weekend, a public
holiday or a closed date of the site: :meth:`Site.hours_on`) is empty all day.

The day follows a working day at the Work 2.0 Lab (shared/LAB.md): drop-in desk work with arrivals
peaking at 9–10, a lunch dip around 11–13 and an afternoon tail; meetings and workshops in the
rooms (counts rising and falling, now and then past half the capacity, some workshops at or near
capacity); short calls in the phone booths; the monthly Törmäämö breakfast 08:00–09:00 in the event
hall (the first Tuesday of a month, an assumption) and trainings, workshops and meet-ups there,
some of them full. Tuesdays to Thursdays are busier than Mondays and Fridays.

The year (:func:`season`): Finnish offices empty from Midsummer to early August (the summer
holiday, mostly taken in July), fill up again through the first half of August and are busiest
from mid-August into September; the weeks before Midsummer and Christmas thin out a little and the
week between Christmas and Epiphany is quiet. The Lab keeps Finland's public holidays, Midsummer
Eve and Christmas Eve closed (the site's holiday calendar, sensors/holidays.py). On the first
Thursday of each term month (February–May, September–November) a workshop day (an assumption
modelled on the Lab's "ecosystem school" and HR boot camps) fills the event hall and the workshop
rooms.

Sensors fail now and then (:meth:`Behaviour.outages`): a battery runs flat or a device drops off
its network for a few hours, and no data comes from it in the meantime.

All shapes and rates are plausible, not measured.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache

from tila.sensors.site import Site, Space

HOUR = 3600.0
MINUTE = 60.0

#: How busy each weekday is (Monday first) relative to a mid-week day.
WEEKDAY_BUSYNESS = (0.85, 1.0, 1.0, 0.95, 0.65, 0.5, 0.4)
#: An open-ended :meth:`Behaviour.steps` ends after this many days in a row without a step.
QUIET_DAYS = 400
#: Term months with a workshop day on their first Thursday (not January, the summer or December).
WORKSHOP_MONTHS = frozenset({2, 3, 4, 5, 9, 10, 11})
#: Chance that a sensor has a multi-hour outage on a given day: with the bundled site's 50 sensors
#: about two a week somewhere (plausible for battery PIRs and LoRaWAN counters, not measured).
OUTAGE_CHANCE = 0.006
#: How long such an outage lasts (hours, uniformly), and when it starts (local hour, uniformly):
#: often before opening (a battery runs flat overnight and a host swaps it in the morning).
OUTAGE_HOURS = (2.0, 8.0)
OUTAGE_STARTS = (5.0, 15.0)


@dataclass(slots=True, frozen=True)
class Step:
    """From ``time`` (UTC) on, ``count`` people are in the space."""

    time: datetime
    count: int


@dataclass(slots=True, frozen=True)
class Outage:
    """Sensor ``sensor`` sends nothing from ``start`` to ``end`` (UTC)."""

    sensor: str
    start: datetime
    end: datetime


#: A person's stay, in seconds after the local midnight of the planned day.
Stay = tuple[float, float]


def is_tormaamo_day(day: date) -> bool:
    """The Törmäämö breakfast: the first Tuesday of each month (the day is an assumption)."""
    return day.weekday() == 1 and day.day <= 7


def is_workshop_day(day: date) -> bool:
    """A workshop day fills the hall and the rooms: the first Thursday of a term month."""
    return day.weekday() == 3 and day.day <= 7 and day.month in WORKSHOP_MONTHS


def midsummer_eve(year: int) -> date:
    """Midsummer Eve: the Friday between 19 and 25 June (as in sensors/holidays.py)."""
    first = date(year, 6, 19)
    return first + timedelta(days=(4 - first.weekday()) % 7)


def season(day: date) -> float:
    """How busy the Lab is in the season of ``day``, relative to an ordinary week in spring.

    Finnish summer holidays are mostly taken from Midsummer to early August, July the quietest; the
    offices fill up again in the first half of August and are busiest from mid-August to mid-
    September. Christmas to Epiphany is a holiday week for many. (Plausible shapes, not measured.)
    """
    m, d = day.month, day.day
    eve = midsummer_eve(day.year)
    if eve < day < date(day.year, 8, 1):
        return 0.3 if m == 7 else 0.45
    if m == 8 and d < 12:
        return 0.45 + (d - 1) * 0.055  # back to 1.0 by the 11th
    if (m == 8 and d >= 12) or (m == 9 and d <= 15):
        return 1.1
    if eve - timedelta(days=7) <= day <= eve:
        return 0.8
    if m == 12 and d >= 27:
        return 0.25
    if m == 1 and d <= 5:
        return 0.5
    if m == 12 and d >= 18:
        return 0.8
    return 1.0


class Behaviour:
    """The site's occupancy, day by day, for one seed."""

    def __init__(self, site: Site, seed: int) -> None:
        self.site = site
        self.seed = seed
        self._spaces = {s.id: s for s in site.spaces}
        self._plan = lru_cache(maxsize=16)(self._make_plan)

    # -- queries

    def plan(self, day: date) -> dict[str, tuple[Step, ...]]:
        """The steps of every space on the site's local ``day``, in time order."""
        return self._plan(day)

    def steps(self, space_id: str, start: datetime, end: datetime | None = None) -> Iterator[Step]:
        """Steps of one space with ``start <= time < end`` (``end=None``: for ever), in time order."""
        if space_id not in self._spaces:
            raise KeyError(space_id)
        if not any(self.site.opening_hours.values()) and not self.site.open_dates:
            return
        tz = self.site.tz
        day = start.astimezone(tz).date()
        quiet = 0
        while end is None or _midnight(day, tz) < end:
            for step in self.plan(day)[space_id]:
                if step.time >= start and (end is None or step.time < end):
                    quiet = -1
                    yield step
            quiet += 1
            if end is None and quiet > QUIET_DAYS:
                return  # a space nobody uses: no more steps, rather than a search to year 9999
            day += timedelta(days=1)

    def outages(self, day: date) -> tuple[Outage, ...]:
        """The sensors that fail on the site's local ``day``, and when (within the day)."""
        tz = self.site.tz
        out: list[Outage] = []
        for sensor in self.site.sensors:
            rng = random.Random(f"{self.seed}:{day.isoformat()}:outage:{sensor.id}")
            if rng.random() >= OUTAGE_CHANCE:
                continue
            start = rng.uniform(*OUTAGE_STARTS) * HOUR
            end = min(start + rng.uniform(*OUTAGE_HOURS) * HOUR, 24 * HOUR - MINUTE)
            local_midnight = datetime.combine(day, time(0), tzinfo=tz)
            out.append(
                Outage(
                    sensor.id,
                    (local_midnight + timedelta(seconds=start)).astimezone(UTC),
                    (local_midnight + timedelta(seconds=end)).astimezone(UTC),
                )
            )
        return tuple(out)

    def count_at(self, space_id: str, when: datetime) -> int:
        """How many people are in the space at ``when``."""
        count = 0
        for step in self.plan(when.astimezone(self.site.tz).date())[space_id]:
            if step.time > when:
                break
            count = step.count
        return count

    # -- planning

    def _make_plan(self, day: date) -> dict[str, tuple[Step, ...]]:
        # Public holidays and the site's closed dates too, as the aggregator's opening hours have it.
        hours = self.site.hours_on(day)
        if not hours:
            return {sid: () for sid in self._spaces}
        day_rng = random.Random(f"{self.seed}:{day.isoformat()}")
        busy = WEEKDAY_BUSYNESS[day.weekday()] * day_rng.uniform(0.85, 1.15) * season(day)
        kind = "tormaamo" if is_tormaamo_day(day) else "workshop" if is_workshop_day(day) else ""
        open_ranges = [(a * MINUTE, b * MINUTE) for a, b in hours]
        plan: dict[str, tuple[Step, ...]] = {}
        for space in self.site.spaces:
            rng = random.Random(f"{self.seed}:{day.isoformat()}:{space.id}")
            stays, grain = _stays(space, rng, busy, kind)
            stays = _clip(stays, open_ranges)
            plan[space.id] = _to_steps(stays, day, self.site, grain)
        return plan


def _stays(space: Space, rng: random.Random, busy: float, kind: str) -> tuple[list[Stay], float]:
    """Everybody's stays in the space that day, and the time grain the space's sensor resolves.

    ``kind`` is the day's programme: ``tormaamo``, ``workshop`` or ``""`` (an ordinary day).
    """
    if space.kind == "desk":
        return _desk_day(rng, busy, kind == "tormaamo"), 1.0
    if space.kind == "booth":
        return _booth_day(rng, busy), 1.0
    if space.kind == "room":
        # People counters report whole-minute changes (coalescing, and the LoRaWAN duty cycle).
        return _room_day(rng, busy, space.capacity, kind == "workshop"), MINUTE
    return _hall_day(rng, busy, space.capacity, kind), MINUTE


# ------------------------------------------------------------------------------------------- desks


def _arrival(rng: random.Random) -> float:
    """When a desk's first user arrives: early birds, the 9–10 peak, late morning, after lunch."""
    r = rng.random()
    if r < 0.12:
        h = rng.uniform(7.0, 8.5)
    elif r < 0.67:
        h = rng.gauss(9.4, 0.45)
    elif r < 0.85:
        h = rng.gauss(10.8, 0.5)
    else:
        h = rng.gauss(12.9, 0.5)
    return _clamp(h, 7.0, 17.0) * HOUR


def _departure(rng: random.Random, arrived: float) -> float:
    h = rng.gauss(16.0, 0.9) if rng.random() < 0.85 else rng.gauss(18.2, 0.8)
    return _clamp(h * HOUR, arrived + HOUR, 19.9 * HOUR)


def _desk_day(rng: random.Random, busy: float, tormaamo: bool) -> list[Stay]:
    """A desk taken for stretches of 1–4 h with breaks; lunch 11–13; maybe a second user later."""
    used = min(0.95, 0.72 * busy * (1.1 if tormaamo else 1.0))
    if rng.random() >= used:
        return []
    stays: list[Stay] = []
    arrive = _arrival(rng)
    for _user in range(3):
        leave = _departure(rng, arrive)
        lunch = _clamp(rng.gauss(11.9, 0.4), 11.0, 13.0) * HOUR
        lunch_len = rng.uniform(25, 55) * MINUTE
        had_lunch = arrive > lunch
        now = arrive
        while now < leave:
            end = min(now + rng.uniform(60, 240) * MINUTE, leave)
            pause = rng.uniform(10, 30) * MINUTE
            if not had_lunch and end > lunch:
                had_lunch = True
                if lunch > now + 10 * MINUTE:
                    end, pause = min(lunch, leave), lunch_len
            stays.append((now, end))
            now = end + pause
        if leave < 14 * HOUR and rng.random() < 0.35 * busy:
            arrive = leave + rng.uniform(20, 90) * MINUTE
        else:
            break
    return stays


# ------------------------------------------------------------------------------------------ booths


def _booth_profile(h: float) -> float:
    """Relative rate of phone calls by hour of day."""
    if h < 7.5:
        return 0.1
    if h < 11:
        return 1.0
    if h < 13:
        return 0.6
    if h < 16:
        return 0.9
    if h < 18:
        return 0.4
    return 0.1


def _booth_day(rng: random.Random, busy: float) -> list[Stay]:
    """Short calls (median ~9 min) at up to ~1.6 an hour, thinned by the hour's profile."""
    rate = 1.6 * busy / HOUR
    stays: list[Stay] = []
    t = 7.0 * HOUR
    while True:
        t += rng.expovariate(rate)
        if t >= 20 * HOUR:
            return stays
        if rng.random() < _booth_profile(t / HOUR):
            length = _clamp(rng.lognormvariate(2.2, 0.6), 2, 40) * MINUTE
            stays.append((t, t + length))
            t += length + rng.uniform(1, 5) * MINUTE


# ------------------------------------------------------------------------------------------- rooms


def _meeting_rate(h: float) -> float:
    """Chance that a free room gets a meeting starting in a given half hour."""
    if h < 9:
        return 0.2
    if h < 11:
        return 0.5
    if h < 13:
        return 0.25
    if h < 16:
        return 0.45
    return 0.25


def _meeting(rng: random.Random, start: float, end: float, people: int) -> list[Stay]:
    """Attendees trickle in around the start and out around the end; a few come late or go early."""
    stays: list[Stay] = []
    length = end - start
    for _ in range(people):
        a = start + rng.uniform(-6, 4) * MINUTE
        b = end + rng.uniform(-6, 5) * MINUTE
        r = rng.random()
        if r < 0.08:
            a = start + rng.uniform(0.1, 0.4) * length
        elif r < 0.16:
            b = start + rng.uniform(0.5, 0.9) * length
        if b - a >= 5 * MINUTE:
            stays.append((a, b))
    return stays


def _room_day(rng: random.Random, busy: float, capacity: int, workshop_day: bool) -> list[Stay]:
    stays: list[Stay] = []
    workshop_room = capacity >= 12
    # On a workshop day the teams take every room after lunch: meetings only in the morning.
    last_start, last_end = (11.0 * HOUR, 11.75 * HOUR) if workshop_day else (17.0 * HOUR, 18.5 * HOUR)
    t = 8.0 * HOUR
    while t <= last_start:
        h = t / HOUR
        if workshop_room and h in (9.0, 13.0) and rng.random() < 0.45 * busy:
            length = rng.choice((2.0, 2.5, 3.0, 3.5)) * HOUR
            people = round(capacity * _clamp(rng.betavariate(3.0, 2.0), 0.25, 1.0))
            if rng.random() < 0.25:
                # A popular workshop: everyone who signed up comes, the room is full or nearly.
                people = capacity - rng.randint(0, 1)
        elif rng.random() < _meeting_rate(h) * busy:
            length = rng.choice((30, 60, 60, 60, 90, 120)) * MINUTE
            people = round(capacity * rng.betavariate(2.2, 2.0))
        else:
            t += 30 * MINUTE
            continue
        people = int(_clamp(people, 1 if capacity < 6 else 2, capacity))
        end = min(t + length, last_end)
        stays += _meeting(rng, t, end, people)
        # The next meeting starts on a half hour after this one, with a gap for the room to clear
        # (longer than the last leaver's 5 minutes plus the first comer's 6, so counts stay in
        # capacity).
        t = (int((end + rng.uniform(12, 40) * MINUTE) // (30 * MINUTE)) + 1) * 30 * MINUTE
    if workshop_day:
        # Team work 12:30–15:30 (the morning's last meeting has left by 11:50).
        people = max(1, round(capacity * rng.uniform(0.7, 1.0)))
        stays += _meeting(rng, 12.5 * HOUR, 15.5 * HOUR, people)
    return stays


# -------------------------------------------------------------------------------------- event hall


def _hall_day(rng: random.Random, busy: float, capacity: int, kind: str) -> list[Stay]:
    stays: list[Stay] = []
    if kind == "workshop":
        # The workshop day's opening plenary (the hall full or nearly) and a closing session; the
        # teams work in the rooms in between.
        stays += _meeting(rng, 9.0 * HOUR, 11.5 * HOUR, round(capacity * rng.uniform(0.85, 1.0)))
        stays += _meeting(rng, 15.75 * HOUR, 16.75 * HOUR, round(capacity * rng.uniform(0.6, 0.9)))
        return stays
    if kind == "tormaamo":
        # Hosts set up the breakfast, guests come around eight and mostly stay the hour.
        stays += [
            (7.5 * HOUR + rng.uniform(0, 10) * MINUTE, 9.3 * HOUR + rng.uniform(0, 15) * MINUTE)
            for _ in range(2)
        ]
        for _ in range(round(capacity * rng.uniform(0.45, 0.9)) - 2):
            a = _clamp(rng.gauss(7.97, 0.1), 7.67, 8.4) * HOUR
            b = rng.gauss(9.0, 0.1) if rng.random() < 0.8 else rng.gauss(8.65, 0.12)
            stays.append((a, max(a + 10 * MINUTE, b * HOUR)))
        return stays
    if rng.random() < 0.3 * busy:
        kind = rng.choice(("training", "workshop", "meetup"))
        start, length, lo, hi = {
            "training": (9.0, 2.5, 0.25, 0.65),
            "workshop": (13.0, 3.0, 0.35, 0.85),
            "meetup": (15.0, 2.0, 0.25, 0.6),
        }[kind]
        if rng.random() < 0.3:
            # Fully booked: the hall at or near its capacity.
            lo, hi = 0.9, 1.0
        people = round(capacity * rng.uniform(lo, hi))
        return _meeting(rng, start * HOUR, (start + length) * HOUR, people)
    if rng.random() < 0.5:
        # Informal use: a few people borrow the hall for a while.
        start = rng.choice(range(18, 34)) * 30 * MINUTE
        return _meeting(rng, start, start + rng.choice((30, 60, 90)) * MINUTE, rng.randint(2, 5))
    return stays


# --------------------------------------------------------------------------------------- utilities


def _clamp(v: float, lo: float, hi: float) -> float:
    return max(lo, min(hi, v))


def _clip(stays: list[Stay], open_ranges: list[tuple[float, float]]) -> list[Stay]:
    """Only the parts of stays within opening hours: nobody is there when the site is closed."""
    out: list[Stay] = []
    for a, b in stays:
        for lo, hi in open_ranges:
            x, y = max(a, lo), min(b, hi)
            if x < y:
                out.append((x, y))
    return out


def _midnight(day: date, tz: tzinfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _to_steps(stays: list[Stay], day: date, site: Site, grain: float) -> tuple[Step, ...]:
    """Stays → head-count steps on the sensor's time grain (a stay shorter than it vanishes)."""
    changes: list[tuple[float, int]] = []
    for a, b in stays:
        a, b = round(a / grain) * grain, round(b / grain) * grain
        if a < b:
            changes += [(a, 1), (b, -1)]
    changes.sort()
    local_midnight = datetime.combine(day, time(0), tzinfo=site.tz)
    steps: list[Step] = []
    count = 0
    i = 0
    while i < len(changes):
        t = changes[i][0]
        while i < len(changes) and changes[i][0] == t:
            count += changes[i][1]
            i += 1
        if not steps or steps[-1].count != count:
            # Wall-clock arithmetic in the site's zone, then UTC: opening hours are local times.
            when = (local_midnight + timedelta(seconds=t)).astimezone(UTC)
            steps.append(Step(when, count))
    return tuple(steps)
