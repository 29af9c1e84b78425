"""Utilisation metrics from 15-minute buckets (UK Higher Education Space Management Group).

For one space over an interval:

- frequency F = occupied seconds within opening hours ÷ open seconds
- occupancy O = mean head count while occupied ÷ capacity
- utilisation U = F × O (for a desk, O = 1 while occupied, so U = F)
- coverage = seconds with a known state ÷ open seconds (unknown time is lost coverage, not vacancy)

For a group of spaces (a zone, a kind, the site), sums over its spaces, so that a group of one space
gives that space's figures:

- frequency = Σ occupied seconds ÷ Σ open seconds (space-seconds)
- occupancy = Σ head-count-seconds ÷ Σ (capacity × occupied seconds) (seat-weighted)
- utilisation = Σ head-count-seconds ÷ Σ (capacity × open seconds)
- coverage = Σ covered seconds ÷ Σ open seconds
- mean_count = Σ head-count-seconds ÷ Σ occupied seconds (people per occupied space)
- peak_count = the largest, over the interval's slots, of Σ over the spaces of each space's peak in
  that slot: an upper bound of the largest concurrent head count (the spaces' peaks within one
  quarter hour need not coincide), equal to it when counts hold still within each quarter.

Intervals group slots by the site's local time: ``15m``, ``1h`` local hours, ``1d`` local days (23
or 25 hours on daylight-saving days), ``1w`` local weeks from Monday, ``1mo`` calendar months,
``total`` the whole window. The heatmap groups them by local weekday × hour. The arithmetic runs on
numpy arrays: buckets as columns, sums by ``bincount``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from operator import attrgetter
from typing import Any

import numpy as np
import numpy.typing as npt

from ..sensors.site import DAYS, KINDS, Site, Space
from .buckets import BUCKET_SECONDS, Bucket, slot
from .calendar import Calendar

INTERVALS = ("15m", "1h", "1d", "1w", "1mo", "total")
GROUPS = ("space", "zone", "kind", "site")
#: A query may answer at most this many rows (a year of 15-minute rows for 5 spaces).
MAX_ROWS = 200_000
#: Ten years: the Lab's whole trial (Dec 2019 – Oct 2023) fits with room to spare.
MAX_HEATMAP_DAYS = 3660

Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


class QueryError(ValueError):
    """A utilisation query that cannot be answered as asked (readable message)."""


def window(start: datetime, end: datetime) -> tuple[int, int]:
    """The slots a query covers: from the slot holding ``start`` up to the one before ``end``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise QueryError("from and to need a UTC offset (ISO 8601, e.g. 2026-11-24T08:00:00+02:00)")
    a, b = slot(start.timestamp()), slot(end.timestamp() + BUCKET_SECONDS - 1e-6)
    if b <= a:
        raise QueryError("to must be after from")
    return a, b


# ------------------------------------------------------------------------------------- columns


@dataclass(slots=True, frozen=True)
class Columns:
    """Buckets of a window as columns: one entry per (space, slot) bucket.

    ``space`` indexes the query's list of spaces, ``slot`` the window's slots. Callers holding
    buckets in columns already (a store reading them in bulk) can pass them without a ``Bucket``
    object each.
    """

    space: Ints
    slot: Ints
    occupied_s: Floats
    covered_s: Floats
    count_s: Floats
    peak: Floats

    @classmethod
    def of(cls, buckets: Iterable[Bucket], spaces: Sequence[str], a: int, b: int) -> Columns:
        """The buckets of ``spaces`` whose slot lies in [a, b); others are left out."""
        items = buckets if isinstance(buckets, list) else list(buckets)
        n = len(items)
        index = {s: i for i, s in enumerate(spaces)}

        def column(name: str, dtype: type) -> npt.NDArray[Any]:
            # One C-level pass per attribute: about three times faster than a tuple per bucket.
            return np.fromiter(map(attrgetter(name), items), dtype=dtype, count=n)

        space = np.fromiter(
            (index.get(s, -1) for s in map(attrgetter("space"), items)), dtype=np.int64, count=n
        )
        start = column("start", np.int64)
        keep = (space >= 0) & (start >= a) & (start < b)
        return cls(
            space[keep],
            (start[keep] - a) // BUCKET_SECONDS,
            column("occupied_s", np.float64)[keep],
            column("covered_s", np.float64)[keep],
            column("count_s", np.float64)[keep],
            column("peak", np.float64)[keep],
        )


