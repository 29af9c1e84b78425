"""Frequency and utilisation by weekday × local hour over a window, for a group of spaces.

Pure arithmetic on the aggregator's 15-minute buckets, with the definitions of
:mod:`tila.aggregator.metrics` applied to the group: frequency = occupied space-seconds ÷ open
space-seconds; utilisation = seat-seconds used (head count × time) ÷ seat-seconds available
(capacity × open time), which for desks alone equals frequency; coverage = seconds with a known state
÷ open space-seconds. (It belongs beside ``metrics.utilisation``; it lives here until it moves.)
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from ..aggregator.buckets import BUCKET_SECONDS, Bucket, OpenHours
from ..aggregator.metrics import QueryError, window
from ..sensors.site import DAYS, Site

#: Ten years: the Lab's whole trial (Dec 2019 – Oct 2023) fits with room to spare, and the slot loop
#: stays within seconds.
MAX_DAYS = 3660


def heatmap(
    site: Site, buckets: Iterable[Bucket], start: datetime, end: datetime, spaces: list[str]
) -> list[dict[str, Any]]:
    """One cell per (weekday, hour) with opening time in the window, Monday 00 first."""
    a, b = window(start, end)
    if b - a > MAX_DAYS * 86400:
        raise QueryError(f"the heatmap covers at most {MAX_DAYS} days; choose a shorter window")
    tz = site.tz
    hours = OpenHours(site)
    cell_of: dict[int, tuple[int, int]] = {}
    open_s: dict[tuple[int, int], float] = {}
    for s in range(a, b, BUCKET_SECONDS):
        local = datetime.fromtimestamp(s, tz)
        key = (local.weekday(), local.hour)
        cell_of[s] = key
        open_s[key] = open_s.get(key, 0.0) + hours.open_seconds(s)
    capacity = {sid: sp.capacity for sid in spaces if (sp := site.space(sid)) is not None}
    seats = sum(capacity.values())
    occupied: dict[tuple[int, int], float] = {}
    covered: dict[tuple[int, int], float] = {}
    used: dict[tuple[int, int], float] = {}
    for bk in buckets:
        if bk.space not in capacity or not a <= bk.start < b:
            continue
        key = cell_of[bk.start]
        occupied[key] = occupied.get(key, 0.0) + bk.occupied_s
        covered[key] = covered.get(key, 0.0) + bk.covered_s
        used[key] = used.get(key, 0.0) + bk.count_s
    out: list[dict[str, Any]] = []
    for key in sorted(open_s):
        o = open_s[key]
        if o <= 0 or not capacity:
            continue
        space_s = o * len(capacity)
        out.append(
            {
                "weekday": key[0],
                "day": DAYS[key[0]],
                "hour": key[1],
                "open_seconds": round(o, 3),
                "frequency": round(occupied.get(key, 0.0) / space_s, 6),
                "utilisation": round(used.get(key, 0.0) / (o * seats), 6),
                "coverage": round(covered.get(key, 0.0) / space_s, 6),
            }
        )
    return out
