"""The figures of the continuation-assessment report, from bucket columns. Pure: no I/O, no charts.

Everything is summed by :mod:`tila.aggregator.metrics` (``Groups``, ``sums``, ``metrics``) over the
site's local calendar (:class:`tila.aggregator.calendar.Calendar`), so the report's F, O, U and
coverage are the API's (``/v1/utilisation`` and its heatmap) for the same window.

The period is a range of local dates: from ``first`` (included) to ``end`` (excluded), as the API's
``to`` is exclusive. Besides the contract metrics each row carries the frequency on covered time
(occupied ÷ covered seconds), shown marked beside F.

Definitions made here (the report states them):

- an *event day* is an open day on which a space of kind ``event`` holds a crowd: a quarter-hour peak
  of at least :data:`EVENT_CROWD_SHARE` of its capacity (the monthly Törmäämö breakfast is one);
- a figure is *low coverage* when less than :data:`LOW_COVERAGE` of its open time has sensor data;
- a room's head count is the mean of each quarter hour while occupied
  (:func:`tila.aggregator.metrics.headcounts`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt

from ..aggregator.calendar import Calendar
from ..aggregator.metrics import Columns, Groups, Ints, headcounts, metrics, sums, window
from ..sensors.site import DAYS, Site, Space

#: A quarter of the event space's seats: the simulated hall's informal use (2–5 people in 60 seats)
#: stays below it, a training, a workshop or the Törmäämö breakfast (15 and more) reaches it.
EVENT_CROWD_SHARE = 0.25
#: Below this share of open time with sensor data a figure is flagged: with a tenth of the time
#: unknown, F could be off by a tenth of the open time, which is the size of the differences the
#: report is read for (weekday against weekday, room against room).
LOW_COVERAGE = 0.9
#: Figures are rounded to this many decimals in the tables and CSV files, as the API rounds them.
DECIMALS = 6

Floats = npt.NDArray[np.float64]


class ReportError(ValueError):
    """A report that cannot be made as asked (one readable line)."""


@dataclass(slots=True, frozen=True)
class Period:
    """Local dates [first, end) of a site; ``start`` and ``stop`` are their local midnights."""

    site: Site
    first: date
    end: date

    def __post_init__(self) -> None:
        if self.end <= self.first:
            raise ReportError(f"--to {self.end} must be after --from {self.first}")

    @property
    def start(self) -> datetime:
        return datetime(self.first.year, self.first.month, self.first.day, tzinfo=self.site.tz)

    @property
    def stop(self) -> datetime:
        return datetime(self.end.year, self.end.month, self.end.day, tzinfo=self.site.tz)

    @property
    def last(self) -> date:
        """The last date included."""
        return self.end - timedelta(days=1)

    @property
    def days(self) -> int:
        return (self.end - self.first).days

    def slots(self) -> tuple[int, int]:
        return window(self.start, self.stop)

    def check_open(self) -> None:
        """A period with no opening hours at all has nothing to report."""
        if self.site.open_seconds(self.start, self.stop) <= 0:
            raise ReportError(
                f"no opening hours from {self.first} to {self.last} (weekends, holidays or closed dates only)"
            )


# ------------------------------------------------------------------------------------------ rows

#: The figures of every row (besides its labels), in CSV column order.
FIGURES = (
    "open_seconds",
    "covered_seconds",
    "occupied_seconds",
    "frequency",
    "occupancy",
    "utilisation",
    "coverage",
    "frequency_covered",
    "mean_count",
    "peak_count",
    "spaces",
    "seats",
)


def _num(x: float) -> float | None:
    return None if x != x else round(float(x), DECIMALS)


def rollup(
    cal: Calendar,
    cols: Columns,
    groups: Groups,
    cell: Ints,
    labels: Sequence[dict[str, Any]],
    *,
    keep_empty: bool = False,
) -> list[dict[str, Any]]:
    """One row per group × cell with open time: ``{level: id, **label, **figures}``.

    ``cell`` gives each slot's cell and ``labels`` each cell's label fields.
    """
    s = sums(cal, cols, groups, cell, len(labels))
    m = metrics(s)
    rows: list[dict[str, Any]] = []
    for g, gid in enumerate(groups.ids):
        for c, label in enumerate(labels):
            if s.open_s[g, c] <= 0 and not keep_empty:
                continue
            rows.append(
                {
                    groups.level: gid,
                    **label,
                    "open_seconds": round(float(s.open_s[g, c]), 3),
                    "covered_seconds": round(float(s.covered_s[g, c]), 3),
                    "occupied_seconds": round(float(s.occupied_s[g, c]), 3),
                    "frequency": _num(m.frequency[g, c]),
                    "occupancy": _num(m.occupancy[g, c]),
                    "utilisation": _num(m.utilisation[g, c]),
                    "coverage": _num(m.coverage[g, c]),
                    "frequency_covered": _num(m.frequency_covered[g, c]),
                    "mean_count": _num(m.mean_count[g, c]),
                    "peak_count": int(s.peak[g, c]),
                    "spaces": int(s.spaces[g]),
                    "seats": int(s.seats[g]),
                }
            )
    return rows


# -------------------------------------------------------------------------------------- analysis


@dataclass(slots=True, frozen=True)
class RoomSizing:
    """How many people a room (a space seating more than one) holds while occupied."""

    space: str
    kind: str
    capacity: int
    #: Occupied seconds at 1, 2, … people; the last entry is ``capacity + 1`` or more (over).
    seconds: tuple[float, ...]

    @property
    def occupied_s(self) -> float:
        return float(sum(self.seconds))

    def share(self, people: int) -> float | None:
        total = self.occupied_s
        return self.seconds[people - 1] / total if total > 0 else None

    def quantile(self, q: float) -> int | None:
        """The smallest head count that covers share ``q`` of the occupied time."""
        total = self.occupied_s
        if total <= 0:
            return None
        run = 0.0
        for i, sec in enumerate(self.seconds):
            run += sec
            if run >= q * total - 1e-9:
                return i + 1
        return len(self.seconds)

    def share_at_most(self, people: float) -> float | None:
        total = self.occupied_s
        if total <= 0:
            return None
        return sum(sec for i, sec in enumerate(self.seconds) if i + 1 <= people) / total


@dataclass(slots=True, frozen=True)
class EventDay:
    day: date
    space: str
    peak: int
    capacity: int


@dataclass(slots=True)
class Analysis:
    site: Site
    period: Period
    rows_read: int
    #: The whole period: one row per kind, zone, space and the site.
    kinds: list[dict[str, Any]]
    zones: list[dict[str, Any]]
    spaces: list[dict[str, Any]]
    total: dict[str, Any]
    #: Weekday × hour cells per kind (``weekday``, ``day``, ``hour``).
    heatmap: list[dict[str, Any]]
    #: Per kind per week and per month (``start``: the local Monday or first of the month).
    weeks: list[dict[str, Any]]
    months: list[dict[str, Any]]
    #: Per site per week (coverage trend), per space per week (coverage matrix).
    site_weeks: list[dict[str, Any]]
    space_weeks: list[dict[str, Any]]
    rooms: list[RoomSizing]
    event_days: list[EventDay]
    #: Per kind on event days and on ordinary days (``days``: ``event`` or ``ordinary``).
    day_classes: list[dict[str, Any]]
    #: Per kind × day class × local hour.
    day_class_hours: list[dict[str, Any]]
    open_days: int
    #: The Bookings section (:class:`tila.report.bookings.BookingsSection`) when bookings were given.
    bookings: Any = None

    def kind(self, kind: str) -> dict[str, Any] | None:
        return next((r for r in self.kinds if r["kind"] == kind), None)


def analyse(site: Site, cols: Columns, period: Period, rows_read: int | None = None) -> Analysis:
    """Every figure of the report. ``cols`` holds the buckets of all the site's spaces, in site order,
    for the period's slots (as :func:`tila.report.load.load` reads them)."""
    a, b = period.slots()
    period.check_open()
    cal = Calendar.of(site, a, b)
    spaces = list(site.spaces)
    by = {level: Groups.of(site, spaces, level) for level in ("space", "zone", "kind", "site")}
    total_cell = np.zeros(cal.n, dtype=np.int64)
    whole = [{"from": period.first.isoformat(), "to": period.end.isoformat()}]

    kinds = rollup(cal, cols, by["kind"], total_cell, whole)
    zones = rollup(cal, cols, by["zone"], total_cell, whole)
    space_rows = rollup(cal, cols, by["space"], total_cell, whole)
    total = rollup(cal, cols, by["site"], total_cell, whole)[0]

    cells = [{"weekday": d, "day": DAYS[d], "hour": h} for d in range(7) for h in range(24)]
    heat = rollup(cal, cols, by["kind"], cal.weekday_hour(), cells)

    def per(interval: str, groups: Groups) -> list[dict[str, Any]]:
        index, starts = cal.intervals(interval)
        return rollup(cal, cols, groups, index, [{"start": t.isoformat()} for t in starts])

    weeks, months = per("1w", by["kind"]), per("1mo", by["kind"])
    site_weeks, space_weeks = per("1w", by["site"]), per("1w", by["space"])

    rooms = _rooms(site, spaces, cols)
    day_index, day_starts = cal.intervals("1d")
    event_days, is_event = _event_days(site, spaces, cal, cols, day_index, day_starts)
    slot_class = is_event[day_index].astype(np.int64)
    classes = [{"days": "ordinary"}, {"days": "event"}]
    day_classes = rollup(cal, cols, by["kind"], slot_class, classes)
    open_day = np.bincount(day_index, weights=cal.open_s, minlength=len(day_starts)) > 0
    for row in day_classes:
        want = row["days"] == "event"
        row["day_count"] = int(np.count_nonzero(open_day & (is_event == want)))
    hour = (cal.local % 86400) // 3600
    hour_labels = [{"days": c["days"], "hour": h} for c in classes for h in range(24)]
    day_class_hours = rollup(cal, cols, by["kind"], slot_class * 24 + hour, hour_labels)

    return Analysis(
        site=site,
        period=period,
        rows_read=len(cols.space) if rows_read is None else rows_read,
        kinds=kinds,
        zones=zones,
        spaces=space_rows,
        total=total,
        heatmap=heat,
        weeks=weeks,
        months=months,
        site_weeks=site_weeks,
        space_weeks=space_weeks,
        rooms=rooms,
        event_days=event_days,
        day_classes=day_classes,
        day_class_hours=day_class_hours,
        open_days=int(np.count_nonzero(open_day)),
    )