# -------------------------------------------------------------------------------------- groups


@dataclass(slots=True, frozen=True)
class Groups:
    """The spaces of a query and the group each belongs to, at one level."""

    level: str
    #: Group ids in order (space, zone, kind ids, or the site's id).
    ids: list[str]
    #: Group index of each space of the query.
    of_space: Ints
    #: Capacity of each space of the query.
    capacity: Floats

    @classmethod
    def of(cls, site: Site, spaces: Sequence[Space], level: str) -> Groups:
        if level not in GROUPS:
            raise QueryError(f"group must be one of {', '.join(GROUPS)}, not {level!r}")
        if level == "space":
            ids = [s.id for s in spaces]
        elif level == "zone":
            present = {s.zone for s in spaces}
            ids = [z.id for z in site.zones if z.id in present]
        elif level == "kind":
            present = {s.kind for s in spaces}
            ids = [k for k in KINDS if k in present]
        else:
            ids = [site.id] if spaces else []
        where = {g: i for i, g in enumerate(ids)}
        members: dict[str, Callable[[Space], str]] = {
            "space": attrgetter("id"),
            "zone": attrgetter("zone"),
            "kind": attrgetter("kind"),
            "site": lambda _: site.id,
        }
        member = members[level]
        of_space = np.array([where[member(s)] for s in spaces], dtype=np.int64).reshape(-1)
        capacity = np.array([s.capacity for s in spaces], dtype=np.float64).reshape(-1)
        return cls(level, ids, of_space, capacity)

    @property
    def n(self) -> int:
        return len(self.ids)

    def sizes(self) -> tuple[Floats, Floats]:
        """Spaces and seats (Σ capacity) per group."""
        spaces = _bincount(self.of_space, np.ones(len(self.of_space)), self.n)
        return spaces, _bincount(self.of_space, self.capacity, self.n)


@dataclass(slots=True, frozen=True)
class Sums:
    """Per (group, cell) sums: a cell is an interval or a heatmap cell. Arrays are groups × cells."""

    open_s: Floats  # open space-seconds
    seat_open_s: Floats  # Σ capacity × open seconds
    occupied_s: Floats
    seat_occupied_s: Floats  # Σ capacity × occupied seconds
    covered_s: Floats
    count_s: Floats  # head-count-seconds
    peak: Floats
    spaces: Floats  # spaces per group (groups,)
    seats: Floats  # Σ capacity per group (groups,)
    wall_open_s: Floats  # open seconds of one space per cell (cells,)


def sums(cal: Calendar, cols: Columns, groups: Groups, cell: Ints, n_cells: int) -> Sums:
    """Sum the buckets into groups × cells, ``cell`` giving each slot's cell."""
    g, c = groups.n, n_cells
    spaces, seats = groups.sizes()
    wall = _bincount(cell, cal.open_s, c)
    gi = groups.of_space[cols.space]
    key = gi * c + cell[cols.slot]

    def total(weights: Floats) -> Floats:
        return _bincount(key, weights, g * c).reshape(g, c)

    # Peak: Σ of the spaces' peaks per (group, slot), then the largest per cell. For a space on its
    # own that is its largest peak; ``maximum.at`` avoids a spaces × slots array for that case.
    peak: Floats = np.zeros((g, c))
    if groups.level == "space":
        np.maximum.at(peak.reshape(-1), key, cols.peak)
    elif g and cal.n:
        per_slot = _bincount(gi * cal.n + cols.slot, cols.peak, g * cal.n).reshape(g, cal.n)
        _max_by_cell(peak, per_slot, cell)
    return Sums(
        open_s=np.outer(spaces, wall),
        seat_open_s=np.outer(seats, wall),
        occupied_s=total(cols.occupied_s),
        seat_occupied_s=total(cols.occupied_s * groups.capacity[cols.space]),
        covered_s=total(cols.covered_s),
        count_s=total(cols.count_s),
        peak=peak,
        spaces=spaces,
        seats=seats,
        wall_open_s=wall,
    )


def _bincount(index: Ints, weights: Floats, n: int) -> Floats:
    """Σ weights by index, for indexes 0…n-1, as floats (numpy's own is typed as ints)."""
    out: Floats = np.bincount(index, weights=weights, minlength=n).astype(np.float64)
    return out[:n]


