"""Utilisation metrics from 15-minute buckets (UK Higher Education Space Management Group).

- frequency F = occupied seconds within opening hours ÷ open seconds in the window
- occupancy O = mean head count while occupied ÷ capacity
- utilisation U = F × O (for a desk, O = 1 while occupied, so U = F)
- coverage = seconds with a known state ÷ open seconds (unknown time is lost coverage, not vacancy)

Intervals group slots by the site's local time: ``1h`` local hours, ``1d`` local days (23 or 25
hours on daylight-saving days), ``total`` the whole window.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ..sensors.site import Site
from .buckets import BUCKET_SECONDS, Bucket, OpenHours, slot

INTERVALS = ("15m", "1h", "1d", "total")
#: A query may answer at most this many rows (a year of 15-minute rows for 5 spaces).
MAX_ROWS = 200_000


class QueryError(ValueError):
    """A utilisation query that cannot be answered as asked (readable message)."""


@dataclass(slots=True)
class _Acc:
    open_s: float = 0.0
    occupied_s: float = 0.0
    covered_s: float = 0.0
    count_s: float = 0.0
    peak: int = 0


def _group_key(s: int, interval: str, site: Site, window_start: int) -> datetime:
    tz = site.tz
    if interval == "15m":
        return datetime.fromtimestamp(s, tz)
    if interval == "total":
        return datetime.fromtimestamp(window_start, tz)
    local = datetime.fromtimestamp(s, tz)
    if interval == "1h":
        return local.replace(minute=0, second=0, microsecond=0)
    day = local.replace(hour=0, minute=0, second=0, microsecond=0, fold=0)
    # Re-localise midnight: the offset at midnight may differ from the slot's on a DST day.
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def window(start: datetime, end: datetime) -> tuple[int, int]:
    """The slots a query covers: from the slot holding ``start`` up to the one before ``end``."""
    if start.tzinfo is None or end.tzinfo is None:
        raise QueryError("from and to need a UTC offset (ISO 8601, e.g. 2026-11-24T08:00:00+02:00)")
    a, b = slot(start.timestamp()), slot(end.timestamp() + BUCKET_SECONDS - 1e-6)
    if b <= a:
        raise QueryError("to must be after from")
    return a, b


def utilisation(
    site: Site,
    buckets: Iterable[Bucket],
    start: datetime,
    end: datetime,
    spaces: list[str],
    interval: str = "total",
) -> list[dict[str, Any]]:
    """One row per space and interval, in space then time order."""
    if interval not in INTERVALS:
        raise QueryError(f"interval must be one of {', '.join(INTERVALS)}, not {interval!r}")
    a, b = window(start, end)
    hours = OpenHours(site)
    # Open seconds per group are the same for every space: compute them once.
    groups: dict[datetime, float] = {}
    slot_group: dict[int, datetime] = {}
    for s in range(a, b, BUCKET_SECONDS):
        key = _group_key(s, interval, site, a)
        slot_group[s] = key
        groups[key] = groups.get(key, 0.0) + hours.open_seconds(s)
    if len(groups) * len(spaces) > MAX_ROWS:
        raise QueryError(
            f"that would be {len(groups) * len(spaces)} rows (at most {MAX_ROWS}): "
            "choose a longer interval, a shorter window or fewer spaces"
        )
    wanted = set(spaces)
    acc: dict[tuple[str, datetime], _Acc] = {}
    for bk in buckets:
        if bk.space not in wanted or not a <= bk.start < b:
            continue
        group = (bk.space, slot_group[bk.start])
        x = acc.get(group)
        if x is None:
            x = acc[group] = _Acc()
        x.occupied_s += bk.occupied_s
        x.covered_s += bk.covered_s
        x.count_s += bk.count_s
        x.peak = max(x.peak, bk.peak)
    rows: list[dict[str, Any]] = []
    for space_id in spaces:
        space = site.space(space_id)
        if space is None:
            continue
        for key, open_s in groups.items():
            x = acc.get((space_id, key)) or _Acc()
            if open_s <= 0 and x.occupied_s <= 0:
                continue
            rows.append(
                row(space_id, key, open_s, x.occupied_s, x.covered_s, x.count_s, x.peak, space.capacity)
            )
    return rows


def row(
    space: str,
    start: datetime,
    open_s: float,
    occupied_s: float,
    covered_s: float,
    count_s: float,
    peak: int,
    capacity: int,
) -> dict[str, Any]:
    frequency = occupied_s / open_s if open_s > 0 else None
    mean_count = count_s / occupied_s if occupied_s > 0 else None
    # Over capacity stays visible: O may exceed 1 for a crowded room.
    occupancy = mean_count / capacity if mean_count is not None else None
    if frequency is None:
        util = None
    else:
        util = frequency * occupancy if occupancy is not None else 0.0
    return {
        "space": space,
        "start": start.isoformat(),
        "occupied_seconds": round(occupied_s, 3),
        "open_seconds": round(open_s, 3),
        "frequency": _r(frequency),
        "occupancy": _r(occupancy),
        "utilisation": _r(util),
        "mean_count": _r(mean_count),
        "peak_count": peak,
        "coverage": _r(covered_s / open_s if open_s > 0 else None),
    }


def _r(x: float | None) -> float | None:
    return None if x is None else round(x, 6)