def _rooms(site: Site, spaces: list[Space], cols: Columns) -> list[RoomSizing]:
    """Head-count distributions of every space seating more than one."""
    rooms = [(i, s) for i, s in enumerate(spaces) if s.capacity > 1]
    if not rooms:
        return []
    top = max(s.capacity for _, s in rooms) + 1
    dist = headcounts(cols, len(spaces), top)
    out: list[RoomSizing] = []
    for i, s in rooms:
        row = dist[i]
        # 1 … capacity people, then everything past capacity in one bin ("over").
        seconds = [float(x) for x in row[1 : s.capacity + 1]] + [float(row[s.capacity + 1 :].sum())]
        out.append(RoomSizing(s.id, s.kind, s.capacity, tuple(seconds)))
    return out


def crowd(capacity: int) -> int:
    """The quarter-hour peak that makes a day an event day in a space of this capacity."""
    return max(1, math.ceil(EVENT_CROWD_SHARE * capacity))


def _event_days(
    site: Site,
    spaces: list[Space],
    cal: Calendar,
    cols: Columns,
    day_index: Ints,
    day_starts: list[datetime],
) -> tuple[list[EventDay], npt.NDArray[np.bool_]]:
    """Days on which an event space held a crowd, and a flag per day of the calendar."""
    n = len(day_starts)
    is_event = np.zeros(n, dtype=bool)
    halls = [(i, s) for i, s in enumerate(spaces) if s.kind == "event"]
    if not halls or n == 0:
        return [], is_event
    groups = Groups.of(site, spaces, "space")
    peaks = sums(cal, cols, groups, day_index, n).peak  # spaces × days: the day's largest peak
    wall = np.bincount(day_index, weights=cal.open_s, minlength=n)[:n]
    found: list[EventDay] = []
    for d in range(n):
        if wall[d] <= 0:
            continue
        for i, s in halls:
            if peaks[i, d] >= crowd(s.capacity):
                is_event[d] = True
                found.append(EventDay(day_starts[d].date(), s.id, int(peaks[i, d]), s.capacity))
    return found, is_event