def _max_by_cell(out: Floats, per_slot: Floats, cell: Ints) -> None:
    """``out[:, c] = max of per_slot[:, s] over slots s of cell c`` (cells need not be runs)."""
    order = np.argsort(cell, kind="stable")
    sorted_cells = cell[order]
    firsts = np.flatnonzero(np.r_[True, sorted_cells[1:] != sorted_cells[:-1]])
    out[:, sorted_cells[firsts]] = np.maximum.reduceat(per_slot[:, order], firsts, axis=1)


@dataclass(slots=True, frozen=True)
class Metrics:
    """The published metrics per (group, cell); None (NaN) where undefined."""

    frequency: Floats
    occupancy: Floats
    utilisation: Floats
    mean_count: Floats
    coverage: Floats
    #: Frequency on covered time only (occupied ÷ covered seconds): what F would be if the time
    #: without sensor data had been used like the time with it. Not a contract metric; reports
    #: show it beside F, marked, so that missing data is never read as vacancy.
    frequency_covered: Floats


def metrics(s: Sums) -> Metrics:
    with np.errstate(divide="ignore", invalid="ignore"):
        has_open = s.open_s > 0
        frequency = np.where(has_open, s.occupied_s / s.open_s, np.nan)
        occupancy = np.where(s.seat_occupied_s > 0, s.count_s / s.seat_occupied_s, np.nan)
        # U = F × O; with no occupied time O is undefined but U is 0, as for one space.
        utilisation = np.where(s.seat_open_s > 0, s.count_s / s.seat_open_s, np.nan)
        mean_count = np.where(s.occupied_s > 0, s.count_s / s.occupied_s, np.nan)
        coverage = np.where(has_open, s.covered_s / s.open_s, np.nan)
        frequency_covered = np.where(s.covered_s > 0, s.occupied_s / s.covered_s, np.nan)
    return Metrics(frequency, occupancy, utilisation, mean_count, coverage, frequency_covered)


def headcounts(cols: Columns, n_spaces: int, top: int) -> Floats:
    """Occupied seconds of each space by head count, as an array spaces × (top + 1).

    A bucket holds the integral of the head count, not its distribution, so each quarter hour counts
    with its mean head count while occupied (``count_s / occupied_s``), rounded half up to a whole
    person and at least 1; column k holds the occupied seconds at k people, the last column ``top``
    people or more, column 0 is always 0. Within a quarter the count may have varied: this is the
    distribution of quarter-hour means, which is what a room's size is judged on.
    """
    if top < 1:
        raise QueryError(f"top must be at least 1, not {top}")
    occupied = cols.occupied_s > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.where(occupied, cols.count_s / np.where(occupied, cols.occupied_s, 1.0), 0.0)
    people = np.clip(np.floor(mean + 0.5), 1, top).astype(np.int64)
    key = cols.space[occupied] * (top + 1) + people[occupied]
    weights = cols.occupied_s[occupied]
    return _bincount(key, weights, n_spaces * (top + 1)).reshape(n_spaces, top + 1)


# ------------------------------------------------------------------------------------- queries


def _spaces(site: Site, spaces: Sequence[str]) -> list[Space]:
    seen: set[str] = set()
    out: list[Space] = []
    for sid in spaces:
        sp = site.space(sid)
        if sp is not None and sid not in seen:
            seen.add(sid)
            out.append(sp)
    return out


def _columns(buckets: Iterable[Bucket] | Columns, spaces: Sequence[Space], a: int, b: int) -> Columns:
    if isinstance(buckets, Columns):
        return buckets
    return Columns.of(buckets, [s.id for s in spaces], a, b)


def utilisation(
    site: Site,
    buckets: Iterable[Bucket] | Columns,
    start: datetime,
    end: datetime,
    spaces: list[str],
    interval: str = "total",
    group: str = "space",
) -> list[dict[str, Any]]:
    """One row per group and interval, in group then time order.

    ``group="space"`` gives the contract's rows (``space`` first); any other level gives rows with
    ``group`` (the level) and the group's id under the level's name (``"zone": "quiet-zone"``),
    the same metric fields, and ``spaces`` and ``capacity`` (seats) of the group. Seconds are
    space-seconds: ``open_seconds`` of a zone of 10 desks open for an hour is 36 000.
    """
    if interval not in INTERVALS:
        raise QueryError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    a, b = window(start, end)
    chosen = _spaces(site, spaces)
    groups = Groups.of(site, chosen, group)
    cal = Calendar.of(site, a, b)
    cell, starts = cal.intervals(interval)
    if len(starts) * groups.n > MAX_ROWS:
        raise QueryError(
            f"that would be {len(starts) * groups.n} rows (at most {MAX_ROWS}): "
            "choose a longer interval, a shorter window, fewer spaces or a coarser group"
        )
    s = sums(cal, _columns(buckets, chosen, a, b), groups, cell, len(starts))
    m = metrics(s)
    labels = [t.isoformat() for t in starts]
    # Every interval with open time, and any with occupied time (none, if buckets follow the hours).
    gi, ci = np.nonzero((s.open_s > 0) | (s.occupied_s > 0))
    ids = [groups.ids[g] for g in gi.tolist()]
    when = [labels[c] for c in ci.tolist()]
    occ, open_s = (np.round(x[gi, ci], 3).tolist() for x in (s.occupied_s, s.open_s))
    f, o, u, mean, cov = (
        _nulls(x[gi, ci]) for x in (m.frequency, m.occupancy, m.utilisation, m.mean_count, m.coverage)
    )
    peak = s.peak[gi, ci].astype(np.int64).tolist()
    level = groups.level
    rows: list[dict[str, Any]] = [
        {
            **({"space": i} if level == "space" else {"group": level, level: i}),
            "start": w,
            "occupied_seconds": x1,
            "open_seconds": x2,
            "frequency": x3,
            "occupancy": x4,
            "utilisation": x5,
            "mean_count": x6,
            "peak_count": x7,
            "coverage": x8,
        }
        for i, w, x1, x2, x3, x4, x5, x6, x7, x8 in zip(
            ids, when, occ, open_s, f, o, u, mean, peak, cov, strict=True
        )
    ]
    if level != "space":
        spaces_n, seats = s.spaces.astype(np.int64).tolist(), s.seats.astype(np.int64).tolist()
        for row, g in zip(rows, gi.tolist(), strict=True):
            row["spaces"], row["capacity"] = spaces_n[g], seats[g]
    return rows


def heatmap(
    site: Site,
    buckets: Iterable[Bucket] | Columns,
    start: datetime,
    end: datetime,
    spaces: list[str],
    group: str = "site",
) -> list[dict[str, Any]]:
    """One cell per group and (local weekday, local hour) with open time, Monday 00 first.

    A slot belongs to the local hour it starts in: on the autumn daylight-saving day the 03:00 cell
    gets two hours, on the spring day the 03:00 cell gets none. ``open_seconds`` is the open time of
    one space in those hours over the window; the metrics are the group definitions of
    :func:`utilisation`.
    """
    a, b = window(start, end)
    if b - a > MAX_HEATMAP_DAYS * 86400:
        raise QueryError(f"the heatmap covers at most {MAX_HEATMAP_DAYS} days; choose a shorter window")
    chosen = _spaces(site, spaces)
    groups = Groups.of(site, chosen, group)
    cal = Calendar.of(site, a, b)
    s = sums(cal, _columns(buckets, chosen, a, b), groups, cal.weekday_hour(), 7 * 24)
    m = metrics(s)
    out: list[dict[str, Any]] = []
    wall = s.wall_open_s.tolist()
    f, o, u, cov = (x.tolist() for x in (m.frequency, m.occupancy, m.utilisation, m.coverage))
    for gi in range(groups.n):
        label = {"group": groups.level, groups.level: groups.ids[gi]}
        for ci in range(7 * 24):
            if wall[ci] <= 0:
                continue
            weekday, hour = divmod(ci, 24)
            out.append(
                {
                    **label,
                    "weekday": weekday,
                    "day": DAYS[weekday],
                    "hour": hour,
                    "open_seconds": round(wall[ci], 3),
                    "frequency": _r(f[gi][ci]),
                    "occupancy": _r(o[gi][ci]),
                    "utilisation": _r(u[gi][ci]),
                    "coverage": _r(cov[gi][ci]),
                    "spaces": int(s.spaces[gi]),
                }
            )
    return out


def _r(x: float | None) -> float | None:
    # NaN marks an undefined metric (no open or no occupied time): null in the answer.
    return None if x is None or x != x else round(x, 6)


def _nulls(x: Floats) -> list[float | None]:
    """Rounded to 6 places, NaN (undefined) as None."""
    return [None if v != v else v for v in np.round(x, 6).tolist()]
